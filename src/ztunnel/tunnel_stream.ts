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
 * Wraps a tunnel; pauses it at once so nothing it receives before `bind` is lost (the stream keeps
 * those bytes and its flow-control window holds the peer back).
 */
export function tunnelStream(t: TunnelLike): ByteStream {
  t.pause();
  return {
    write: (chunk) => t.write(chunk),
    end: () => t.end(),
    reset: () => t.reset(),
    pause: () => t.pause(),
    resume: () => t.resume(),
    bind(ev: StreamEvents) {
      if (t.closed) {
        ev.close(new Error("tunnel closed before it was spliced"));
        return;
      }
      t.on("data", ev.data);
      t.on("end", ev.end);
      t.on("drain", ev.drain);
      t.on("close", (e) => ev.close(e));
      t.resume();
    },
  };
}
