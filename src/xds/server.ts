/**
 * The push side of config distribution, independent of the transport: versions of the configuration,
 * what each connected proxy holds, and the snapshots and deltas that bring it to the latest version.
 * The control role feeds it configurations and connects each authenticated stream to it.
 *
 * Cost model (see bench/control.ts): each resource is serialized once per version; a delta's mesh-wide
 * part is computed once per (base, version) and shared by every proxy, and the encoded bytes of a message
 * are shared by the proxies of the same view. Snapshots of big meshes are the expensive messages, so at
 * most `maxConcurrentSnapshots` are outstanding (sent but not yet ACKed) at a time.
 */
import type { MeshConfig, MeshModel } from "../model/mod.ts";
import { logger } from "../core/mod.ts";
import type { Counter, Gauge, Histogram, Registry } from "../telemetry/mod.ts";
import {
  type ClientMessage,
  COLLECTIONS,
  type Collection,
  type ProxyId,
  proxyKey,
  type ProxyStatus,
  resourceKey,
} from "./protocol.ts";
import { emptyPlacement, GLOBAL_COLLECTIONS, placeAll, type Placement, PLACED_COLLECTIONS } from "./views.ts";

const log = logger("xds");

/** Where a connection's server frames go (an HTTP/2 response stream in the control role). */
export interface StreamSink {
  /** Part of a frame; a frame (one message) ends with a newline. Chunks may be shared: never modify them. */
  write(chunk: Uint8Array): void;
  /** Ends the stream (after a final error frame, if any). */
  close(): void;
}

export type XdsEvent =
  | { type: "connect"; proxy: string; connection: number }
  | { type: "disconnect"; proxy: string; connection: number }
  | { type: "push"; proxy: string; connection: number; version: number; kind: "snapshot" | "delta"; bytes: number }
  | { type: "ack"; proxy: string; connection: number; version: number; seconds: number }
  | { type: "nack"; proxy: string; connection: number; version: number; reason: string }
  /** Every proxy connected when `version` was made has answered it (or a later one). */
  | { type: "converged"; version: number; seconds: number; proxies: number };

export interface XdsServerOptions {
  metrics?: Registry;
  /** First version number (the control role continues from the last one it persisted). */
  firstVersion?: number;
  maxConcurrentSnapshots?: number;
  /** Log connections and refusals (default true). */
  log?: boolean;
}

interface VersionState {
  version: number;
  createdAt: number;
  /** When the change that produced it was noticed (file event), for the change-to-converged histogram. */
  changeStartedAt: number;
  meshConfig: MeshConfig;
  meshConfigJson: string;
  trustBundlePem: string;
  json: Record<Collection, Map<string, string>>;
  placement: Map<string, Placement>;
  counts: { workloads: number; services: number };
  /** Encoded mesh-wide part of a snapshot, built on first use. */
  snapshotGlobal?: Uint8Array;
  /** Shared encoded parts of deltas to this version, by base version. */
  deltas: Map<number, { head: Uint8Array; upsert: Uint8Array; remove: Uint8Array; hasUpsert: boolean; hasRemove: boolean }>;
}

interface ChangeTracker {
  version: number;
  startedAt: number;
  waiting: Set<Connection>;
  proxies: number;
}

const encoder = new TextEncoder();

/** One proxy's stream. Created by XdsServer.connect; feed it the proxy's frames with receive(). */
export class Connection {
  readonly id: number;
  readonly key: string;
  readonly connectedSince = new Date();
  hello = false;
  /** The version whose resources the proxy holds (its last ACK, or the version it said it had). */
  basis?: number;
  inFlight?: { version: number; sentAt: number; snapshot: boolean };
  waitingForSnapshotSlot = false;
  sentVersion?: number;
  ackedVersion?: number;
  lastAckAt?: Date;
  nack?: { version: number; reason: string; at: Date };
  build?: string;
  closed = false;

