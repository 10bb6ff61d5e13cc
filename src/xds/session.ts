/**
 * The session of a proxy with the control plane: bootstraps a control-plane client certificate with the
 * token (read again at each bootstrap), holds the config stream open (HTTP/2 PING keepalive, reconnect
 * with jittered backoff), hands each frame over in order, and relays workload CSRs over the same
 * connection. What the frames mean is not its business (./proxy_state.ts decides, ./client.ts applies).
 */
import type http2 from "node:http2";
import { readFileSync } from "node:fs";
import { ErrorCode, logger, MeshError } from "../core/mod.ts";
import type { ClientCert, LastKnownGood } from "./last_known_good.ts";
import {
  BootstrapResponseSchema,
  type ClientMessage,
  CsrResponseSchema,
  type CsrResponse,
  parseWith,
  PATHS,
  type ProxyId,
  proxyKey,
} from "./protocol.ts";
import { callJson, errorOf, FrameReader, openSession } from "./transport.ts";

const log = logger("xds-client");

/** How to reach and authenticate to the control plane (part of XdsClientOptions). */
export interface SessionOptions {
  /** "HOST:PORT" of the control role (15012). */
  controlPlane: string;
  /** The control plane's root (the --ca-cert file's text). */
  caCertPem: string;
  /**
   * Bootstrap token (`mesh token create`, or a Kubernetes projected service-account token), or a function
   * that returns the current one. Read at each bootstrap, not once.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * A file holding the token, read again at each bootstrap; wins over `token` when both are given. The
   * kubelet rotates a projected token in place, so a proxy cut off longer than its client certificate lives
   * must bootstrap with the file's current content, not the one it started with.
   */
  tokenFile?: string;
  /** Who this proxy is; the token must be for the same node or gateway. */
  proxy: ProxyId;
  /** Connection state changes (for readiness and logs). */
  onConnectionChange?: (connected: boolean, error?: Error) => void;
  backoff?: { initialMs?: number; maxMs?: number };
  /** PING interval (and timeout) that detects a silent control plane; default 15 s. */
  keepaliveMs?: number;
  /** Shown by `mesh status`. */
  build?: string;
}

/** What the session needs from the configuration side. */
export interface SessionHooks {
  /** The configuration held now: announced in hello, and its trust bundle is trusted (root rotation). */
  held(): { version: number; epoch: string; trustBundlePem: string } | undefined;
  /** One frame of the config stream. Frames are handed over strictly in order, each after the last settled. */
  onFrame(frame: string, send: (m: ClientMessage) => void): Promise<void>;
}

export class ControlPlaneSession {
  readonly #o: SessionOptions;
  readonly #key: string;
  readonly #store: LastKnownGood;
  readonly #hooks: SessionHooks;
  #clientCert?: ClientCert;
  #session?: http2.ClientHttp2Session;
  #sessionPromise?: Promise<http2.ClientHttp2Session>;
  #stream?: http2.ClientHttp2Stream;
  #running = false;
  #connected = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #lastError?: string;
  #extraRoots = "";
  /** The last token read successfully: used if the token file is briefly unreadable (mid-rotation). */
  #lastToken?: string;

  /** @throws MeshError (MESH_USAGE) when there is no token source at all. */
  constructor(opts: SessionOptions, store: LastKnownGood, hooks: SessionHooks) {
    if (opts.token === undefined && !opts.tokenFile) {
      throw new MeshError(ErrorCode.Usage, "The control-plane client needs a bootstrap token: give token or tokenFile");
    }
    this.#o = opts;
    this.#store = store;
    this.#hooks = hooks;
    if (typeof opts.token === "string") this.#lastToken = opts.token.trim();
    this.#key = proxyKey(opts.proxy);
  }

  /** Takes the saved client certificate back, if any. */
  loadCredentials(): void {
    this.#clientCert = this.#store.loadClientCert();
  }

