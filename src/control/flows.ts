/**
 * The flows the proxies report, as the control role keeps them: a ring of the most recent records (the
 * flow table, `mesh observe`, a denied flow's explanation), live subscribers, and the traffic graph over
 * a window (1, 5 or 15 minutes) from per-10-second buckets of edge counters.
 *
 * Bounded everywhere: the ring holds `capacity` records, each bucket at most `maxEdges` edges (flows of
 * further edges are only counted), buckets older than the longest window are dropped, and a subscriber
 * that cannot keep up loses records rather than holding them (its own buffer decides).
 *
 * One flow is often seen by several proxies (the source ztunnel, the waypoint, the destination ztunnel).
 * The table shows every report (each names its proxy); the graph counts each flow once, from the proxy
 * that decided about it: the waypoint for requests through a waypoint, the destination ztunnel for a
 * tunnel from another ztunnel, the source ztunnel only for what left the mesh untunneled.
 */
import type { FlowBatch, FlowFilter, FlowRecord } from "../xds/mod.ts";
import { matchFlow } from "../xds/mod.ts";

export type NodeKind = "workload" | "service" | "waypoint" | "external";

export interface GraphNode {
  id: string;
  kind: NodeKind;
  /** Short name shown on the map. */
  label: string;
  namespace?: string;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** Waypoints ("ns/name") the flows went through. */
  waypoints: string[];
  /** Any of its flows was an HTTP request seen by a waypoint. */
  l7: boolean;
  flows: number;
  /** Flows per second over the window. */
  rate: number;
  bytes: number;
  allowed: number;
  denied: number;
  errors: number;
  mtls: number;
  plaintext: number;
  /** For L7 edges: request latency percentiles (ms). */
  p50Ms?: number;
  p99Ms?: number;
  /** HTTP status -> count (L7). */
  statuses: Record<string, number>;
  /** Policies that denied flows of this edge -> count. */
  deniedBy: Record<string, number>;
}

export interface TrafficGraph {
  windowMs: number;
  /** When the graph was computed (ms since the epoch). */
  at: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Flows counted in the window, and flows of edges beyond the per-bucket budget (counted, not drawn). */
  flows: number;
  overflowFlows: number;
  /** Records the proxies dropped over their own budget, in the window. */
  droppedByProxies: number;
}

export interface FlowStoreOptions {
  /** Recent records kept (default 10 000). */
  capacity?: number;
  /** Edge bucket width (default 10 s). */
  bucketMs?: number;
  /** The longest window asked for (default 15 min). */
  maxWindowMs?: number;
  /** Edges per bucket (default 2000). */
  maxEdges?: number;
  /** Whether an identity is a waypoint's (its tunnels to the destination ztunnel repeat the waypoint's flows). */
  isWaypointIdentity?: (identity: string) => boolean;
  now?: () => number;
}

/** Latency histogram bounds: 0.1 ms growing by 25% per bucket, up to about two minutes. */
const LAT_BOUNDS = Array.from({ length: 64 }, (_, i) => 0.1 * 1.25 ** i);

function latencyBucket(ms: number): number {
  let lo = 0, hi = LAT_BOUNDS.length - 1;
  if (ms > LAT_BOUNDS[hi]!) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LAT_BOUNDS[mid]! >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function quantile(hist: Uint32Array, q: number): number | undefined {
  let total = 0;
  for (const n of hist) total += n;
  if (!total) return undefined;
  const want = Math.max(1, Math.ceil(total * q));
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i]!;
    if (seen >= want) return Math.round(LAT_BOUNDS[i]! * 100) / 100;
  }
  return LAT_BOUNDS[LAT_BOUNDS.length - 1];
}

/** An edge while its bucket fills: the graph's counts, with sets and maps where the graph has lists and records. */
interface EdgeCounters extends Pick<GraphEdge, "l7" | "flows" | "bytes" | "allowed" | "denied" | "errors" | "mtls" | "plaintext"> {
  source: GraphNode;
  target: GraphNode;
  waypoints: Set<string>;
  latency?: Uint32Array;
  statuses: Map<string, number>;
  deniedBy: Map<string, number>;
}

interface Bucket {
  start: number;
  edges: Map<string, EdgeCounters>;
  overflowFlows: number;
  droppedByProxies: number;
}

const shortName = (nsName: string) => nsName.slice(nsName.indexOf("/") + 1);

