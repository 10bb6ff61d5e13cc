/**
 * A Bun TCP or TLS socket as a ByteStream, plus the dialer and listener that make them.
 *
 * The adapter turns Bun's quirks into the ByteStream contract: a partial `write()` keeps the rest and
 * reports backpressure until `drain`; after our `shutdown()`, Bun reports the peer's FIN as an
 * error-free `close` without `end` (docs/bun.md 3), so an error-free close is delivered as `end` then `close`.
 */
import type { ByteStream, StreamEvents } from "./byte_stream.ts";

/** Certificate material for a TLS socket (PEM). */
export interface SocketTls {
  cert?: string;
  key?: string;
  ca?: string;
  serverName?: string;
  rejectUnauthorized?: boolean;
}

type BunSocket = import("bun").Socket<SocketStream | undefined>;

/** An IPv4 peer of a dual-stack socket shows as "::ffff:a.b.c.d": the mesh model knows "a.b.c.d". */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** A Bun TCP (or TLS) socket as a ByteStream. Store it in `socket.data`; route handlers with `socketHandlers`. */
export class SocketStream implements ByteStream {
  readonly socket: BunSocket;
  #events: StreamEvents | undefined;
  /** Data that arrived before `bind` (a client may speak before we picked the upstream). */
  #early: Uint8Array[] | undefined;
  /** The peer's FIN came before any consumer could be told. */
  #endUntold = false;
  /** What the socket did not take yet; null while nothing waits (most connections never need one). */
  #queue: Uint8Array[] | null = null;
  #endRequested = false;
  #shutdown = false;
  #peerEnded = false;
  #closed = false;
  #error: Error | undefined;
  #held = false;

  constructor(socket: BunSocket) {
    this.socket = socket;
    socket.data = this;
  }

  get remoteAddress(): string {
    return plainAddress(this.socket.remoteAddress);
  }

  get localAddress(): string {
    return plainAddress(this.socket.localAddress);
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#endRequested) return true;
    // Chunks are kept by reference: Bun hands each received buffer over for good (sockets and HBONE
    // streams alike), so nothing reuses their memory after the data event.
    if (this.#queue !== null) {
      this.#queue.push(chunk);
      return false;
    }
    const n = this.socket.write(chunk);
    if (n >= chunk.length) return true;
    this.#queue = [n > 0 ? chunk.subarray(n) : chunk];
    return false;
  }

