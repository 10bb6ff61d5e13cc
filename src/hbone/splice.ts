/**
 * Splices a Bun TCP socket and an HBONE stream: bytes both ways with backpressure (a socket that
 * cannot take more pauses the stream, and so the peer through the window; a stream that cannot take
 * more pauses the socket), and half-close both ways (FIN -> END_STREAM, END_STREAM -> shutdown()).
 *
 * Bun quirk (docs/bun.md 3): once we have called shutdown(), the peer's FIN arrives as `close`
 * without `end`. An error-free close after our shutdown is therefore the peer's FIN, not a reset.
 *
 * Use `spliceHandlers` as the handlers of a Bun.listen / Bun.connect whose socket `data` is the
 * SocketSplice, or call the `on*` methods from handlers of your own. Open the socket with
 * `allowHalfOpen: true`, or Bun closes it at the peer's FIN and the other direction is cut short.
 * One object per tunnel side, no closures: an open tunnel costs little memory.
 */
import type { Socket, SocketHandler } from "bun";
import { H2Code } from "./constants.ts";
import type { HboneError } from "./errors.ts";
import type { HboneStream, StreamSink } from "./stream.ts";

// state bits
const SHUTDOWN_WANTED = 1; // the stream ended: FIN once pending bytes are out
const SHUTDOWN_DONE = 2;
const SOCKET_ENDED = 4; // the socket's peer sent FIN
const SOCKET_CLOSED = 8;
const DONE = 16;
const ATTACHED = 32;

type AnySocket = Socket<unknown>;

export class SocketSplice implements StreamSink {
  socket: AnySocket | null;
  /** The tunnel; may be set before attach() to carry it to the socket's open handler. */
  stream: HboneStream | null = null;
  /** Bytes from the socket into the tunnel, and from the tunnel out to the socket. */
  bytesIn = 0;
  bytesOut = 0;
  /** Called once when both sides are finished; `error` when either was reset. */
  onDone: ((error?: Error) => void) | null = null;

  #st = 0;
  #pending: Uint8Array | null = null; // tunnel bytes the socket did not take yet
  #early: Uint8Array[] | null = null; // socket bytes before the stream was attached

  constructor(socket: AnySocket | null = null) {
    this.socket = socket;
  }

  /** Sets the socket when the splice was created before it (Bun.connect's `data`). */
  bind(socket: AnySocket): void {
    this.socket = socket;
  }

  /** Connects the stream (2xx already exchanged). Socket bytes that came first go first. */
  attach(stream: HboneStream): void {
    this.stream = stream;
    this.#st |= ATTACHED;
    if (this.#st & SOCKET_CLOSED && !(this.#st & SOCKET_ENDED)) {
      stream.reset(H2Code.CANCEL);
      return this.#finish(new Error("socket closed before the tunnel was ready"));
    }
    stream.setSink(this);
    let flowing = true;
    if (this.#early) {
      for (const b of this.#early) flowing = this.#fromSocket(b) && flowing;
      this.#early = null;
    }
    if (this.#st & SOCKET_ENDED) stream.end();
    else if (flowing && !(this.#st & SOCKET_CLOSED)) this.socket?.resume();
  }

  // ---- stream events (StreamSink) ----------------------------------------------------------------

  onStreamData(chunk: Uint8Array): void {
    if (this.#st & SOCKET_CLOSED || this.socket === null) return;
    this.bytesOut += chunk.length;
    if (this.#pending !== null) {
      // Data that arrived in the same turn we paused: keep it in order.
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

  onStreamEnd(): void {
    this.#st |= SHUTDOWN_WANTED;
    this.#maybeShutdown();
  }

  onStreamDrain(): void {
    if (!(this.#st & SOCKET_CLOSED)) this.socket?.resume();
  }

  onStreamClose(err?: HboneError): void {
    if (err) {
      if (!(this.#st & SOCKET_CLOSED)) this.socket?.terminate();
      this.#finish(err);
    } else this.#maybeDone();
  }

  // ---- socket events -----------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    if (!(this.#st & ATTACHED)) {
      (this.#early ??= []).push(chunk);
      this.socket?.pause(); // until the tunnel is ready
      return;
    }
    this.#fromSocket(chunk);
  }

  onDrain(): void {
    const p = this.#pending;
    if (p === null || this.socket === null) return;
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

  /** The socket's peer sent FIN: half-close the tunnel. */
  onEnd(): void {
    if (this.#st & SOCKET_ENDED) return;
    this.#st |= SOCKET_ENDED;
    const s = this.stream;
    if (this.#st & ATTACHED && s && !s.writableEnded && !s.closed) s.end();
    this.#maybeDone();
  }

  onClose(error?: Error): void {
    if (this.#st & SOCKET_CLOSED) return;
    this.#st |= SOCKET_CLOSED;
    const s = this.#st & ATTACHED ? this.stream : null;
    if (!error && this.#st & SHUTDOWN_DONE) {
      // docs/bun.md 3: after our shutdown(), the peer's FIN shows up as a clean close.
      this.onEnd();
      return;
    }
    if (!error && this.#st & SOCKET_ENDED && (s === null || s.readableEnded)) return this.#maybeDone();
    if (s && !s.closed) s.reset(error ? H2Code.CONNECT_ERROR : H2Code.CANCEL);
    this.#finish(error ?? new Error("socket closed"));
  }

  // ---- internals ---------------------------------------------------------------------------------

  #fromSocket(chunk: Uint8Array): boolean {
    const s = this.stream!;
    if (s.closed || s.writableEnded) return true;
    if (s.write(chunk)) return true;
    this.socket?.pause();
    return false;
  }

  #maybeShutdown(): void {
    const st = this.#st;
    if (!(st & SHUTDOWN_WANTED) || st & (SHUTDOWN_DONE | SOCKET_CLOSED) || this.#pending !== null) return;
    this.#st |= SHUTDOWN_DONE;
    this.socket?.shutdown();
    this.#maybeDone();
  }

  #maybeDone(): void {
    const s = this.stream;
    if (s === null || !s.closed) return;
    const st = this.#st;
    if (!(st & (SHUTDOWN_DONE | SOCKET_CLOSED))) return;
    if (!(st & (SOCKET_ENDED | SOCKET_CLOSED))) return;
    if (!(st & SOCKET_CLOSED)) this.socket?.end();
    this.#finish();
  }

  #finish(err?: Error): void {
    if (this.#st & DONE) return;
    this.#st |= DONE;
    this.#early = null;
    this.#pending = null;
    this.onDone?.(err);
  }
}

/** Socket handlers for Bun sockets whose `data` is their SocketSplice. */
export const spliceHandlers: SocketHandler<SocketSplice> = {
  data(s, chunk) {
    s.data.onData(chunk);
  },
  drain(s) {
    s.data.onDrain();
  },
  end(s) {
    s.data.onEnd();
  },
  close(s, err) {
    s.data.onClose(err);
  },
  error() {},
};
