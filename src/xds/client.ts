/**
 * The control-plane client of a ztunnel or a waypoint: bootstraps a control-plane client certificate with
 * its token, holds the config stream open (reconnecting with backoff), applies snapshots and deltas,
 * ACKs what it applied and NACKs what it refuses, keeps the last-known-good view in its data dir so a
 * restart while the control plane is down still serves, and signs workload CSRs for the certificate
 * client (src/identity WorkloadCertificates `sign`).
 *
 * @example
 * const xds = new XdsClient({
 *   controlPlane: "10.0.0.10:15012", caCertPem, tokenFile: "/var/run/secrets/tokens/mesh-token",
 *   proxy: { kind: "ztunnel", node: "worker-a" },
 *   dataDir: "/var/lib/mesh-ztunnel",
 *   validate: (view) => view.model.workloads.length ? undefined : "no workloads",
 *   onUpdate: (view, version) => state.replace(view),
 * });
 * await xds.start();          // applies last-known-good at once, if any; connects in the background
 * const certs = new WorkloadCertificates({ sign: (csr, id) => xds.sign(csr, id) });
 */
import type http2 from "node:http2";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { logger } from "../core/mod.ts";
import type { MeshConfig, MeshModel } from "../model/mod.ts";
import {
  BootstrapResponseSchema,
  type ClientMessage,
  COLLECTIONS,
  type Collection,
  CsrResponseSchema,
  type CsrResponse,
  DeltaMessageSchema,
  parseWith,
  PATHS,
  type ProxyId,
  proxyKey,
  resourceKey,
  SnapshotMessageSchema,
  type XdsView,
} from "./protocol.ts";
import { callJson, errorOf, FrameReader, openSession } from "./transport.ts";

const log = logger("xds-client");

export interface XdsClientOptions {
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
  /** Where the last-known-good view and the control-plane client certificate are kept. */
  dataDir?: string;
  /** Returns a reason to refuse (NACK) a version; undefined accepts it. */
  validate?: (view: XdsView, version: number) => string | undefined;
  /** Called with each accepted view (and once at start with the last-known-good one). A throw NACKs. */
  onUpdate?: (view: XdsView, version: number) => void | Promise<void>;
  /** Connection state changes (for readiness and logs). */
  onConnectionChange?: (connected: boolean, error?: Error) => void;
  backoff?: { initialMs?: number; maxMs?: number };
  /** PING interval (and timeout) that detects a silent control plane; default 15 s. */
  keepaliveMs?: number;
  /** Shown by `mesh status`. */
  build?: string;
}

/** A control-plane client certificate held by the client. */
interface ClientCert {
  certPem: string;
  chainPem: string;
  keyPem: string;
  notAfter: string;
  issuedAt: string;
}

interface Held {
  version: number;
  epoch: string;
  meshConfig: MeshConfig;
  trustBundlePem: string;
  maps: Record<Collection, Map<string, object>>;
  view: XdsView;
}

export interface XdsClientStatus {
  connected: boolean;
  version?: number;
  /** Where the held view came from. */
  source?: "control-plane" | "last-known-good";
  lastNack?: { version: number; reason: string };
  lastError?: string;
  clientCertNotAfter?: string;
}

export class XdsClient {
  readonly #o: XdsClientOptions;
  readonly #key: string;
  #held?: Held;
  #source?: "control-plane" | "last-known-good";
  #clientCert?: ClientCert;
  #session?: http2.ClientHttp2Session;
  #sessionPromise?: Promise<http2.ClientHttp2Session>;
  #stream?: http2.ClientHttp2Stream;
  #running = false;
  #connected = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #lastNack?: { version: number; reason: string };
  #lastError?: string;
  #firstView: Promise<void>;
  #resolveFirstView!: () => void;
  #extraRoots = "";
  /** The last token read successfully: used if the token file is briefly unreadable (mid-rotation). */
  #lastToken?: string;

  constructor(opts: XdsClientOptions) {
    if (opts.token === undefined && !opts.tokenFile) {
      throw new MeshError(ErrorCode.Usage, "The control-plane client needs a bootstrap token: give token or tokenFile");
    }
    this.#o = opts;
    if (typeof opts.token === "string") this.#lastToken = opts.token.trim();
    this.#key = proxyKey(opts.proxy);
    this.#firstView = new Promise((r) => (this.#resolveFirstView = r));
  }

  /**
   * Loads the last-known-good view from the data dir (calling onUpdate with it), then connects in the
   * background. Resolves without waiting for the control plane.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#loadClientCert();
    await this.#loadLastKnownGood();
    this.#loop = this.#run();
  }

  /** Resolves once a view is held (last-known-good or from the control plane), or rejects after timeoutMs. */
  async ready(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#firstView,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new MeshError(ErrorCode.Unreachable, `No configuration from ${this.#o.controlPlane} within ${timeoutMs} ms${this.#lastError ? `: ${this.#lastError}` : ""}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    if (this.#saveTimer) this.#flushLastKnownGood();
    this.#running = false;
    this.#wake?.();
    this.#stream?.close();
    this.#session?.destroy();
    this.#session = undefined;
    await this.#loop?.catch(() => {});
  }