function sourceNode(f: FlowRecord): GraphNode {
  const s = f.src;
  if (s.workload) return { id: `workload:${s.workload}`, kind: "workload", label: shortName(s.workload), namespace: s.namespace };
  const sa = s.identity && /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(s.identity);
  if (sa) return { id: `workload:${sa[1]}/sa:${sa[2]}`, kind: "workload", label: `sa ${sa[2]}`, namespace: sa[1] };
  const addr = s.address ?? "unknown";
  return { id: `external:${addr}`, kind: "external", label: addr };
}

function targetNode(f: FlowRecord): GraphNode {
  const d = f.dst;
  if (d.service) return { id: `service:${d.service}`, kind: "service", label: shortName(d.service), namespace: d.service.split("/")[0] };
  if (d.workload) return { id: `workload:${d.workload}`, kind: "workload", label: shortName(d.workload), namespace: d.namespace };
  const addr = d.port !== undefined ? `${d.address ?? "unknown"}:${d.port}` : d.address ?? "unknown";
  return { id: `external:${addr}`, kind: "external", label: addr };
}

export class FlowStore {
  readonly #capacity: number;
  readonly #bucketMs: number;
  readonly #maxWindowMs: number;
  readonly #maxEdges: number;
  readonly #isWaypoint: (identity: string) => boolean;
  readonly #now: () => number;
  #ring: (FlowRecord | undefined)[];
  #nextId = 1;
  #buckets: Bucket[] = [];
  #subscribers = new Set<(f: FlowRecord) => void>();
  #received = 0;

  constructor(opts: FlowStoreOptions = {}) {
    this.#capacity = opts.capacity ?? 10_000;
    this.#bucketMs = opts.bucketMs ?? 10_000;
    this.#maxWindowMs = opts.maxWindowMs ?? 15 * 60_000;
    this.#maxEdges = opts.maxEdges ?? 2000;
    this.#isWaypoint = opts.isWaypointIdentity ?? (() => false);
    this.#now = opts.now ?? Date.now;
    this.#ring = new Array(this.#capacity);
  }

