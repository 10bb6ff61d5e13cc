/**
 * A node:stream Duplex view of an HBONE stream, for code that speaks node streams: the waypoint
 * serves HTTP/1.1 on a tunnel with `httpServer.emit("connection", toDuplex(stream))`.
 * Backpressure is carried both ways and half-close maps to end()/"end".
 */
import { Duplex } from "node:stream";
import { H2Code } from "./constants.ts";
import type { HboneStream } from "./stream.ts";

/** Wraps `stream`; the Duplex owns it from now on (destroying the Duplex resets the stream). */
export function toDuplex(stream: HboneStream): Duplex {
  let drainCb: ((err?: Error | null) => void) | null = null;
  const d = new Duplex({
    allowHalfOpen: true,
    read() {
      stream.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (stream.closed) return cb(new Error("HBONE stream closed"));
      if (stream.write(chunk)) cb();
      else drainCb = cb;
    },
    final(cb) {
      if (!stream.closed) stream.end();
      cb();
    },
    destroy(err, cb) {
      if (!stream.closed) stream.reset(err ? H2Code.INTERNAL_ERROR : H2Code.CANCEL);
      cb(err);
    },
  });
  stream.on("data", (chunk) => {
    // Buffer view over the same bytes: node:http parsers expect Buffers.
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (!d.push(b)) stream.pause();
  });
  stream.on("end", () => d.push(null));
  stream.on("drain", () => {
    const cb = drainCb;
    drainCb = null;
    cb?.();
  });
  stream.on("close", (err) => {
    const cb = drainCb;
    drainCb = null;
    if (err) {
      cb?.(err);
      d.destroy(err);
    } else {
      cb?.();
      // Both directions ended cleanly: let node finish its own bookkeeping.
      if (!d.readableEnded) d.push(null);
    }
  });
  // Socket-like fields node:http reads.
  Object.assign(d, {
    remoteAddress: stream.peerAddress.replace(/:\d+$/, "").replace(/^\[|\]$/g, ""),
    remotePort: Number(stream.peerAddress.match(/:(\d+)$/)?.[1] ?? 0),
    setTimeout() {
      return d;
    },
    setNoDelay() {
      return d;
    },
    setKeepAlive() {
      return d;
    },
  });
  return d;
}
