/**
 * Two byte streams joined both ways (a switched protocol such as WebSocket, or opaque TCP): backpressure
 * each way, a half-close passed on, and when either side fails the other is reset.
 */
import type { ByteStream } from "./io.ts";

export interface SpliceResult {
  /** Bytes a -> b and b -> a. */
  aToB: number;
  bToA: number;
  error?: Error;
}

function oneWay(from: ByteStream, to: ByteStream, count: (n: number) => void, ended: () => void): void {
  from.on("data", (chunk: Uint8Array) => {
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on("drain", () => from.resume());
  from.on("end", () => {
    to.end();
    ended();
  });
}

/** Joins `a` and `b`; `aFirst`/`bFirst` are bytes already read from each, sent before anything else. */
export function splice(a: ByteStream, aFirst: Uint8Array, b: ByteStream, bFirst: Uint8Array): Promise<SpliceResult> {
  return new Promise((resolve) => {
    const r: SpliceResult = { aToB: aFirst.length, bToA: bFirst.length };
    let closed = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (err && !r.error) r.error = err;
      if (++closed < 2 && !err) return;
      if (err) {
        if (!a.closed) a.reset();
        if (!b.closed) b.reset();
      }
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    if (aFirst.length) b.write(aFirst);
    if (bFirst.length) a.write(bFirst);
    oneWay(a, b, (n) => (r.aToB += n), () => {});
    oneWay(b, a, (n) => (r.bToA += n), () => {});
    a.on("close", (e?: Error) => finish(e));
    b.on("close", (e?: Error) => finish(e));
    a.resume();
    b.resume();
  });
}
