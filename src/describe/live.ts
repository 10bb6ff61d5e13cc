/**
 * What a running mesh tells `mesh describe` and `mesh proxy-status` beyond the configuration: the
 * proxies connected to the control plane (versions, NACKs, certificates), their readiness, and recent
 * access-log lines. Plain data gathered by the CLI (I/O lives there); offline descriptions have none.
 *
 * The proxy fields mirror the control plane's status report (src/xds ProxyStatus) structurally, so a
 * report's `proxies` can be passed as-is.
 */

export interface ProxyFact {
  /** "ztunnel/node-a", "waypoint/ns/name" */
  id: string;
  kind: "ztunnel" | "waypoint";
  node?: string;
  /** "ns/name" */
  gateway?: string;
  /** Address of its control-plane connection ("10.99.0.11:40112"). */
  remote: string;
  connectedSince: string;
  sentVersion?: number;
  ackedVersion?: number;
  lastAckAt?: string;
  nack?: { version: number; reason: string; at: string };
  build?: string;
  certificates: { identity: string; notAfter: string; issuedAt: string }[];
  clientCertNotAfter?: string;
}

export type ReadinessFact = { ready: boolean; reasons: string[] } | { error: string };

/** One parsed access-log line (ztunnel or waypoint), tagged with the proxy whose log it came from. */
export interface AccessLogEntry {
  time: string;
  /** "ztunnel/node-b" (when known) */
  proxy?: string;
  level?: string;
  msg: string;
  direction?: string;
  reporter?: string;
  src?: { addr?: string; workload?: string; namespace?: string; identity?: string };
  dst?: { addr?: string; hbone_addr?: string; service?: string; workload?: string; namespace?: string; identity?: string };
  waypoint?: string;
  /** "ok", "denied", "failed", "reset" (ztunnel); a waypoint may log an HTTP status instead. */
  result?: string;
  status?: number;
  method?: string;
  path?: string;
  reason?: string;
  error?: string;
  /**
   * The id every hop logs for one connection: its W3C trace id (`trace_id`; older logs: `traceId`,
   * `conn_id`). On a waypoint's request line, the request's own trace id.
   */
  id?: string;
  /** On a waypoint's request line: the trace id of the tunnel it came in (`tunnel_trace_id`), the ztunnels' id. */
  tunnelId?: string;
}

export interface LiveFacts {
  /** When these facts were gathered (ms since the epoch). */
  now: number;
  /** Where they came from ("control plane 10.99.0.2:15012"). */
  source: string;
  /** The latest configuration version the control plane serves, and when it was made (absent: not asked). */
  latestVersion?: number;
  latestAt?: string;
  /** The proxies connected to the control plane; absent when it was not asked (access logs only). */
  proxies?: ProxyFact[];
  /** /healthz/ready of a proxy, by proxy id, when it could be asked. */
  readiness?: Record<string, ReadinessFact>;
  /** Recent access-log lines of the proxies, oldest first; absent when no log was read. */
  accessLog?: AccessLogEntry[];
}

function defined(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined));
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function part(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== "object") return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === "string" || typeof x === "number") out[k] = String(x);
  }
  return out;
}

/**
 * Parses the JSON lines of a proxy's log and keeps the access-log lines (scope "access", or any line that
 * names a source and a destination). Other lines and non-JSON text are skipped.
 */
export function parseAccessLog(text: string, proxy?: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(t) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (o.scope !== "access" && !(o.src && o.dst)) continue;
    // Two shapes: the ztunnel's (src/dst objects, result) and the waypoint's (one line per request:
    // source identity, sourceAddress, destination "host:port", upstream "ip:port", status, details, trace_id
    // and tunnel_trace_id).
    const src = part(o.src) ?? (str(o.source) || str(o.sourceAddress) ? { identity: str(o.source), addr: str(o.sourceAddress) } : undefined);
    let dst: Record<string, string | undefined> | undefined = part(o.dst);
    if (!dst && str(o.destination)) {
      const d = str(o.destination)!;
      const host = d.replace(/:\d+$/, "");
      dst = /^[\d.]+$|:/.test(host) ? { addr: d } : { service: host, addr: str(o.upstream) };
    }
    out.push({
      time: str(o.time) ?? "",
      proxy,
      level: str(o.level),
      msg: str(o.msg) ?? "",
      direction: str(o.direction),
      reporter: str(o.reporter),
      src: src && defined(src),
      dst: dst && defined(dst),
      waypoint: str(o.waypoint),
      result: str(o.result),
      status: typeof o.status === "number" ? o.status : undefined,
      method: str(o.method),
      path: str(o.path),
      reason: str(o.reason) ?? str(o.details),
      error: str(o.error),
      id: str(o.trace_id) ?? str(o.traceId) ?? str(o.conn_id) ?? str(o.connection_id) ?? str(o.id),
      tunnelId: str(o.tunnel_trace_id),
    });
  }
  return out;
}
