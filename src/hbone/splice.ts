/**
 * Splices a Bun TCP socket and an HBONE stream: bytes both ways with backpressure (a socket that
 * cannot take more pauses the stream, and so the peer through the window; a stream that cannot take
 * more pauses the socket), and half-close both ways (FIN -> END_STREAM, END_STREAM -> shutdown()).
 *
 * Bun quirk (BUN-NOTES 3): once we have called shutdown(), the peer's FIN arrives as `close`
 * without `end`. An error-free close after our shutdown is therefore the peer's FIN, not a reset.
 *
 * Use `spliceHandlers` as the socket handlers of a Bun.listen / Bun.connect whose socket data is
 * `{ splice }`, or call the `on*` methods from handlers of your own. The socket must be opened with
 * `allowHalfOpen: true`, or Bun closes it at the peer's FIN and the other direction is cut short.
 */
import type { Socket, SocketHandler } from "bun";
import { H2Code } from "./constants.ts";
import type { HboneStream } from "./stream.ts";

export class SocketSplice {
  readonly socket: Socket<unknown>;
  stream: HboneStream | null = null;
  /** Bytes from the socket into the tunnel, and from the tunnel out to the socket. */
  bytesIn = 0;
  bytesOut = 0;
  /** Called once when both sides are finished; `error` when either was reset. */
  onDone: ((error?: Error) => void) | null = null;

  #pending: Uint8Array | null = null; // tunnel bytes the socket did not take yet
  #shutdownWanted = false; // the stream ended: FIN once #pending is out
  #shutdownDone = false;
  #socketEnded = false; // the socket peer sent FIN
  #socketClosed = false;
  #done = false;
  #early: Uint8Array[] | null = null; // socket bytes before the stream was attached

  constructor(socket: Socket<unknown>) {
    this.socket = socket;
  }

  /** Connects the stream (2xx already exchanged). Socket bytes that came before go first. */
  attach(stream: HboneStream): void {
    this.stream = stream;
    if (this.#socketClosed && !this.#socketEnded) {
      stream.reset(H2Code.CANCEL);
      return this.#finish(new Error("socket closed before the tunnel was ready"));
    }
    stream.on("data", (chunk) => this.#toSocket(chunk));
    stream.on("end", () => {
      this.#shutdownWanted = true;
      this.#maybeShutdown();
    });
    stream.on("drain", () => {
      if (!this.#socketClosed) this.socket.resume();
    });
    stream.on("close", (err) => {
      if (err) {
        if (!this.#socketClosed) this.socket.terminate();
        this.#finish(err);
      } else this.#maybeDone();
    });
    let flowing = true;
    if (this.#early) {
      for (const b of this.#early) flowing = this.#fromSocket(b) && flowing;
      this.#early = null;
    }
    if (this.#socketEnded) stream.end();
    else if (flowing && !this.#socketClosed) this.socket.resume();
  }

  // ---- socket events -----------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    if (this.stream === null) {
      (this.#early ??= []).push(chunk);
      this.socket.pause(); // until the tunnel is ready
      return;
    }
    this.#fromSocket(chunk);
  }

  onDrain(): void {
    const p = this.#pending;
    if (p === null) return;
    const n = this.socket.write(p);
    if (n < 0) return;
    if (n < p.length) {
      this.#pending = p.subarray(n);
      return;
    }
    this.#pending = null;
    this.#maybeShutdown();
    this.stream?.resume();
  }

  /** The socket peer sent FIN: half-close the tunnel. */
  onEnd(): void {
    if (this.#socketEnded) return;
    this.#socketEnded = true;
    const s = this.stream;
    if (s && !s.writableEnded && !s.closed) s.end();
    this.#maybeDone();
  }

  onClose(error?: Error): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    const s = this.stream;
    if (!error && this.#shutdownDone) {
      // BUN-NOTES 3: after our shutdown(), the peer's FIN shows up as a clean close.
      this.onEnd();
      return;
    }
    if (!error && this.#socketEnded && (s === null || s.readableEnded)) return this.#maybeDone();
    if (s && !s.closed) s.reset(error ? H2Code.CONNECT_ERROR : H2Code.CANCEL);
    this.#finish(error ?? new Error("socket closed"));
  }

  // ---- internals ---------------------------------------------------------------------------------

  #fromSocket(chunk: Uint8Array): boolean {
    const s = this.stream!;
    if (s.closed || s.writableEnded) return true;
    if (s.write(chunk)) return true;
    this.socket.pause();
    return false;
  }

  #toSocket(chunk: Uint8Array): void {
    if (this.#socketClosed) return;
    this.bytesOut += chunk.length;
    if (this.#pending !== null) {
      // Only happens if data arrives in the same turn we paused: keep it in order.
      const merged = new Uint8Array(this.#pending.length + chunk.length);
      merged.set(this.#pending);
      merged.set(chunk, this.#pending.length);
      this.#pending = merged;
      return;
    }
    const n = this.socket.write(chunk);
    if (n < chunk.length) {
      this.#pending = n > 0 ? chunk.subarray(n) : chunk;
      this.stream!.pause();
    }
  }

  #maybeShutdown(): void {
    if (!this.#shutdownWanted || this.#shutdownDone || this.#pending !== null || this.#socketClosed) return;
    this.#shutdownDone = true;
    this.socket.shutdown();
    this.#maybeDone();
  }

  #maybeDone(): void {
    const s = this.stream;
    if (s === null || !s.closed) return;
    if (!this.#shutdownDone && !this.#socketClosed) return;
    if (!this.#socketEnded && !this.#socketClosed) return;
    if (!this.#socketClosed) this.socket.end();
    this.#finish();
  }

  #finish(err?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.onDone?.(err);
  }
}

/** Socket handlers for Bun sockets whose `data` is `{ splice: SocketSplice }`. */
export const spliceHandlers: SocketHandler<{ splice: SocketSplice }> = {
  data(s, chunk) {
    s.data.splice.onData(chunk);
  },
  drain(s) {
    s.data.splice.onDrain();
  },
  end(s) {
    s.data.splice.onEnd();
  },
  close(s, err) {
    s.data.splice.onClose(err);
  },
  error() {},
};