  /** Opens the config stream in the background and keeps it open until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    this.#stream?.close();
    this.#session?.destroy();
    this.#session = undefined;
    await this.#loop?.catch(() => {});
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Why the last attempt failed or the control plane refused this proxy; cleared when a stream opens. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The control plane refused this proxy in an error frame (it closes the stream next). */
  refused(code: string, message: string): void {
    this.#lastError = `${code}: ${message}`;
    log.error("control plane refused this proxy", { proxy: this.#key, code, message });
  }

  get clientCertNotAfter(): string | undefined {
    return this.#clientCert?.notAfter;
  }

  /**
   * Sends a workload CSR to the control plane's CA. Usable as WorkloadCertificates' `sign`.
   * @throws MeshError: MESH_NODE_NOT_AUTHORIZED when node authorization refuses the identity,
   * MESH_UNREACHABLE when the control plane cannot be reached, MESH_CERT_INVALID for a bad CSR.
   */
  async sign(csrPem: string, identity: string, ttlSeconds?: number): Promise<CsrResponse> {
    const session = await this.#ensureSession();
    const r = await callJson(session, "POST", PATHS.csr, { csr: csrPem, identity, ttlSeconds });
    if (r.status === 401 && session === this.#session) {
      this.#clientCert = undefined;
      this.#dropSession();
    }
    if (r.status !== 200) throw errorOf(r.status, r.body, `Certificate for "${identity}" refused`);
    const parsed = parseWith(CsrResponseSchema, r.body);
    if (!parsed.ok) throw new MeshError(ErrorCode.CertificateInvalid, `Unexpected CSR answer: ${parsed.error}`);
    return parsed.value;
  }

  /**
   * Posts a JSON body on the session already open, never opening one: reports (flow records) must not
   * make a proxy dial a control plane that is away. Resolves false when there is no session or it failed.
   */
  async report(path: string, body: unknown, timeoutMs = 5000): Promise<boolean> {
    const s = this.#session;
    if (!s || s.closed || s.destroyed || !this.#connected) return false;
    try {
      const r = await callJson(s, "POST", path, body, {}, timeoutMs);
      return r.status >= 200 && r.status < 300;
    } catch {
      return false;
    }
  }

  // ---- connection loop ----

  async #run(): Promise<void> {
    const initial = this.#o.backoff?.initialMs ?? 200;
    const max = this.#o.backoff?.maxMs ?? 15_000;
    let delay = initial;
    while (this.#running) {
      let gotFrame = false;
      try {
        const session = await this.#ensureSession();
        gotFrame = await this.#runStream(session);
      } catch (e) {
        this.#lastError = (e as Error).message;
        if (this.#running) log.warn("control plane stream failed", { proxy: this.#key, error: this.#lastError, retryInMs: delay });
      }
      this.#setConnected(false, this.#lastError ? new Error(this.#lastError) : undefined);
      this.#dropSession();
      if (!this.#running) break;
      if (gotFrame) delay = initial;
      // Full jitter keeps hundreds of proxies from reconnecting in lockstep after a control-plane restart.
      const wait = Math.round(delay / 2 + Math.random() * delay / 2);
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      delay = Math.min(max, delay * 2);
    }
  }

  #setConnected(v: boolean, err?: Error): void {
    if (this.#connected === v) return;
    this.#connected = v;
    try {
      this.#o.onConnectionChange?.(v, err);
    } catch (e) {
      log.error("onConnectionChange failed", { error: String(e) });
    }
  }

  #dropSession(): void {
    this.#session?.destroy();
    this.#session = undefined;
    this.#sessionPromise = undefined;
  }

  /** Runs one config stream until it ends. Returns whether any frame arrived. */
  #runStream(session: http2.ClientHttp2Session): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": PATHS.stream, "content-type": "application/x-ndjson" }, { endStream: false });
      this.#stream = stream;
      const reader = new FrameReader();
      let gotFrame = false;
      let queue = Promise.resolve();
      const send = (m: ClientMessage) => {
        if (!stream.closed && !stream.destroyed) stream.write(JSON.stringify(m) + "\n");
      };
      stream.on("response", (h) => {
        const status = Number(h[":status"]);
        if (status !== 200) {
          // The client certificate is no longer accepted (its root was removed, or the CA changed): the
          // next attempt bootstraps again with the token.
          if (status === 401) this.#clientCert = undefined;
          const chunks: Buffer[] = [];
          stream.on("data", (d: Buffer) => chunks.push(d));
          stream.on("end", () => {
            let body: unknown;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch { /* not JSON */ }
            reject(errorOf(status, body, "Config stream refused"));
          });
          return;
        }
        this.#setConnected(true);
        this.#lastError = undefined;
        log.info("config stream open", { proxy: this.#key, controlPlane: this.#o.controlPlane, holding: this.#hooks.held()?.version });
        stream.on("data", (d: Buffer) => {
          let frames: string[];
          try {
            frames = reader.push(d);
          } catch (e) {
            stream.close();
            reject(e);
            return;
          }
          for (const f of frames) {
            gotFrame = true;
            // Frames apply strictly in order, even when applying one is asynchronous.
            queue = queue.then(() => this.#hooks.onFrame(f, send)).catch((e) => {
              log.error("applying a frame failed", { proxy: this.#key, error: String(e) });
            });
          }
        });
      });
      stream.on("end", () => queue.then(() => resolve(gotFrame)));
      stream.on("close", () => queue.then(() => resolve(gotFrame)));
      stream.on("error", (e) => reject(new MeshError(ErrorCode.Unreachable, `Config stream broke: ${e.message}`, { cause: e })));
      const held = this.#hooks.held();
      send({ type: "hello", version: held?.version, epoch: held?.epoch, build: this.#o.build });
    });
  }

  // ---- credentials ----

  #trustRoots(): string {
    // After a root rotation the control plane may serve a certificate from the new root: trust the pushed bundle too.
    return [this.#o.caCertPem.trim(), this.#hooks.held()?.trustBundlePem.trim() ?? "", this.#extraRoots.trim()].filter(Boolean).join("\n") + "\n";
  }

  #ensureSession(): Promise<http2.ClientHttp2Session> {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return Promise.resolve(this.#session);
    if (!this.#sessionPromise) {
      this.#sessionPromise = this.#connect().then(
        (s) => {
          this.#session = s;
          const keepalive = this.#keepalive(s);
          s.once("close", () => {
            clearInterval(keepalive);
            if (this.#session === s) {
              this.#session = undefined;
              this.#sessionPromise = undefined;
            }
          });
          return s;
        },
        (e) => {
          this.#sessionPromise = undefined;
          throw e;
        },
      );
    }
    return this.#sessionPromise;
  }

  /**
   * A control plane that vanished without closing the connection (host down, network partition) is noticed
   * by an unanswered HTTP/2 PING; the session is dropped and the stream reconnects with backoff.
   */
  #keepalive(s: http2.ClientHttp2Session): ReturnType<typeof setInterval> {
    const everyMs = this.#o.keepaliveMs ?? 15_000;
    const t = setInterval(() => {
      if (s.closed || s.destroyed) return;
      const timer = setTimeout(() => {
        log.warn("control plane stopped answering pings; reconnecting", { proxy: this.#key, controlPlane: this.#o.controlPlane });
        s.destroy(new Error("keepalive timeout"));
      }, everyMs);
      try {
        s.ping((err) => {
          clearTimeout(timer);
          if (err && !s.destroyed) s.destroy(err);
        });
      } catch {
        clearTimeout(timer);
      }
    }, everyMs);
    t.unref?.();
    return t;
  }

  async #connect(): Promise<http2.ClientHttp2Session> {
    if (!this.#clientCertUsable()) await this.#bootstrap();
    const cc = this.#clientCert!;
    return await openSession(this.#o.controlPlane, { ca: this.#trustRoots(), cert: cc.chainPem, key: cc.keyPem });
  }

  /** A client certificate is renewed at half its lifetime, so an open session never outlives it by much. */
  #clientCertUsable(): boolean {
    const cc = this.#clientCert;
    if (!cc) return false;
    const issued = Date.parse(cc.issuedAt), end = Date.parse(cc.notAfter);
    return Date.now() < issued + (end - issued) / 2;
  }

  /** A new client certificate: with the still-valid current one (mTLS) if any, else with the token. */
  async #bootstrap(): Promise<void> {
    const cc = this.#clientCert;
    const renew = cc !== undefined && Date.now() < Date.parse(cc.notAfter) - 5_000;
    const session = await openSession(
      this.#o.controlPlane,
      renew ? { ca: this.#trustRoots(), cert: cc.chainPem, key: cc.keyPem } : { ca: this.#trustRoots() },
    );
    try {
      let r = await callJson(session, "POST", PATHS.bootstrap, {}, renew ? {} : { authorization: `Bearer ${await this.#currentToken()}` });
      if (renew && r.status === 401) {
        // The CA may have changed (restored data dir, new root): fall back to the token.
        session.destroy();
        this.#clientCert = undefined;
        return await this.#bootstrap();
      }
      if (r.status !== 200) throw errorOf(r.status, r.body, "Bootstrap refused");
      const p = parseWith(BootstrapResponseSchema, r.body);
      if (!p.ok) throw new MeshError(ErrorCode.CertificateInvalid, `Unexpected bootstrap answer: ${p.error}`);
      const b = p.value;
      const mine = this.#o.proxy;
      const same = (b.caller.kind === "node" && mine.kind === "ztunnel" && b.caller.node === mine.node) ||
        (b.caller.kind === "gateway" && mine.kind === "waypoint" && b.caller.namespace === mine.namespace && b.caller.name === mine.name);
      if (!same) {
        const who = b.caller.kind === "node" ? `node "${b.caller.node}"` : b.caller.kind === "gateway" ? `gateway "${b.caller.namespace}/${b.caller.name}"` : "an admin";
        // Retrying cannot fix a token for someone else: say exactly what to do.
        throw new MeshError(ErrorCode.TokenInvalid, `The token is for ${who}, but this proxy is ${this.#key}: create one with mesh token create --${mine.kind === "ztunnel" ? `node ${mine.node}` : `gateway ${mine.namespace}/${mine.name}`}`);
      }
      this.#extraRoots = b.trustBundlePem;
      this.#clientCert = { certPem: b.certPem, chainPem: b.chainPem, keyPem: b.keyPem, notAfter: b.notAfter, issuedAt: new Date().toISOString() };
      this.#store.saveClientCert(this.#clientCert);
      log.info("control-plane client certificate issued", { proxy: this.#key, notAfter: b.notAfter });
    } finally {
      session.destroy();
    }
  }

  /**
   * The token as it is now: the file's content (or the function's answer) at this moment, since the one the
   * proxy started with may have expired while it was cut off.
   * @throws MeshError (MESH_TOKEN_INVALID) when no token can be read and none was read before.
   */
  async #currentToken(): Promise<string> {
    const { token, tokenFile } = this.#o;
    let fresh: string | undefined;
    let why = "";
    try {
      if (tokenFile) fresh = readFileSync(tokenFile, "utf8").trim();
      else if (typeof token === "function") fresh = (await token()).trim();
      else fresh = token?.trim();
      if (!fresh) why = "it is empty";
    } catch (e) {
      why = (e as Error).message;
    }
    if (fresh) {
      if (this.#lastToken !== undefined && fresh !== this.#lastToken) log.info("bootstrap token changed since the last bootstrap", { proxy: this.#key });
      this.#lastToken = fresh;
      return fresh;
    }
    const where = tokenFile ? `the token file "${tokenFile}"` : "the token source";
    if (this.#lastToken) {
      log.warn("cannot read the bootstrap token; using the last one read", { proxy: this.#key, source: where, error: why });
      return this.#lastToken;
    }
    throw new MeshError(ErrorCode.TokenInvalid, `Cannot read ${where}: ${why}`);
  }
}