  /** Takes a proxy's batch. `proxy` is who the client certificate names: it replaces what the records say. */
  ingest(batch: FlowBatch, proxy: string): void {
    const now = this.#now();
    const bucket = this.#bucket(now);
    bucket.droppedByProxies += batch.dropped;
    for (const raw of batch.flows) {
      const f: FlowRecord = { ...raw, proxy, id: this.#nextId++ };
      // A proxy's clock may be off: the control role's receipt time is what windows are made of.
      if (Math.abs(f.time - now) > 60_000) f.time = now;
      this.#ring[f.id! % this.#capacity] = f;
      this.#received += f.count ?? 1;
      if (this.#inGraph(f)) this.#count(bucket, f);
      for (const s of this.#subscribers) {
        try {
          s(f);
        } catch {
          // a broken subscriber must not stop the others
        }
      }
    }
  }

  /** The record with this id, while the ring still holds it. */
  get(id: number): FlowRecord | undefined {
    const f = this.#ring[id % this.#capacity];
    return f?.id === id ? f : undefined;
  }

  /** Matching records, oldest first, at most `limit` (the newest ones). */
  recent(filter: FlowFilter = {}, limit = 1000): FlowRecord[] {
    const out: FlowRecord[] = [];
    const last = this.#nextId - 1;
    for (let id = last; id > 0 && id > last - this.#capacity && out.length < limit; id--) {
      const f = this.get(id);
      if (!f) break;
      if (matchFlow(f, filter)) out.push(f);
    }
    return out.reverse();
  }

  /** Calls `fn` with each record as it arrives, until the returned function is called. */
  subscribe(fn: (f: FlowRecord) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  stats(): { received: number; held: number; buckets: number; edges: number; subscribers: number } {
    let edges = 0;
    for (const b of this.#buckets) edges += b.edges.size;
    return { received: this.#received, held: Math.min(this.#nextId - 1, this.#capacity), buckets: this.#buckets.length, edges, subscribers: this.#subscribers.size };
  }

  /** The traffic graph over the last `windowMs` (at most the longest window). */
  graph(windowMs: number): TrafficGraph {
    const now = this.#now();
    const w = Math.min(Math.max(windowMs, this.#bucketMs), this.#maxWindowMs);
    const from = now - w;
    const nodes = new Map<string, GraphNode>();
    const merged = new Map<string, EdgeCounters>();
    let flows = 0, overflowFlows = 0, droppedByProxies = 0;
    for (const b of this.#buckets) {
      if (b.start + this.#bucketMs <= from) continue;
      overflowFlows += b.overflowFlows;
      droppedByProxies += b.droppedByProxies;
      for (const [key, e] of b.edges) {
        flows += e.flows;
        let m = merged.get(key);
        if (!m) {
          m = { ...e, waypoints: new Set(), flows: 0, bytes: 0, allowed: 0, denied: 0, errors: 0, mtls: 0, plaintext: 0, latency: undefined, statuses: new Map(), deniedBy: new Map() };
          merged.set(key, m);
        }
        for (const x of e.waypoints) m.waypoints.add(x);
        m.l7 ||= e.l7;
        m.flows += e.flows;
        m.bytes += e.bytes;
        m.allowed += e.allowed;
        m.denied += e.denied;
        m.errors += e.errors;
        m.mtls += e.mtls;
        m.plaintext += e.plaintext;
        if (e.latency) {
          m.latency ??= new Uint32Array(LAT_BOUNDS.length);
          for (let i = 0; i < e.latency.length; i++) m.latency[i]! += e.latency[i]!;
        }
        for (const [k, n] of e.statuses) m.statuses.set(k, (m.statuses.get(k) ?? 0) + n);
        for (const [k, n] of e.deniedBy) m.deniedBy.set(k, (m.deniedBy.get(k) ?? 0) + n);
      }
    }
    const edges: GraphEdge[] = [];
    for (const [id, e] of merged) {
      nodes.set(e.source.id, e.source);
      nodes.set(e.target.id, e.target);
      for (const wp of e.waypoints) {
        nodes.set(`waypoint:${wp}`, { id: `waypoint:${wp}`, kind: "waypoint", label: shortName(wp), namespace: wp.split("/")[0] });
      }
      edges.push({
        id,
        source: e.source.id,
        target: e.target.id,
        waypoints: [...e.waypoints].sort(),
        l7: e.l7,
        flows: e.flows,
        rate: Math.round((e.flows / (w / 1000)) * 1000) / 1000,
        bytes: e.bytes,
        allowed: e.allowed,
        denied: e.denied,
        errors: e.errors,
        mtls: e.mtls,
        plaintext: e.plaintext,
        p50Ms: e.latency && quantile(e.latency, 0.5),
        p99Ms: e.latency && quantile(e.latency, 0.99),
        statuses: Object.fromEntries(e.statuses),
        deniedBy: Object.fromEntries(e.deniedBy),
      });
    }
    edges.sort((a, b) => a.id.localeCompare(b.id));
    return { windowMs: w, at: now, nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)), edges, flows, overflowFlows, droppedByProxies };
  }

  /** Whether this report is the one the graph counts for its flow (see the file's comment). */
  #inGraph(f: FlowRecord): boolean {
    if (f.reporter === "waypoint") return true;
    if (f.reporter === "destination") return !(f.src.identity && this.#isWaypoint(f.src.identity));
    return !f.tunneled && !f.waypoint;
  }

  #bucket(now: number): Bucket {
    const start = now - (now % this.#bucketMs);
    const last = this.#buckets[this.#buckets.length - 1];
    if (last && last.start === start) return last;
    const keepFrom = now - this.#maxWindowMs - this.#bucketMs;
    while (this.#buckets.length && this.#buckets[0]!.start < keepFrom) this.#buckets.shift();
    const b: Bucket = { start, edges: new Map(), overflowFlows: 0, droppedByProxies: 0 };
    this.#buckets.push(b);
    return b;
  }

  #count(b: Bucket, f: FlowRecord): void {
    const n = f.count ?? 1;
    const source = sourceNode(f);
    const target = targetNode(f);
    const key = `${source.id}->${target.id}`;
    let e = b.edges.get(key);
    if (!e) {
      if (b.edges.size >= this.#maxEdges) {
        b.overflowFlows += n;
        return;
      }
      e = { source, target, waypoints: new Set(), l7: false, flows: 0, bytes: 0, allowed: 0, denied: 0, errors: 0, mtls: 0, plaintext: 0, statuses: new Map(), deniedBy: new Map() };
      b.edges.set(key, e);
    }
    if (f.waypoint) e.waypoints.add(f.waypoint);
    e.flows += n;
    e.bytes += f.bytesIn + f.bytesOut;
    if (f.verdict === "denied") {
      e.denied += n;
      if (f.policy) e.deniedBy.set(f.policy, (e.deniedBy.get(f.policy) ?? 0) + n);
    } else if (f.verdict === "error") e.errors += n;
    else e.allowed += n;
    if (f.mtls) e.mtls += n;
    else e.plaintext += n;
    if (f.l7) {
      e.l7 = true;
      e.latency ??= new Uint32Array(LAT_BOUNDS.length);
      e.latency[latencyBucket(f.durationMs)]! += n;
      if (f.status !== undefined) e.statuses.set(String(f.status), (e.statuses.get(String(f.status)) ?? 0) + n);
    }
  }
}
