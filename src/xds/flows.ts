/**
 * Flow records on the wire: what a proxy tells the control role about each connection (ztunnel) or
 * request (waypoint) it handled, and the filters `mesh observe` and the traffic map apply to them.
 *
 *   POST /v1/flows   proxy client certificate (mTLS), over the session the proxy already holds:
 *                    FlowBatch -> 204. Sent about once a second; a proxy without a control plane drops them.
 *   GET  /v1/flows   admin token: ?since=5m&denied=1&from=&to=&namespace=&limit= -> {flows: FlowRecord[]};
 *                    with &follow=1, newline-delimited JSON, one FlowRecord per line, as they arrive.
 */
import * as v from "valibot";

export const FLOWS_PATH = "/v1/flows";

/** One end of a flow, as much as the reporting proxy knows of it. */
export interface FlowPeer {
  /** "ns/name" of the workload */
  workload?: string;
  namespace?: string;
  /** SPIFFE ID (authenticated, or presented for it) */
  identity?: string;
  /** "ip" or "ip:port" */
  address?: string;
}

export type FlowVerdict = "allowed" | "denied" | "error";
export type FlowReporter = "source" | "destination" | "waypoint";

/** One connection (L4, a ztunnel) or one request (L7, a waypoint). */
export interface FlowRecord {
  /** When it ended, ms since the epoch. */
  time: number;
  /** "ztunnel/node-a", "waypoint/ns/name" */
  proxy: string;
  reporter: FlowReporter;
  l7: boolean;
  src: FlowPeer;
  /** `service`: "ns/name" of the Service addressed; `port`: the port dialed. */
  dst: FlowPeer & { service?: string; port?: number };
  /** "ns/name" of the waypoint the flow went through. */
  waypoint?: string;
  /** L4 at the source: carried over HBONE (so the other side reports it too). */
  tunneled?: boolean;
  method?: string;
  path?: string;
  status?: number;
  /** Bytes from the client, and to it. */
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  verdict: FlowVerdict;
  reason?: string;
  /** "ns/name" of the policy that decided, when one did. */
  policy?: string;
  mtls: boolean;
  traceId?: string;
  /**
   * Flows folded into this record when the proxy was over its budget (counts and bytes summed; time, path
   * and trace id those of the first). Absent: 1.
   */
  count?: number;
  /** Set by the control role: its sequence number (the flow table and `explain` refer to it). */
  id?: number;
}

/** What a proxy sends: the records, and how many it dropped since the last batch. */
export interface FlowBatch {
  flows: FlowRecord[];
  dropped: number;
}

export const MAX_BATCH_FLOWS = 5000;

const text = (max: number) => v.pipe(v.string(), v.maxLength(max));
const count = v.pipe(v.number(), v.minValue(0));
const PeerSchema = v.object({
  workload: v.optional(text(320)),
  namespace: v.optional(text(64)),
  identity: v.optional(text(2048)),
  address: v.optional(text(64)),
});

export const FlowRecordSchema = v.object({
  time: count,
  proxy: text(320),
  reporter: v.picklist(["source", "destination", "waypoint"]),
  l7: v.boolean(),
  src: PeerSchema,
  dst: v.object({ ...PeerSchema.entries, service: v.optional(text(320)), port: v.optional(count) }),
  waypoint: v.optional(text(320)),
  tunneled: v.optional(v.boolean()),
  method: v.optional(text(32)),
  path: v.optional(text(1024)),
  status: v.optional(count),
  bytesIn: count,
  bytesOut: count,
  durationMs: count,
  verdict: v.picklist(["allowed", "denied", "error"]),
  reason: v.optional(text(1024)),
  policy: v.optional(text(320)),
  mtls: v.boolean(),
  traceId: v.optional(text(64)),
  count: v.optional(v.pipe(count, v.integer(), v.minValue(1))),
  id: v.optional(count),
});

export const FlowBatchSchema = v.object({
  flows: v.pipe(v.array(FlowRecordSchema), v.maxLength(MAX_BATCH_FLOWS)),
  dropped: v.pipe(count, v.integer()),
});

/** What `mesh observe` and the flow table ask for; every field narrows. */
export interface FlowFilter {
  /** Only denied flows. */
  denied?: boolean;
  verdict?: FlowVerdict;
  /** Source: "ns/name" of a workload, "ns/" for a namespace, a bare workload name, an identity or address. */
  from?: string;
  /** Destination: as `from`, and also a Service ("ns/name" or its name). */
  to?: string;
  /** Either end in this namespace. */
  namespace?: string;
  /** Ended at or after this time (ms since the epoch). */
  since?: number;
}

function peerMatches(p: FlowPeer & { service?: string }, want: string): boolean {
  if (want.endsWith("/")) return p.namespace === want.slice(0, -1);
  const names = [p.workload, p.service, p.identity, p.address, p.address?.replace(/:\d+$/, "")];
  if (names.includes(want)) return true;
  // A bare name: the workload's or the Service's name in any namespace.
  return !want.includes("/") && [p.workload, p.service].some((n) => n?.split("/")[1] === want);
}

/** Whether a flow passes the filter (pure; the control role and the page apply the same rules). */
export function matchFlow(f: FlowRecord, q: FlowFilter): boolean {
  if (q.since !== undefined && f.time < q.since) return false;
  if (q.denied && f.verdict !== "denied") return false;
  if (q.verdict && f.verdict !== q.verdict) return false;
  if (q.from && !peerMatches(f.src, q.from)) return false;
  if (q.to && !peerMatches({ ...f.dst, namespace: f.dst.namespace ?? f.dst.service?.split("/")[0] }, q.to)) return false;
  if (q.namespace) {
    const dstNs = f.dst.namespace ?? f.dst.service?.split("/")[0];
    if (f.src.namespace !== q.namespace && dstNs !== q.namespace) return false;
  }
  return true;
}

/** "5m", "90s", "1h" -> ms. @returns undefined when it is not a duration. */
export function parseSince(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}

/** The query string of GET /v1/flows for a filter (since as a duration before now). */
export function flowQuery(q: FlowFilter & { sinceMs?: number; follow?: boolean; limit?: number }): string {
  const p = new URLSearchParams();
  if (q.denied) p.set("denied", "1");
  if (q.verdict) p.set("verdict", q.verdict);
  if (q.from) p.set("from", q.from);
  if (q.to) p.set("to", q.to);
  if (q.namespace) p.set("namespace", q.namespace);
  if (q.sinceMs !== undefined) p.set("since", `${Math.round(q.sinceMs)}ms`);
  if (q.follow) p.set("follow", "1");
  if (q.limit !== undefined) p.set("limit", String(q.limit));
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** The filter a query string asks for (the inverse of flowQuery, `since` made absolute against `now`). */
export function filterOfQuery(params: URLSearchParams, now = Date.now()): FlowFilter & { follow: boolean; limit?: number } {
  const since = params.get("since");
  const sinceMs = since ? parseSince(since) : undefined;
  const verdict = params.get("verdict");
  const limit = Number(params.get("limit") ?? "");
  return {
    denied: params.get("denied") === "1" || params.get("denied") === "true",
    verdict: verdict === "allowed" || verdict === "denied" || verdict === "error" ? verdict : undefined,
    from: params.get("from") || undefined,
    to: params.get("to") || undefined,
    namespace: params.get("namespace") || undefined,
    since: sinceMs !== undefined ? now - sinceMs : undefined,
    follow: params.get("follow") === "1",
    limit: Number.isFinite(limit) && limit > 0 ? limit : undefined,
  };
}