  /** The last applied view and its version. */
  current(): { version: number; view: XdsView } | undefined {
    return this.#held && { version: this.#held.version, view: this.#held.view };
  }

  status(): XdsClientStatus {
    return {
      connected: this.#connected,
      version: this.#held?.version,
      source: this.#source,
      lastNack: this.#lastNack,
      lastError: this.#lastError,
      clientCertNotAfter: this.#clientCert?.notAfter,
    };
  }

  get connected(): boolean {
    return this.#connected;
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

  // ---- connection loop ----

  async #run(): Promise<void> {
    const initial = this.#o.backoff?.initialMs ?? 200;
    const max = this.#o.backoff?.maxMs ?? 15_000;
    let delay = initial;
    while (this.#running) {
      let gotFrame = false;
      try {
        const session = await this.#ensureSession();
        gotFrame = await this.#stream_(session);
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
  #stream_(session: http2.ClientHttp2Session): Promise<boolean> {
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
        log.info("config stream open", { proxy: this.#key, controlPlane: this.#o.controlPlane, holding: this.#held?.version });
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
            // Frames apply strictly in order, even when onUpdate is asynchronous.
            queue = queue.then(() => this.#onFrame(f, send)).catch((e) => {
              log.error("applying a frame failed", { proxy: this.#key, error: String(e) });
            });
          }
        });
      });
      stream.on("end", () => queue.then(() => resolve(gotFrame)));
      stream.on("close", () => queue.then(() => resolve(gotFrame)));
      stream.on("error", (e) => reject(new MeshError(ErrorCode.Unreachable, `Config stream broke: ${e.message}`, { cause: e })));
      send({ type: "hello", version: this.#held?.version, epoch: this.#held?.epoch, build: this.#o.build });
    });
  }

