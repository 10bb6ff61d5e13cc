/**
 * The byte pipe the waypoint's HTTP code runs on: an HBONE tunnel (src/hbone HboneStream has exactly
 * this shape) or a plain TCP connection to a workload outside the mesh. Writes return false when the
 * caller must wait for "drain"; "end" is the peer's half-close; "close" fires once.
 */
import { Socket } from "node:net";

export interface ByteStreamEvents {
  data: (chunk: Uint8Array) => void;
  end: () => void;
  drain: () => void;
  close: (error?: Error) => void;
}

export interface ByteStream {
  write(chunk: Uint8Array): boolean;
  /** Half-close our direction. */
  end(): void;
  pause(): void;
  resume(): void;
  /** Abort both directions. */
  reset(): void;
  on<E extends keyof ByteStreamEvents>(event: E, fn: ByteStreamEvents[E]): unknown;
  off<E extends keyof ByteStreamEvents>(event: E, fn: ByteStreamEvents[E]): unknown;
  readonly closed: boolean;
  /** The transport under it is going away (an HBONE connection that got GOAWAY): do not reuse it. */
  readonly retiring?: boolean;
}

type Listeners = { [E in keyof ByteStreamEvents]: ByteStreamEvents[E][] };

/** A node:net socket as a ByteStream (workloads reached without HBONE). */
export class TcpByteStream implements ByteStream {
  #s: Socket;
  #on: Listeners = { data: [], end: [], drain: [], close: [] };
  #closed = false;
  #ended = false;

  constructor(socket: Socket) {
    this.#s = socket;
    socket.on("data", (b: Buffer) => {
      for (const f of this.#on.data) f(b);
    });
    socket.on("end", () => {
      this.#ended = true;
      for (const f of this.#on.end) f();
    });
    socket.on("drain", () => {
      for (const f of this.#on.drain) f();
    });
    socket.on("error", () => {});
    socket.on("close", (hadError: boolean) => {
      if (this.#closed) return;
      this.#closed = true;
      const err = hadError ? new Error("TCP connection failed") : undefined;
      for (const f of this.#on.close) f(err);
    });
  }

  /** Connects to `host:port`, rejecting after `timeoutMs`. */
  static connect(host: string, port: number, timeoutMs: number): Promise<TcpByteStream> {
    return new Promise((resolve, reject) => {
      const s = new Socket({ allowHalfOpen: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`TCP connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.connect(port, host, () => {
        clearTimeout(timer);
        s.setNoDelay(true);
        resolve(new TcpByteStream(s));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }
  get ended(): boolean {
    return this.#ended;
  }
  write(chunk: Uint8Array): boolean {
    if (this.#closed) return false;
    return this.#s.write(chunk);
  }
  end(): void {
    if (!this.#closed) this.#s.end();
  }
  pause(): void {
    this.#s.pause();
  }
  resume(): void {
    this.#s.resume();
  }
  reset(): void {
    this.#s.resetAndDestroy?.() ?? this.#s.destroy();
  }
  on<E extends keyof ByteStreamEvents>(event: E, fn: ByteStreamEvents[E]): this {
    (this.#on[event] as ByteStreamEvents[E][]).push(fn);
    return this;
  }
  off<E extends keyof ByteStreamEvents>(event: E, fn: ByteStreamEvents[E]): this {
    const list = this.#on[event] as ByteStreamEvents[E][];
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
    return this;
  }
}
