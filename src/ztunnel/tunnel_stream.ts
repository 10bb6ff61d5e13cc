/**
 * An HBONE CONNECT stream (src/hbone HboneStream) as a ByteStream for the splice. Typed structurally,
 * so the splice side does not depend on the HTTP/2 implementation.
 */
import type { ByteStream, StreamEvents } from "./stream.ts";

/** What the ztunnel uses of an HBONE stream. */
export interface TunnelLike {
  readonly closed: boolean;
  write(chunk: Uint8Array): boolean;
  end(): void;
  reset(): void;
  pause(): void;
  resume(): void;
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "drain", fn: () => void): unknown;
  on(event: "close", fn: (error?: Error) => void): unknown;
}

/**
 * A tunnel as a ByteStream. It pauses the tunnel at once so nothing received before `bind` is lost
 * (the stream keeps those bytes and its flow-control window holds the peer back).
 */
export class TunnelStream implements ByteStream {
  readonly #t: TunnelLike;
  constructor(t: TunnelLike) {
    this.#t = t;
    t.pause();
  }
  write(chunk: Uint8Array): boolean {
    return this.#t.write(chunk);
  }
  end(): void {
    this.#t.end();
  }
  reset(): void {
    this.#t.reset();
  }
  pause(): void {
    this.#t.pause();
  }
  resume(): void {
    this.#t.resume();
  }
  bind(ev: StreamEvents): void {
    const t = this.#t;
    if (t.closed) {
      ev.close(new Error("tunnel closed before it was spliced"));
      return;
    }
    // The stream calls its listeners as plain functions: one small closure per event.
    t.on("data", (chunk) => ev.data(chunk));
    t.on("end", () => ev.end());
    t.on("drain", () => ev.drain());
    t.on("close", (e) => ev.close(e));
    t.resume();
  }
}

/** Wraps a tunnel for the splice. */
export function tunnelStream(t: TunnelLike): ByteStream {
  return new TunnelStream(t);
}
