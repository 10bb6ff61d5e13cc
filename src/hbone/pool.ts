/**
 * The HBONE client pool: many CONNECT streams share one mTLS HTTP/2 connection per
 * {source identity, destination identities, destination address} (docs/hbone.md §3). A new
 * connection is opened when the current ones are draining (GOAWAY) or full (stream limit).
 */
import { ErrorCode, parseHostPort } from "../core/mod.ts";
import { H2Code, HBONE } from "./constants.ts";
import type { H2Connection, H2Settings } from "./connection.ts";
import { dial } from "./dial.ts";
import { HboneError } from "./errors.ts";
import { connectRequestFields } from "./headers.ts";
import type { HboneStream } from "./stream.ts";
import { identityOfCert, type TlsMaterial } from "./tls.ts";

export interface HbonePoolOptions {
  /** Streams per connection before another connection is opened (default 100, as ztunnel). */
  maxStreamsPerConnection?: number;
  /** Connections without streams for this long are closed (default 5 minutes). */
  idleTimeoutMs?: number;
  /** TCP + TLS deadline (default 10 s). */
  connectTimeoutMs?: number;
  /** Deadline for the server's answer to a CONNECT (default 15 s); then the stream is cancelled. */
  responseTimeoutMs?: number;
  /** HTTP/2 settings (defaults are HBONE's). */
  settings?: Partial<H2Settings>;
}

export interface HboneConnectOptions {
  /** HBONE endpoint `ip:port` / `[v6]:port` (usually port 15008). Or give `host` and `port`. */
  address?: string;
  host?: string;
  port?: number;
  /** CONNECT target `ip:port` (the :authority). */
  authority: string;
  /** Extra request headers: forwarded, baggage, traceparent... (names are lower-cased). */
  headers?: Record<string, string | undefined>;
  /** The SOURCE workload's certificate chain, key and trust bundle. */
  tls: TlsMaterial;
  /** The server certificate must carry one of these SPIFFE IDs. */
  expectedIdentities: readonly string[];
  /** Overrides the pool key (default: source identity, sorted expected identities, address). */
  poolKey?: string;
}

interface Pooled {
  key: string;
  ready: Promise<H2Connection>;
  conn: H2Connection | null;
  /** connect() calls that picked this connection and have not opened their stream yet */
  reserved: number;
  lastUsed: number;
  dead: boolean;
}

/**
 * @example
 * const pool = new HbonePool();
 * const stream = await pool.connect({
 *   address: "10.0.0.7:15008", authority: "10.0.0.7:8080",
 *   headers: { forwarded: 'for="10.0.0.3:51234"' },
 *   tls: { cert, key, ca }, expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/api"],
 * });
 * stream.on("data", (b) => socket.write(b));
 */