  async #onFrame(text: string, send: (m: ClientMessage) => void): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      send({ type: "resync", reason: "unparsable frame" });
      return;
    }
    const type = (raw as { type?: unknown })?.type;
    if (type === "error") {
      const m = raw as { code?: string; message?: string };
      this.#lastError = `${m.code ?? "error"}: ${m.message ?? ""}`;
      log.error("control plane refused this proxy", { proxy: this.#key, code: m.code, message: m.message });
      return;
    }
    if (type === "snapshot") {
      const p = parseWith(SnapshotMessageSchema, raw);
      if (!p.ok) return this.#refuse(send, (raw as { version?: number }).version, `invalid snapshot: ${p.error}`);
      const s = p.value;
      const maps = {} as Record<Collection, Map<string, object>>;
      for (const c of COLLECTIONS) {
        const m = new Map<string, object>();
        for (const r of (s.resources[c] ?? []) as object[]) m.set(resourceKey(c, r as { name: string }), r);
        maps[c] = m;
      }
      await this.#offer(send, { version: s.version, epoch: s.epoch, meshConfig: s.meshConfig, trustBundlePem: s.trustBundlePem, maps });
      return;
    }
    if (type === "delta") {
      const p = parseWith(DeltaMessageSchema, raw);
      if (!p.ok) return this.#refuse(send, (raw as { version?: number }).version, `invalid delta: ${p.error}`);
      const d = p.value;
      const held = this.#held;
      if (!held || held.version !== d.base || held.epoch !== d.epoch) {
        // Not what we hold: a delta cannot apply. Ask for a full snapshot instead of guessing.
        send({ type: "resync", reason: `delta is based on version ${d.base}, this proxy holds ${held?.version ?? "nothing"}` });
        return;
      }
      const maps = { ...held.maps };
      for (const c of COLLECTIONS) {
        const up = d.upsert[c] as object[] | undefined;
        const rm = d.remove[c];
        if (!up?.length && !rm?.length) continue;
        const m = new Map(held.maps[c]);
        for (const k of rm ?? []) m.delete(k);
        for (const r of up ?? []) m.set(resourceKey(c, r as { name: string }), r);
        maps[c] = m;
      }
      await this.#offer(send, {
        version: d.version,
        epoch: d.epoch,
        meshConfig: d.meshConfig ?? held.meshConfig,
        trustBundlePem: d.trustBundlePem ?? held.trustBundlePem,
        maps,
      });
      return;
    }
    send({ type: "resync", reason: `unknown frame type ${JSON.stringify(type)}` });
  }

  #refuse(send: (m: ClientMessage) => void, version: unknown, reason: string): void {
    const v = typeof version === "number" && Number.isInteger(version) && version >= 0 ? version : undefined;
    log.warn("refusing configuration", { proxy: this.#key, version: v, reason });
    if (v === undefined) {
      send({ type: "resync", reason });
      return;
    }
    this.#lastNack = { version: v, reason };
    send({ type: "nack", version: v, reason });
  }

  /** Validates and applies a candidate; ACK or NACK. */
  async #offer(send: (m: ClientMessage) => void, c: Omit<Held, "view">): Promise<void> {
    const view = viewFrom(c);
    const reason = this.#check(view, c.version);
    if (reason !== undefined) return this.#refuse(send, c.version, reason);
    try {
      await this.#o.onUpdate?.(view, c.version);
    } catch (e) {
      return this.#refuse(send, c.version, `applying failed: ${(e as Error).message}`);
    }
    this.#held = { ...c, view };
    this.#source = "control-plane";
    this.#lastNack = undefined;
    this.#resolveFirstView();
    send({ type: "ack", version: c.version });
    this.#saveLastKnownGood();
  }

  #check(view: XdsView, version: number): string | undefined {
    try {
      return this.#o.validate?.(view, version);
    } catch (e) {
      return `validation failed: ${(e as Error).message}`;
    }
  }

  // ---- credentials ----

  #trustRoots(): string {
    // After a root rotation the control plane may serve a certificate from the new root: trust the pushed bundle too.
    return [this.#o.caCertPem.trim(), this.#held?.trustBundlePem.trim() ?? "", this.#extraRoots.trim()].filter(Boolean).join("\n") + "\n";
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
      this.#saveClientCert();
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

  // ---- persistence (data dir) ----

  #file(kind: "view" | "client"): string | undefined {
    if (!this.#o.dataDir) return undefined;
    const safe = this.#key.replace(/[^A-Za-z0-9._-]/g, "_");
    return join(this.#o.dataDir, kind === "view" ? `xds-${safe}.json` : `xds-${safe}-client.json`);
  }

  async #loadLastKnownGood(): Promise<void> {
    const f = this.#file("view");
    if (!f) return;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(f, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.warn("ignoring unreadable last-known-good configuration", { file: f, error: String(e) });
      return;
    }
    const p = parseWith(SnapshotMessageSchema, raw);
    if (!p.ok) {
      log.warn("ignoring invalid last-known-good configuration", { file: f, error: p.error });
      return;
    }
    const s = p.value;
    const maps = {} as Record<Collection, Map<string, object>>;
    for (const c of COLLECTIONS) maps[c] = new Map(((s.resources[c] ?? []) as object[]).map((r) => [resourceKey(c, r as { name: string }), r]));
    const c = { version: s.version, epoch: s.epoch, meshConfig: s.meshConfig, trustBundlePem: s.trustBundlePem, maps };
    const view = viewFrom(c);
    const reason = this.#check(view, s.version);
    if (reason !== undefined) {
      log.warn("last-known-good configuration refused by validation", { file: f, reason });
      return;
    }
    try {
      await this.#o.onUpdate?.(view, s.version);
    } catch (e) {
      log.warn("applying last-known-good configuration failed", { file: f, error: String(e) });
      return;
    }
    this.#held = { ...c, view };
    this.#source = "last-known-good";
    this.#resolveFirstView();
    log.info("serving last-known-good configuration", { proxy: this.#key, version: s.version, file: f });
  }

  #saveTimer?: ReturnType<typeof setTimeout>;
  /** Coalesced: a burst of versions writes the file once. stop() writes what is pending. */
  #saveLastKnownGood(): void {
    if (!this.#file("view") || this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => this.#flushLastKnownGood(), 50);
  }

  #flushLastKnownGood(): void {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const f = this.#file("view");
    const h = this.#held;
    if (!f || !h || this.#source !== "control-plane") return;
    const resources = Object.fromEntries(COLLECTIONS.map((c) => [c, [...h.maps[c].values()]]));
    const doc = { type: "snapshot", version: h.version, epoch: h.epoch, meshConfig: h.meshConfig, trustBundlePem: h.trustBundlePem, resources };
    try {
      writeAtomic(f, JSON.stringify(doc), 0o600);
    } catch (e) {
      log.warn("cannot save last-known-good configuration", { file: f, error: String(e) });
    }
  }

  #loadClientCert(): void {
    const f = this.#file("client");
    if (!f) return;
    try {
      const c = JSON.parse(readFileSync(f, "utf8")) as ClientCert;
      if (typeof c.certPem === "string" && typeof c.keyPem === "string" && typeof c.notAfter === "string") this.#clientCert = c;
    } catch { /* absent or unreadable: bootstrap again */ }
  }

  #saveClientCert(): void {
    const f = this.#file("client");
    if (!f || !this.#clientCert) return;
    try {
      writeAtomic(f, JSON.stringify(this.#clientCert), 0o600);
    } catch (e) {
      log.warn("cannot save the control-plane client certificate", { file: f, error: String(e) });
    }
  }
}

function viewFrom(c: Omit<Held, "view">): XdsView {
  const model = { meshConfig: c.meshConfig } as MeshModel;
  for (const col of COLLECTIONS) (model as unknown as Record<string, unknown>)[col] = [...c.maps[col].values()];
  return { model, trustBundlePem: c.trustBundlePem };
}

function writeAtomic(file: string, text: string, mode: number): void {
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}
