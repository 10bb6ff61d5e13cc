/**
 * A ByteStream as a node:stream Duplex, for code that speaks node streams (node:http and node:http2
 * serve on a Duplex). Backpressure is carried both ways and half-close maps to end()/"end".
 */
import { Duplex } from "node:stream";
import type { ByteStream } from "./byte_stream.ts";

/**
 * Wraps `io`, which the Duplex consumes and owns from now on (destroying the Duplex resets it).
 * `initial` are bytes already read from it, delivered first.
 */
export function toDuplex(io: ByteStream, initial?: Uint8Array): Duplex {
  let drainCb: ((e?: Error | null) => void) | null = null;
  const d = new Duplex({
    allowHalfOpen: true,
    read() {
      io.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (io.closed) return cb(new Error("stream closed"));
      if (io.write(chunk)) cb();
      else drainCb = cb;
    },
    final(cb) {
      io.end();
      cb();
    },
    destroy(err, cb) {
      if (!io.closed) io.reset();
      cb(err);
    },
  });
  // Buffer views over the same bytes: node's parsers expect Buffers.
  if (initial && initial.length) d.push(Buffer.from(initial.buffer, initial.byteOffset, initial.length));
  io.bind({
    data(c: Uint8Array) {
      if (!d.push(Buffer.from(c.buffer, c.byteOffset, c.length))) io.pause();
    },
    end() {
      d.push(null);
    },
    drain() {
      const cb = drainCb;
      drainCb = null;
      cb?.();
    },
    close(err?: Error) {
      const cb = drainCb;
      drainCb = null;
      cb?.(err ?? null);
      if (err) d.destroy(err);
      // Both directions ended cleanly: let node finish its own bookkeeping.
      else if (!d.readableEnded) d.push(null);
    },
  });
  // Socket-like fields node:http reads.
  Object.assign(d, { setTimeout: () => d, setNoDelay: () => d, setKeepAlive: () => d, remoteAddress: "127.0.0.1", remotePort: 0 });
  return d;
}
