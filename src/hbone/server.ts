/**
 * The HBONE server: a plain TCP listener whose connections are upgraded to TLS one by one, so the
 * certificate can be chosen per connection from its original destination before the handshake
 * (docs/bun.md 6), then HTTP/2 with CONNECT streams handed to the caller.
 */
import type { Socket, TCPSocketListener } from "bun";
import { logger } from "../core/mod.ts";
import { HBONE } from "./constants.ts";
import { H2Connection, type H2Settings } from "./connection.ts";
import type { HboneStream } from "./stream.ts";
import { checkClientPeer, serverTlsOptions, type TlsMaterial } from "./tls.ts";

const log = logger("hbone");

/** What the certificate callback knows about a new connection, before any TLS byte is read. */
export interface ConnectionInfo {
  /** Local address of the accepted socket (for a REDIRECTed connection: not the original destination). */
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The socket's file descriptor: read SO_ORIGINAL_DST from it. */
  fd: number;
}

/** Certificate for one connection, plus anything the caller wants back on its streams (`stream.context`). */
export interface ServerTls extends TlsMaterial {
  context?: unknown;
}

export interface HboneServerOptions {
  /** Listen address (default "0.0.0.0"). */
  hostname?: string;
  /** Listen port (default 15008; 0 picks a free port, see `server.port`). */
  port?: number;
  /**
   * The server certificate: fixed, or chosen per connection. Returning undefined closes the
   * connection without a handshake. Called for every connection, so a renewed certificate applies
   * to the next connection without restarting anything.
   */
  tls: ServerTls | ((info: ConnectionInfo) => ServerTls | undefined);
  /**
   * A CONNECT stream arrived: read `stream.authority`, `stream.headers`, `stream.peerIdentity`,
   * `stream.peerAddress`, `stream.context`; answer with `stream.respond(200)` then bytes, or
   * `stream.respond(400 | 401 | 503)`.
   */
  onStream: (stream: HboneStream) => void;
  /** HTTP/2 settings (defaults are HBONE's). */
  settings?: Partial<H2Settings>;
  /** Connections that have not finished the TLS handshake after this are closed (default 10 s). */
  handshakeTimeoutMs?: number;
  /**
   * SO_REUSEPORT: share the port with another process (a restarting ztunnel overlaps its predecessor,
   * which drains while the new one accepts). Bun.listen honours it at run time.
   */
  reusePort?: boolean;
  /**
   * When set, a client identity outside this trust domain is refused at the handshake. A function is asked
   * at each handshake (the mesh's trust domain comes with its configuration).
   */
  trustDomain?: string | (() => string | undefined);
}

interface RawData {
  server: HboneServer;
  tls?: Socket<ConnData>;
}
interface ConnData {
  server: HboneServer;
  conn: H2Connection | null;
  context: unknown;
  /** Peer address, kept from before the handshake: a failed socket no longer knows it. */
  peer: string;
}

/** Counters for metrics: what the server accepted and refused. */
export interface HboneServerStats {
  /** TCP connections accepted. */
  accepted: number;
  /** Connections closed before TLS: no certificate for them (callback returned undefined or threw). */
  noCertificate: number;
  /** TLS handshakes refused: bad or missing client certificate, no SPIFFE ID, not TLS 1.3 or h2. */
  handshakeRefused: number;
  /** HTTP/2 connections established. */
  established: number;
}

const tlsHandlers = {
  handshake(s: Socket<ConnData>, ok: boolean, err: Error | null) {
    s.data.server._handshake(s, ok, err);
  },
  data(s: Socket<ConnData>, chunk: Uint8Array) {
    s.data.conn?.receive(chunk);
  },
  drain(s: Socket<ConnData>) {
    s.data.conn?.writable();
  },
  end(s: Socket<ConnData>) {
    // HTTP/2 has no half-close at the connection level: the peer's FIN ends it.
    const c = s.data.conn;
    if (c) c.transportClosed();
    else s.terminate();
  },
  close(s: Socket<ConnData>, err?: Error) {
    s.data.server._closed(s, err);
  },
  error(s: Socket<ConnData>, err: Error) {
    log.debug("hbone server socket error", { error: err.message, peer: s.remoteAddress });
  },
  timeout(s: Socket<ConnData>) {
    // Handshake deadline, or the grace period of a connection we already closed.
    s.terminate();
  },
};

/** An HBONE listener. Create with `HboneServer.listen(opts)`. */
export class HboneServer {
  readonly hostname: string;
  readonly port: number;
  #listener: TCPSocketListener<RawData>;
  #opts: HboneServerOptions;
  #sockets = new Set<Socket<ConnData>>();
  #closing = false;
  #onIdle: (() => void) | null = null;
  /** Counters since start (export them as metrics). */
  readonly stats: HboneServerStats = { accepted: 0, noCertificate: 0, handshakeRefused: 0, established: 0 };

