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
  /** Receives the stream's events through methods (no closure per stream). */
  setSink(sink: TunnelSink): unknown;
}

export interface TunnelSink {
  onStreamData(chunk: Uint8Array): void;
  onStreamEnd(): void;
  onStreamDrain(): void;
  onStreamClose(error?: Error): void;
}

/**
 * A tunnel as a ByteStream. It pauses the tunnel at once so nothing received before `bind` is lost
 * (the stream keeps those bytes and its flow-control window holds the peer back).
 */
export class TunnelStream implements ByteStream, TunnelSink {
  readonly #t: TunnelLike;
  #ev: StreamEvents | undefined;
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
    this.#ev = ev;
    t.setSink(this);
    t.resume();
  }
  onStreamData(chunk: Uint8Array): void {
    this.#ev!.data(chunk);
  }
  onStreamEnd(): void {
    this.#ev!.end();
  }
  onStreamDrain(): void {
    this.#ev!.drain();
  }
  onStreamClose(error?: Error): void {
    this.#ev!.close(error);
  }
}

/** Wraps a tunnel for the splice. */
export function tunnelStream(t: TunnelLike): ByteStream {
  return new TunnelStream(t);
}