  end(): void {
    if (this.#closed || this.#endRequested) return;
    this.#endRequested = true;
    if (this.#queue === null) this.#doShutdown();
  }

  reset(): void {
    if (this.#closed) return;
    this.#queue = null;
    this.socket.terminate();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Stops reading until `bind` (a client may speak before its upstream is chosen). */
  holdUntilBind(): void {
    this.#held = true;
    this.socket.pause();
  }

  bind(events: StreamEvents): void {
    this.#events = events;
    if (this.#held) {
      this.#held = false;
      this.socket.resume();
    }
    const early = this.#early;
    this.#early = undefined;
    if (early) for (const c of early) events.data(c);
    if (this.#endUntold) {
      this.#endUntold = false;
      events.end();
    }
    // A new consumer of a closed stream must learn it is over, whether or not the previous one was told.
    if (this.#closed) events.close(this.#error);
  }

  #doShutdown(): void {
    if (this.#shutdown) return;
    this.#shutdown = true;
    if (this.#peerEnded) {
      // Both directions are done: close fully.
      this.socket.end();
    } else {
      this.socket.shutdown();
    }
  }

  // ---- called by socketHandlers ----

  onData(chunk: Uint8Array): void {
    if (this.#events) this.#events.data(chunk);
    else (this.#early ??= []).push(chunk);
  }

  onEnd(): void {
    if (this.#peerEnded) return;
    this.#peerEnded = true;
    if (this.#events) this.#events.end();
    else this.#endUntold = true;
  }

  onDrain(): void {
    const q = this.#queue;
    while (q !== null && q.length) {
      const head = q[0]!;
      const n = this.socket.write(head);
      if (n < head.length) {
        q[0] = head.subarray(Math.max(n, 0));
        return;
      }
      q.shift();
    }
    this.#queue = null;
    if (this.#endRequested) this.#doShutdown();
    this.#events?.drain();
  }

  onError(error: Error): void {
    this.#error ??= error;
    if (!this.#closed) this.socket.terminate();
  }

  onClose(error?: Error): void {
    if (this.#closed) return;
    error ??= this.#error;
    this.#error = error;
    // After our shutdown() the peer's FIN shows up as an error-free close with no `end`.
    if (!error && !this.#peerEnded) this.onEnd();
    this.#closed = true;
    this.#queue = null;
    this.#events?.close(error);
  }
}

/** Bun socket handlers that forward every event to the SocketStream in `socket.data`. */
export const socketHandlers = {
  binaryType: "uint8array" as const,
  data(s: BunSocket, chunk: Uint8Array) {
    s.data?.onData(chunk);
  },
  end(s: BunSocket) {
    s.data?.onEnd();
  },
  drain(s: BunSocket) {
    s.data?.onDrain();
  },
  close(s: BunSocket, error?: Error) {
    s.data?.onClose(error);
  },
  error(s: BunSocket, error: Error) {
    // A handler threw or TLS failed: abort, and let `close` report it.
    s.data?.onError(error);
  },
};

/** A connect in progress (the socket's `data` until it opens). */
interface PendingDial {
  resolve(s: SocketStream): void;
  reject(e: Error): void;
  deadline: number;
  settled: boolean;
  target: string;
}

const pendingDials = new Set<PendingDial>();
let dialSweep: ReturnType<typeof setInterval> | undefined;

/** One timer for every connect in flight, rather than one per connect (a ztunnel dials per connection). */
function sweepDials(): void {
  const now = performance.now();
  for (const p of pendingDials) {
    if (now < p.deadline) continue;
    pendingDials.delete(p);
    p.settled = true;
    p.reject(new Error(`connect to ${p.target} timed out`));
  }
  if (pendingDials.size === 0 && dialSweep) {
    clearInterval(dialSweep);
    dialSweep = undefined;
  }
}

const dialHandlers = {
  ...socketHandlers,
  open(s: BunSocket) {
    const p = s.data as unknown as PendingDial;
    const stream = new SocketStream(s);
    s.setNoDelay(true);
    pendingDials.delete(p);
    // Timed out meanwhile: nobody will use it.
    if (p.settled) return void s.terminate();
    p.settled = true;
    p.resolve(stream);
  },
  connectError(s: BunSocket, error: Error) {
    const p = s.data as unknown as PendingDial;
    // Not a SocketStream: keep the shared handlers from calling into it.
    s.data = undefined;
    pendingDials.delete(p);
    if (p.settled) return;
    p.settled = true;
    p.reject(error);
  },
};

export interface DialOptions {
  /** Reject when not connected within this (default 10 s). */
  timeoutMs?: number;
  /** Speak TLS on the connection. */
  tls?: SocketTls;
}

/** Connects a TCP (or TLS) socket; resolves once connected, rejects on failure or after `timeoutMs`. */
export function dialTcp(hostname: string, port: number, opts: DialOptions = {}): Promise<SocketStream> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const p: PendingDial = { resolve, reject, deadline: performance.now() + timeoutMs, settled: false, target: `${hostname}:${port}` };
    pendingDials.add(p);
    if (!dialSweep) {
      dialSweep = setInterval(sweepDials, 500);
      (dialSweep as { unref?: () => void }).unref?.();
    }
    Bun.connect<SocketStream | undefined>({
      hostname,
      port,
      allowHalfOpen: true,
      data: p as unknown as SocketStream,
      socket: dialHandlers,
      ...(opts.tls ? { tls: opts.tls } : {}),
    }).catch(() => {/* reported through connectError */});
  });
}

export interface TcpListener {
  readonly port: number;
  readonly hostname: string;
  /** Stop accepting; open connections are not touched. */
  stop(): void;
}

/**
 * Listens for TCP (TLS with `tls`) and hands every accepted connection to `onAccept` as a SocketStream. The
 * socket is paused until the handler binds the stream and resumes it, so a client that speaks first
 * does not fill memory while the upstream is being chosen. `reusePort` lets a restarting ztunnel
 * share the port with its predecessor (the kernel spreads new connections over both).
 */
export function listenTcp(
  addr: { hostname: string; port: number; reusePort?: boolean; tls?: SocketTls },
  onAccept: (stream: SocketStream) => void,
): TcpListener {
  const listener = Bun.listen<SocketStream | undefined>({
    hostname: addr.hostname,
    port: addr.port,
    allowHalfOpen: true,
    data: undefined,
    // Bun.listen honours reusePort at run time although its types list it only for connect.
    ...(addr.reusePort ? { reusePort: true } : {}),
    ...(addr.tls ? { tls: addr.tls } : {}),
    socket: {
      ...socketHandlers,
      open(s: BunSocket) {
        const stream = new SocketStream(s);
        s.setNoDelay(true);
        stream.holdUntilBind();
        try {
          onAccept(stream);
        } catch (e) {
          stream.onError(e as Error);
        }
      },
    },
  } as unknown as Bun.TCPSocketListenOptions<SocketStream | undefined>);
  return {
    port: listener.port,
    hostname: listener.hostname,
    stop: () => listener.stop(false),
  };
}