  constructor(
    readonly server: XdsServer,
    id: number,
    readonly proxy: ProxyId,
    readonly sink: StreamSink,
    readonly remote: string,
    public clientCertNotAfter?: Date,
  ) {
    this.id = id;
    this.key = proxyKey(proxy);
  }

  /** A frame from the proxy, already parsed by ClientMessageSchema. */
  receive(msg: ClientMessage): void {
    this.server._receive(this, msg);
  }

  /** The stream ended (either side). */
  closedByPeer(): void {
    this.server._disconnect(this);
  }
}

export class XdsServer {
  #epoch = crypto.randomUUID();
  #nextVersion: number;
  #latest?: VersionState;
  #history = new Map<number, VersionState>();
  #connections = new Set<Connection>();
  #nextConnId = 1;
  #changes: ChangeTracker[] = [];
  #listeners = new Set<(e: XdsEvent) => void>();
  #snapshotSlots: number;
  #snapshotsOutstanding = 0;
  #snapshotQueue: Connection[] = [];
  #jsonCache = new WeakMap<object, string>();
  #certs = new Map<string, Map<string, { notAfter: Date; issuedAt: Date }>>();
  #m?: {
    pushes: Counter;
    pushSeconds: Histogram;
    connected: Gauge;
    nacks: Counter;
  };

  #log: boolean;

  constructor(opts: XdsServerOptions = {}) {
    this.#log = opts.log ?? true;
    this.#nextVersion = Math.max(1, opts.firstVersion ?? 1);
    this.#snapshotSlots = opts.maxConcurrentSnapshots ?? 8;
    if (opts.metrics) {
      const r = opts.metrics;
      this.#m = {
        pushes: r.counter("mesh_control_pushes_total", "Configuration pushes sent to proxies", ["type"]),
        pushSeconds: r.histogram(
          "mesh_control_push_duration_seconds",
          "Push latency: scope=proxy from send to ACK; scope=change from the configuration change until every connected proxy answered",
          ["scope"],
          [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        ),
        connected: r.gauge("mesh_control_connected_proxies", "Proxies with an open configuration stream", ["kind"]),
        nacks: r.counter("mesh_control_nacks_total", "Configuration versions refused by a proxy", ["kind"]),
      };
      this.#m.connected.set({ kind: "ztunnel" }, 0);
      this.#m.connected.set({ kind: "waypoint" }, 0);
    }
  }

  /** Random per server instance: a proxy's remembered version only counts if it came from this instance. */
  get epoch(): string {
    return this.#epoch;
  }

  get latestVersion(): number | undefined {
    return this.#latest?.version;
  }

  get latestAt(): Date | undefined {
    return this.#latest ? new Date(this.#latest.createdAt) : undefined;
  }

  get connections(): ReadonlySet<Connection> {
    return this.#connections;
  }

  subscribe(listener: (e: XdsEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Makes a new version from a configuration and pushes it. `changeStartedAt` (ms since epoch) is when
   * the change was noticed, so the change-to-converged latency includes parsing. Returns the version.
   */
  setConfig(model: MeshModel, trustBundlePem: string, opts: { changeStartedAt?: number } = {}): number {
    const now = Date.now();
    const json = {} as Record<Collection, Map<string, string>>;
    for (const c of COLLECTIONS) {
      const m = new Map<string, string>();
      for (const r of (model[c] ?? []) as object[]) m.set(resourceKey(c, r as { name: string }), this.#json(r));
      json[c] = m;
    }
    const state: VersionState = {
      version: this.#nextVersion++,
      createdAt: now,
      changeStartedAt: opts.changeStartedAt ?? now,
      meshConfig: model.meshConfig,
      meshConfigJson: JSON.stringify(model.meshConfig),
      trustBundlePem,
      json,
      placement: placeAll(model),
      counts: { workloads: model.workloads.length, services: model.services.length },
      deltas: new Map(),
    };
    if (this.#latest) {
      // Nothing is ever sent to the previous latest again: drop its encoded messages.
      this.#latest.deltas.clear();
      this.#latest.snapshotGlobal = undefined;
    }
    this.#latest = state;
    this.#history.set(state.version, state);
    const waiting = new Set([...this.#connections].filter((c) => c.hello));
    if (waiting.size) {
      this.#changes.push({ version: state.version, startedAt: state.changeStartedAt, waiting, proxies: waiting.size });
    }
    const prepared = Date.now();
    for (const c of this.#connections) this.#maybePush(c);
    log.debug("new version pushed", {
      version: state.version,
      sinceChangeMs: prepared - state.changeStartedAt,
      prepareMs: prepared - now,
      pushMs: Date.now() - prepared,
      proxies: waiting.size,
    });
    this.#prune();
    return state.version;
  }

  /**
   * Runs a model through the version, snapshot and delta paths of a throwaway server, so that the JIT has
   * optimized them before the first real change of a big mesh (which is otherwise about twice as slow).
   */
  static warmUp(model: MeshModel): void {
    const s = new XdsServer({ log: false });
    s.setConfig(model, "");
    const sinkOf = () => ({ write: () => {}, close: () => {} });
    const nodes = [...new Set(model.workloads.slice(0, 50).map((w) => w.node))];
    const conns = nodes.map((node) => s.connect({ kind: "ztunnel", node }, sinkOf(), { remote: "warm-up" }));
    for (const c of conns) c.receive({ type: "hello" });
    for (const c of conns) c.receive({ type: "ack", version: 1 });
    s.setConfig(model, "");
    for (const c of conns) c.closedByPeer();
  }

  /** Attaches an authenticated stream. Nothing is sent until the proxy's hello arrives. */
  connect(proxy: ProxyId, sink: StreamSink, info: { remote: string; clientCertNotAfter?: Date }): Connection {
    const c = new Connection(this, this.#nextConnId++, proxy, sink, info.remote, info.clientCertNotAfter);
    this.#connections.add(c);
    this.#m?.connected.inc({ kind: proxy.kind });
    if (this.#log) log.info("proxy connected", { proxy: c.key, connection: c.id, remote: info.remote });
    this.#emit({ type: "connect", proxy: c.key, connection: c.id });
    return c;
  }

  /** Remembers a workload certificate issued to a proxy (shown by `mesh status`). */
  recordCertificate(proxy: ProxyId, identity: string, notAfter: Date): void {
    const k = proxyKey(proxy);
    let m = this.#certs.get(k);
    if (!m) this.#certs.set(k, (m = new Map()));
    m.set(identity, { notAfter, issuedAt: new Date() });
  }

  status(): ProxyStatus[] {
    return [...this.#connections].map((c) => {
      const certs = [...(this.#certs.get(c.key) ?? new Map<string, { notAfter: Date; issuedAt: Date }>())]
        .map(([identity, x]) => ({ identity, notAfter: x.notAfter.toISOString(), issuedAt: x.issuedAt.toISOString() }));
      return {
        id: c.key,
        kind: c.proxy.kind,
        node: c.proxy.kind === "ztunnel" ? c.proxy.node : undefined,
        gateway: c.proxy.kind === "waypoint" ? `${c.proxy.namespace}/${c.proxy.name}` : undefined,
        remote: c.remote,
        connectedSince: c.connectedSince.toISOString(),
        sentVersion: c.sentVersion,
        ackedVersion: c.ackedVersion,
        lastAckAt: c.lastAckAt?.toISOString(),
        nack: c.nack ? { version: c.nack.version, reason: c.nack.reason, at: c.nack.at.toISOString() } : undefined,
        build: c.build,
        certificates: certs,
        clientCertNotAfter: c.clientCertNotAfter?.toISOString(),
      };
    });
  }

  stats(): { workloads: number; services: number } {
    return this.#latest?.counts ?? { workloads: 0, services: 0 };
  }

  /** Closes every stream (the proxies reconnect elsewhere or later). */
  closeAll(): void {
    for (const c of [...this.#connections]) {
      c.sink.close();
      this._disconnect(c);
    }
  }

  // ---- internals (called by Connection) ----

  _receive(c: Connection, msg: ClientMessage): void {
    if (c.closed) return;
    switch (msg.type) {
      case "hello": {
        c.hello = true;
        c.build = msg.build;
        if (msg.version !== undefined && msg.epoch === this.#epoch && this.#history.has(msg.version)) {
          // It holds a version of ours (a reconnect): that counts as acknowledged.
          c.basis = msg.version;
          c.ackedVersion = msg.version;
        }
        break;
      }
      case "ack": {
        if (!c.inFlight || c.inFlight.version !== msg.version) {
          log.warn("unexpected ACK", { proxy: c.key, version: msg.version, inFlight: c.inFlight?.version });
          return;
        }
        const seconds = (performance.now() - c.inFlight.sentAt) / 1000;
        this.#m?.pushSeconds.observe({ scope: "proxy" }, seconds);
        c.basis = msg.version;
        c.ackedVersion = msg.version;
        c.lastAckAt = new Date();
        if (c.nack && c.nack.version <= msg.version) c.nack = undefined;
        this.#settle(c);
        this.#emit({ type: "ack", proxy: c.key, connection: c.id, version: msg.version, seconds });
        break;
      }
      case "nack": {
        if (!c.inFlight || c.inFlight.version !== msg.version) {
          log.warn("unexpected NACK", { proxy: c.key, version: msg.version, inFlight: c.inFlight?.version });
          return;
        }
        c.nack = { version: msg.version, reason: msg.reason, at: new Date() };
        this.#m?.nacks.inc({ kind: c.proxy.kind });
        log.warn("proxy refused a configuration version", { proxy: c.key, version: msg.version, reason: msg.reason });
        // A refused snapshot leaves the proxy on whatever it had before: only a later snapshot can help.
        if (c.inFlight.snapshot) c.basis = undefined;
        this.#settle(c);
        this.#emit({ type: "nack", proxy: c.key, connection: c.id, version: msg.version, reason: msg.reason });
        break;
      }
      case "resync":
        log.info("proxy asked for a snapshot", { proxy: c.key, reason: msg.reason });
        c.basis = undefined;
        c.nack = undefined;
        if (c.inFlight) this.#settle(c);
        break;
    }
    this.#maybePush(c);
    this.#schedulePrune();
  }

  _disconnect(c: Connection): void {
    if (c.closed) return;
    c.closed = true;
    this.#connections.delete(c);
    this.#m?.connected.dec({ kind: c.proxy.kind });
    if (c.inFlight?.snapshot) this.#releaseSnapshotSlot();
    c.inFlight = undefined;
    if (c.waitingForSnapshotSlot) this.#snapshotQueue = this.#snapshotQueue.filter((x) => x !== c);
    this.#answered(c, Infinity);
    if (this.#log) log.info("proxy disconnected", { proxy: c.key, connection: c.id });
    this.#emit({ type: "disconnect", proxy: c.key, connection: c.id });
    this.#schedulePrune();
  }

  // ---- push ----

  #settle(c: Connection): void {
    const f = c.inFlight!;
    c.inFlight = undefined;
    if (f.snapshot) this.#releaseSnapshotSlot();
    this.#answered(c, f.version);
  }

  #answered(c: Connection, version: number): void {
    if (!this.#changes.length) return;
    const done: ChangeTracker[] = [];
    for (const t of this.#changes) {
      if (t.version <= version) t.waiting.delete(c);
      if (!t.waiting.size) done.push(t);
    }
    if (!done.length) return;
    this.#changes = this.#changes.filter((t) => t.waiting.size);
    for (const t of done) {
      const seconds = (Date.now() - t.startedAt) / 1000;
      this.#m?.pushSeconds.observe({ scope: "change" }, seconds);
      this.#emit({ type: "converged", version: t.version, seconds, proxies: t.proxies });
    }
  }

  #maybePush(c: Connection): void {
    const latest = this.#latest;
    if (!latest || c.closed || !c.hello || c.inFlight || c.waitingForSnapshotSlot) return;
    if (c.basis === latest.version) return;
    if (c.nack?.version === latest.version) return; // refused: wait for the next version
    const base = c.basis !== undefined ? this.#history.get(c.basis) : undefined;
    if (!base) {
      if (this.#snapshotsOutstanding >= this.#snapshotSlots) {
        c.waitingForSnapshotSlot = true;
        this.#snapshotQueue.push(c);
        return;
      }
      this.#snapshotsOutstanding++;
    }
    const chunks = base ? this.#deltaFrame(base, latest, c.key) : this.#snapshotFrame(latest, c.key);
    let bytes = 0;
    for (const ch of chunks) bytes += ch.length;
    c.inFlight = { version: latest.version, sentAt: performance.now(), snapshot: !base };
    c.sentVersion = latest.version;
    this.#m?.pushes.inc({ type: base ? "delta" : "snapshot" });
    this.#emit({ type: "push", proxy: c.key, connection: c.id, version: latest.version, kind: base ? "delta" : "snapshot", bytes });
    try {
      // A write costs about as much per call as per byte for small messages: send deltas in one piece, and
      // snapshots as their shared chunks (copying megabytes per proxy would cost more).
      if (base) c.sink.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes));
      else for (const ch of chunks) if (ch.length) c.sink.write(ch);
    } catch (e) {
      log.warn("push failed", { proxy: c.key, error: String(e) });
      c.sink.close();
      this._disconnect(c);
    }
  }

  #releaseSnapshotSlot(): void {
    this.#snapshotsOutstanding--;
    while (this.#snapshotQueue.length && this.#snapshotsOutstanding < this.#snapshotSlots) {
      const next = this.#snapshotQueue.shift()!;
      next.waitingForSnapshotSlot = false;
      this.#maybePush(next);
    }
  }

  #json(r: object): string {
    let s = this.#jsonCache.get(r);
    if (s === undefined) {
      s = JSON.stringify(r);
      this.#jsonCache.set(r, s);
    }
    return s;
  }

  /**
   * A snapshot as chunks: the mesh-wide collections are encoded once per version and shared by every
   * proxy (they are most of the bytes); only the head and the placed collections are per proxy.
   */
  #snapshotFrame(v: VersionState, key: string): Uint8Array[] {
    if (!v.snapshotGlobal) {
      v.snapshotGlobal = encoder.encode(GLOBAL_COLLECTIONS.map((c) => `"${c}":[${[...v.json[c].values()].join(",")}]`).join(","));
    }
    const placement = v.placement.get(key) ?? emptyPlacement();
    const placed = PLACED_COLLECTIONS.map((c) => {
      const items: string[] = [];
      for (const k of placement[c]) items.push(v.json[c].get(k)!);
      return `"${c}":[${items.join(",")}]`;
    }).join(",");
    const head = `{"type":"snapshot","version":${v.version},"epoch":"${this.#epoch}","meshConfig":${v.meshConfigJson},` +
      `"trustBundlePem":${JSON.stringify(v.trustBundlePem)},"resources":{`;
    return [encoder.encode(head), v.snapshotGlobal, encoder.encode(`,${placed}}}\n`)];
  }

  /** A delta as chunks: the mesh-wide changes between two versions are encoded once and shared. */
  #deltaFrame(base: VersionState, v: VersionState, key: string): Uint8Array[] {
    let shared = v.deltas.get(base.version);
    if (!shared) {
      const upsert: string[] = [];
      const remove: string[] = [];
      for (const c of GLOBAL_COLLECTIONS) {
        const d = diff(base.json[c], v.json[c], undefined, undefined);
        if (d.upsert.length) upsert.push(`"${c}":[${d.upsert.join(",")}]`);
        if (d.remove.length) remove.push(`"${c}":${JSON.stringify(d.remove)}`);
      }
      let head = `{"type":"delta","version":${v.version},"base":${base.version},"epoch":"${this.#epoch}"`;
      if (v.meshConfigJson !== base.meshConfigJson) head += `,"meshConfig":${v.meshConfigJson}`;
      if (v.trustBundlePem !== base.trustBundlePem) head += `,"trustBundlePem":${JSON.stringify(v.trustBundlePem)}`;
      shared = {
        head: encoder.encode(head + `,"upsert":{`),
        upsert: encoder.encode(upsert.join(",")),
        remove: encoder.encode(remove.join(",")),
        hasUpsert: upsert.length > 0,
        hasRemove: remove.length > 0,
      };
      v.deltas.set(base.version, shared);
    }
    const oldP = base.placement.get(key) ?? emptyPlacement();
    const newP = v.placement.get(key) ?? emptyPlacement();
    const upserts: string[] = [];
    const removes: string[] = [];
    for (const c of PLACED_COLLECTIONS) {
      const d = diff(base.json[c], v.json[c], oldP[c], newP[c]);
      if (d.upsert.length) upserts.push(`"${c}":[${d.upsert.join(",")}]`);
      if (d.remove.length) removes.push(`"${c}":${JSON.stringify(d.remove)}`);
    }
    const sep = (sharedNonEmpty: boolean, own: string[]) => (own.length ? (sharedNonEmpty ? "," : "") + own.join(",") : "");
    return [
      shared.head,
      shared.upsert,
      encoder.encode(`${sep(shared.hasUpsert, upserts)}},"remove":{`),
      shared.remove,
      encoder.encode(`${sep(shared.hasRemove, removes)}}}\n`),
    ];
  }

  #pruneTimer?: ReturnType<typeof setTimeout>;
  /** Pruning looks at every connection: after a burst of ACKs, once is enough. */
  #schedulePrune(): void {
    if (this.#pruneTimer) return;
    this.#pruneTimer = setTimeout(() => {
      this.#pruneTimer = undefined;
      this.#prune();
    }, 50);
    this.#pruneTimer.unref?.();
  }

  /** Drops versions no proxy can be brought forward from. */
  #prune(): void {
    const keep = new Set<number>();
    if (this.#latest) keep.add(this.#latest.version);
    for (const c of this.#connections) {
      if (c.basis !== undefined) keep.add(c.basis);
      // An ACK of the version in flight makes it the proxy's basis.
      if (c.inFlight) keep.add(c.inFlight.version);
    }
    for (const v of this.#history.keys()) if (!keep.has(v)) this.#history.delete(v);
  }

  #emit(e: XdsEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        log.error("event listener failed", { error: String(err) });
      }
    }
  }
}

/**
 * What changed between two versions of a collection. With key sets (placed collections), only the keys a
 * proxy gets are compared: one entering the set is an upsert, one leaving it a removal.
 */
function diff(
  oldJson: Map<string, string>,
  newJson: Map<string, string>,
  oldKeys: Set<string> | undefined,
  newKeys: Set<string> | undefined,
): { upsert: string[]; remove: string[] } {
  const upsert: string[] = [];
  const remove: string[] = [];
  const newIter = newKeys ?? newJson.keys();
  for (const k of newIter) {
    const j = newJson.get(k)!;
    const inOld = oldKeys ? oldKeys.has(k) : oldJson.has(k);
    if (!inOld || oldJson.get(k) !== j) upsert.push(j);
  }
  const oldIter = oldKeys ?? oldJson.keys();
  for (const k of oldIter) {
    const inNew = newKeys ? newKeys.has(k) : newJson.has(k);
    if (!inNew) remove.push(k);
  }
  return { upsert, remove };
}
