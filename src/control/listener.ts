/**
 * The 15012 listener: HTTP/2 over TLS (node:http2, because Bun.serve does not expose the peer certificate
 * and this listener authenticates proxies by their control-plane client certificate). The client
 * certificate is requested but optional at the TLS layer, so that a proxy without one can bootstrap with
 * its token; every endpoint decides for itself what it requires. Unary calls go to the hono app; the config
 * stream is wired to the XdsServer.
 */
import http2 from "node:http2";
import type { TLSSocket } from "node:tls";
import type { Hono } from "hono";
import { ErrorCode } from "../core/mod.ts";
import { logger, splitAddr } from "../core/mod.ts";
import { callerFromIdentity } from "../identity/mod.ts";
import { ClientMessageSchema, FrameReader, parseWith, PATHS, type XdsServer } from "../xds/mod.ts";
import { type ApiEnv, type PeerInfo, proxyIdOf } from "./api.ts";

const log = logger("control");
const MAX_BODY = 1024 * 1024;

export interface TlsMaterial {
  /** Serving chain (leaf + intermediates). */
  cert: string;
  key: string;
  /** Roots client certificates are verified against. */
  ca: string;
}

export interface ListenerOptions {
  listen: string;
  tls: TlsMaterial;
  trustDomain: string;
  app: Hono<ApiEnv>;
  xds: XdsServer;
}

export class ControlListener {
  #server: http2.Http2SecureServer;
  #sessions = new Set<http2.ServerHttp2Session>();
  #peers = new WeakMap<http2.ServerHttp2Session, PeerInfo>();
  #o: ListenerOptions;
  port = 0;