export class HbonePool {
  #opts: Required<Omit<HbonePoolOptions, "settings">> & { settings?: Partial<H2Settings> };
  #entries = new Map<string, Pooled[]>();
  #sweep: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  constructor(opts: HbonePoolOptions = {}) {
    this.#opts = {
      maxStreamsPerConnection: opts.maxStreamsPerConnection ?? HBONE.poolMaxStreamsPerConnection,
      idleTimeoutMs: opts.idleTimeoutMs ?? HBONE.poolIdleTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      responseTimeoutMs: opts.responseTimeoutMs ?? 15_000,
      settings: opts.settings,
    };
  }

  /** Connections currently open or opening. */
  get connections(): number {
    let n = 0;
    for (const list of this.#entries.values()) n += list.length;
    return n;
  }

  /**
   * Opens a tunnel. Resolves with the stream once the server answered 2xx; rejects with an
   * HboneError carrying `status` (401, 503, ...) when it answered otherwise, or with the TLS,
   * identity or connection failure.
   */
  async connect(opts: HboneConnectOptions): Promise<HboneStream> {
    if (this.#closed) throw new HboneError(ErrorCode.Unreachable, "HBONE pool is closed");
    const { host, port } = endpoint(opts);
    const key = opts.poolKey ??
      `${identityOfCert(opts.tls.cert)}\n${[...opts.expectedIdentities].sort().join(",")}\n${host}:${port}`;
    const fields = connectRequestFields(opts.authority, opts.headers);
    for (let attempt = 0;; attempt++) {
      const pooled = this.#pick(key, host, port, opts);
      let conn: H2Connection;
      try {
        conn = pooled.conn ?? (await pooled.ready);
      } catch (e) {
        pooled.reserved--;
        throw e;
      }
      pooled.reserved--;
      let stream: HboneStream;
      try {
        stream = conn.openStream(fields);
      } catch (e) {
        if (e instanceof HboneError && e.retryable && attempt < 2) continue;
        throw e;
      }
      const err = await new Promise<HboneError | undefined>((resolve) => {
        const timer = setTimeout(() => {
          stream.onResponse = null;
          stream.reset(H2Code.CANCEL);
          resolve(new HboneError(ErrorCode.Unreachable, `No answer to CONNECT ${opts.authority} via ${host}:${port} within ${this.#opts.responseTimeoutMs} ms`));
        }, this.#opts.responseTimeoutMs);
        stream.onResponse = (_s, e) => {
          clearTimeout(timer);
          resolve(e);
        };
      });
      if (err) {
        if (err.retryable && attempt < 2) continue;
        throw err;
      }
      if (stream.status < 200 || stream.status >= 300) {
        stream.reset(H2Code.CANCEL);
        throw new HboneError(ErrorCode.HboneRefused, `HBONE CONNECT to ${opts.authority} via ${host}:${port} answered ${stream.status}`, {
          status: stream.status,
        });
      }
      return stream;
    }
  }

  /** Closes every connection gracefully (streams in flight finish, for at most `timeoutMs`). */
  async close(timeoutMs = 5000): Promise<void> {
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
    const waits: Promise<unknown>[] = [];
    for (const list of this.#entries.values()) {
      for (const p of list) {
        waits.push(p.ready.then((c) => {
          if (c.closed) return;
          return new Promise<void>((resolve) => {
            const prev = c.onClose;
            c.onClose = (e) => {
              prev?.(e);
              resolve();
            };
            c.close(timeoutMs);
          });
        }, () => {}));
      }
    }
    await Promise.all(waits);
    this.#entries.clear();
  }

  #pick(key: string, host: string, port: number, opts: HboneConnectOptions): Pooled {
    const now = Date.now();
    let list = this.#entries.get(key);
    if (list) {
      for (const p of list) {
        const c = p.conn;
        if (p.dead || (c !== null && c.draining)) continue;
        const limit = Math.min(this.#opts.maxStreamsPerConnection, c ? c.peerMaxConcurrentStreams : Infinity);
        if (p.reserved + (c ? c.localStreams : 0) < limit) {
          p.reserved++;
          p.lastUsed = now;
          return p;
        }
      }
    } else {
      list = [];
      this.#entries.set(key, list);
    }
    const pooled: Pooled = { key, ready: null as never, conn: null, reserved: 1, lastUsed: now, dead: false };
    pooled.ready = dial({
      host,
      port,
      tls: opts.tls,
      expectedIdentities: opts.expectedIdentities,
      settings: this.#opts.settings,
      timeoutMs: this.#opts.connectTimeoutMs,
    }).then((conn) => {
      pooled.conn = conn;
      conn.onClose = () => this.#remove(pooled);
      if (this.#closed) conn.close(0);
      return conn;
    }, (e) => {
      this.#remove(pooled);
      throw e;
    });
    list.push(pooled);
    this.#startSweep();
    return pooled;
  }

  #remove(p: Pooled): void {
    p.dead = true;
    const list = this.#entries.get(p.key);
    if (!list) return;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#entries.delete(p.key);
  }

  #startSweep(): void {
    if (this.#sweep) return;
    const every = Math.max(50, Math.min(30_000, this.#opts.idleTimeoutMs / 2));
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const list of this.#entries.values()) {
        for (const p of [...list]) {
          const c = p.conn;
          if (c && c.localStreams > 0) p.lastUsed = now;
          else if (c && p.reserved === 0 && now - p.lastUsed >= this.#opts.idleTimeoutMs) {
            this.#remove(p);
            c.close(0);
          }
        }
      }
      if (this.#entries.size === 0 && this.#sweep) {
        clearInterval(this.#sweep);
        this.#sweep = null;
      }
    }, every);
    (this.#sweep as { unref?: () => void }).unref?.();
  }
}

function endpoint(opts: HboneConnectOptions): { host: string; port: number } {
  if (opts.address) {
    const a = parseHostPort(opts.address);
    if (!a) throw new HboneError(ErrorCode.Usage, `Invalid HBONE address "${opts.address}": use ip:port or [ipv6]:port`);
    return a;
  }
  if (!opts.host || !opts.port) throw new HboneError(ErrorCode.Usage, "HBONE connect needs an address, or a host and a port");
  return { host: opts.host, port: opts.port };
}