  private constructor(opts: HboneServerOptions) {
    this.#opts = opts;
    const server = this;
    this.#listener = Bun.listen<RawData>({
      hostname: opts.hostname ?? "0.0.0.0",
      port: opts.port ?? HBONE.port,
      ...(opts.reusePort ? { reusePort: true } : {}),
      data: { server } as RawData,
      socket: {
        open(raw) {
          raw.data = { server };
          server.#accept(raw);
        },
        data() {},
        close() {},
        error() {},
      },
    });
    this.hostname = this.#listener.hostname;
    this.port = this.#listener.port;
  }

  /** Starts listening (synchronously; throws if the address is taken). */
  static listen(opts: HboneServerOptions): HboneServer {
    return new HboneServer(opts);
  }

  /** Open HBONE connections (TLS handshake included). */
  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Stops accepting; sends GOAWAY on every connection so streams in flight finish. Resolves once all
   * connections are closed; after `timeoutMs` (default 10 s) the rest are closed hard.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#listener.stop(false);
      for (const s of this.#sockets) {
        if (s.data.conn) s.data.conn.close(opts.timeoutMs ?? 10_000);
        else s.terminate();
      }
    }
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.#onIdle;
      this.#onIdle = () => {
        prev?.();
        resolve();
      };
    });
  }

  /**
   * Sends GOAWAY on every open connection and keeps listening: streams in flight finish, clients open
   * new connections for new streams (for example after a certificate change, or before a restart).
   */
  drain(): void {
    for (const s of this.#sockets) s.data.conn?.close(30_000);
  }

  #accept(raw: Socket<RawData>): void {
    if (this.#closing) return raw.terminate();
    this.stats.accepted++;
    let material: ServerTls | undefined;
    try {
      const t = this.#opts.tls;
      material = typeof t === "function"
        ? t({
          localAddress: raw.localAddress,
          localPort: raw.localPort,
          remoteAddress: raw.remoteAddress,
          remotePort: raw.remotePort,
          fd: (raw as unknown as { fd: number }).fd,
        })
        : t;
    } catch (e) {
      log.warn("hbone certificate callback failed: connection closed", { error: (e as Error).message, peer: raw.remoteAddress });
      material = undefined;
    }
    if (!material) {
      this.stats.noCertificate++;
      log.debug("hbone connection refused: no certificate for it", { local: `${raw.localAddress}:${raw.localPort}` });
      return raw.terminate();
    }
    try {
      const [, tls] = raw.upgradeTLS<ConnData>({
        data: { server: this, conn: null, context: material.context, peer: `${raw.remoteAddress}:${raw.remotePort}` },
        tls: serverTlsOptions(material) as Bun.TLSOptions,
        socket: tlsHandlers,
      });
      this.#sockets.add(tls);
      tls.timeout(Math.ceil((this.#opts.handshakeTimeoutMs ?? 10_000) / 1000));
    } catch (e) {
      log.warn("hbone TLS setup failed: connection closed", { error: (e as Error).message });
      raw.terminate();
    }
  }

  /** @internal */
  _handshake(s: Socket<ConnData>, ok: boolean, err: Error | null): void {
    const td = this.#opts.trustDomain;
    const [reason, identity] = checkClientPeer(s as never, ok, err, typeof td === "function" ? td() : td);
    if (reason) {
      this.stats.handshakeRefused++;
      // A client that went away mid-handshake is not news; a refused certificate is.
      const gone = (err as { code?: string } | null)?.code === "ECONNRESET";
      (gone ? log.debug : log.warn)("hbone connection refused", { reason, peer: s.data.peer });
      s.terminate();
      return;
    }
    s.timeout(0);
    this.stats.established++;
    const conn = new H2Connection(s as never, { isClient: false, settings: this.#opts.settings });
    conn.peerIdentity = identity;
    conn.peerAddress = s.data.peer;
    conn.localAddress = `${s.localAddress}:${s.localPort}`;
    conn.context = s.data.context;
    conn.onStream = this.#opts.onStream;
    s.data.conn = conn;
    conn.start();
    if (this.#closing) conn.close(1000);
  }

  /** @internal */
  _closed(s: Socket<ConnData>, err?: Error): void {
    s.data.conn?.transportClosed(err);
    this.#sockets.delete(s);
    if (this.#sockets.size === 0 && this.#onIdle) {
      const f = this.#onIdle;
      this.#onIdle = null;
      f();
    }
  }
}