  private constructor(o: ListenerOptions) {
    this.#o = o;
    this.#server = http2.createSecureServer({
      ...o.tls,
      requestCert: true,
      rejectUnauthorized: false,
      settings: { initialWindowSize: 1024 * 1024 },
    });
    this.#server.on("session", (s) => {
      this.#sessions.add(s);
      s.on("close", () => this.#sessions.delete(s));
      s.on("error", () => {});
    });
    this.#server.on("stream", (stream, headers) => this.#onStream(stream as http2.ServerHttp2Stream, headers));
    this.#server.on("tlsClientError", (e) => log.debug("TLS handshake failed", { error: String(e) }));
  }

  static async start(o: ListenerOptions): Promise<ControlListener> {
    const l = new ControlListener(o);
    const { hostname, port } = splitAddr(o.listen, 15012);
    await new Promise<void>((resolve, reject) => {
      l.#server.once("error", reject);
      l.#server.listen(port, hostname, () => {
        l.#server.off("error", reject);
        resolve();
      });
    });
    l.port = (l.#server.address() as { port: number }).port;
    log.info("listening", { address: `${hostname}:${l.port}` });
    return l;
  }

  /** New serving certificate or trust bundle: applies to the next handshake. */
  setTls(tls: TlsMaterial): void {
    this.#o.tls = tls;
    this.#server.setSecureContext({ ...tls });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sessions) s.destroy();
      setTimeout(resolve, 1000);
    });
  }

  #peer(session: http2.ServerHttp2Session): PeerInfo {
    let p = this.#peers.get(session);
    if (p) return p;
    const sock = session.socket as TLSSocket;
    p = { remote: `${sock.remoteAddress}:${sock.remotePort}` };
    if (sock.authorized) {
      const cert = sock.getPeerCertificate();
      const uris = (cert?.subjectaltname ?? "").split(/,\s*/).filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
      if (uris.length === 1) {
        p.caller = callerFromIdentity(uris[0]!, this.#o.trustDomain);
        if (cert.valid_to) p.clientCertNotAfter = new Date(cert.valid_to);
      }
    }
    this.#peers.set(session, p);
    return p;
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => {});
    const path = String(headers[":path"] ?? "/");
    const method = String(headers[":method"] ?? "GET");
    const peer = this.#peer(stream.session as http2.ServerHttp2Session);
    if (path === PATHS.stream && method === "POST") return this.#onConfigStream(stream, peer);
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        if (!stream.headersSent) {
          stream.respond({ ":status": 413, "content-type": "application/json" });
          stream.end(JSON.stringify({ error: `Request body larger than ${MAX_BODY} bytes`, code: ErrorCode.Usage }));
        }
        return;
      }
      chunks.push(d);
    });
    stream.on("end", async () => {
      if (stream.headersSent) return;
      const h = new Headers();
      for (const [k, v] of Object.entries(headers)) {
        if (k.startsWith(":") || v === undefined) continue;
        h.set(k, Array.isArray(v) ? v.join(", ") : String(v));
      }
      const body = method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks);
      let res: Response;
      try {
        res = await this.#o.app.fetch(new Request(`https://control${path}`, { method, headers: h, body }), { peer });
      } catch (e) {
        log.error("request failed", { path, error: String(e) });
        res = Response.json({ error: "Internal error", code: "MESH_INTERNAL" }, { status: 500 });
      }
      const type = res.headers.get("content-type") ?? "application/json";
      if (type === "application/x-ndjson" && res.body) return this.#pipe(stream, res.status, type, res.body);
      const out = Buffer.from(await res.arrayBuffer());
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ":status": res.status, "content-type": type });
      stream.end(out);
    });
  }

  /** A streamed answer (`mesh observe --follow`): written as it comes, cancelled when the client goes. */
  #pipe(stream: http2.ServerHttp2Stream, status: number, type: string, body: ReadableStream<Uint8Array>): void {
    if (stream.destroyed || stream.closed) return void body.cancel();
    stream.respond({ ":status": status, "content-type": type });
    const reader = body.getReader();
    stream.on("close", () => void reader.cancel().catch(() => {}));
    const next = (): void => {
      reader.read().then(({ done, value }) => {
        if (done || stream.destroyed || stream.closed) return void (stream.destroyed || stream.closed ? undefined : stream.end());
        // Wait for the client to drain before reading more: a slow reader makes the source drop, not grow.
        if (stream.write(value)) next();
        else stream.once("drain", next);
      }, () => stream.destroy());
    };
    next();
  }

  #onConfigStream(stream: http2.ServerHttp2Stream, peer: PeerInfo): void {
    const proxy = peer.caller && proxyIdOf(peer.caller);
    if (!proxy) {
      log.warn("config stream refused", { remote: peer.remote, reason: "no node or gateway client certificate" });
      stream.respond({ ":status": 401, "content-type": "application/json" });
      stream.end(JSON.stringify({ error: "The config stream needs a node or gateway client certificate (POST /v1/bootstrap with a token first)", code: ErrorCode.TokenInvalid }));
      return;
    }
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    const conn = this.#o.xds.connect(proxy, {
      write: (frame) => {
        if (!stream.destroyed && !stream.closed) stream.write(frame);
      },
      close: () => {
        if (!stream.destroyed && !stream.closed) stream.end();
      },
    }, { remote: peer.remote, clientCertNotAfter: peer.clientCertNotAfter });
    const reader = new FrameReader(1024 * 1024);
    const refuse = (why: string) => {
      log.warn("closing a config stream: protocol error", { proxy: conn.key, error: why });
      if (!stream.destroyed && !stream.closed) {
        stream.end(JSON.stringify({ type: "error", code: ErrorCode.Usage, message: why }) + "\n");
      }
      conn.closedByPeer();
    };
    stream.on("data", (d: Buffer) => {
      let frames: string[];
      try {
        frames = reader.push(d);
      } catch (e) {
        return refuse((e as Error).message);
      }
      for (const f of frames) {
        if (f.trim() === "") continue;
        let raw: unknown;
        try {
          raw = JSON.parse(f);
        } catch {
          return refuse("a frame is not JSON");
        }
        const m = parseWith(ClientMessageSchema, raw);
        if (!m.ok) return refuse(`invalid frame: ${m.error}`);
        conn.receive(m.value);
      }
    });
    stream.on("close", () => conn.closedByPeer());
  }
}
