/** Recent connections of a workload or Service, from the proxies' access logs (accepted, denied and why). */
import type { AccessLogEntry } from "./live.ts";
import type { ConnectionRow } from "./types.ts";

export interface ConnectionFilter {
  namespace: string;
  /** workload names (a Service: its endpoints) */
  workloads: string[];
  /** its addresses (pod IPs, a Service VIP) */
  addresses: string[];
  /** Service hostnames (its own, or the workload's Services'), matched against dst.service */
  serviceHosts?: string[];
}

const ip = (addr: string | undefined) => addr?.replace(/^\[?([^\]]*?)\]?:\d+$/, "$1");

function isDst(e: AccessLogEntry, f: ConnectionFilter): boolean {
  const d = e.dst ?? {};
  if (d.namespace === f.namespace && d.workload && f.workloads.includes(d.workload)) return true;
  if (d.service && f.serviceHosts?.includes(d.service)) return true;
  const a = ip(d.addr);
  return a !== undefined && f.addresses.includes(a);
}

function isSrc(e: AccessLogEntry, f: ConnectionFilter): boolean {
  const s = e.src ?? {};
  if (s.namespace === f.namespace && s.workload && f.workloads.includes(s.workload)) return true;
  const a = ip(s.addr);
  return a !== undefined && f.addresses.includes(a);
}

function side(p: AccessLogEntry["dst"]): string {
  if (!p) return "unknown";
  const at = p.addr ? ` (${p.addr})` : "";
  if (p.workload) return `${p.namespace}/${p.workload}${at}`;
  if (p.service) return `${p.service}${at}`;
  return p.identity ? `${p.identity}${at}` : p.addr ?? "unknown";
}

function resultOf(e: AccessLogEntry): string {
  if (e.status !== undefined) {
    const verdict = e.status === 401 || e.status === 403 ? "denied" : e.status >= 500 ? "failed" : "accepted";
    return `${verdict} (HTTP ${e.status})`;
  }
  switch (e.result) {
    case "ok":
      return "accepted";
    case "denied":
      return "denied";
    case undefined:
      return /refused|denied/i.test(e.msg) ? "denied" : e.msg;
    default:
      return e.result;
  }
}

/** The matching lines, newest last, at most `limit`. */
export function connectionsFor(entries: AccessLogEntry[], f: ConnectionFilter, limit = 20): ConnectionRow[] {
  const rows: ConnectionRow[] = [];
  for (const e of entries) {
    const inbound = isDst(e, f);
    const outbound = !inbound && isSrc(e, f);
    if (!inbound && !outbound) continue;
    rows.push({
      time: e.time,
      proxy: e.proxy ?? null,
      reporter: e.reporter ?? null,
      direction: inbound ? "inbound" : "outbound",
      peer: inbound ? side(e.src) : side(e.dst),
      result: resultOf(e),
      request: e.method ? `${e.method} ${e.path ?? ""}`.trim() : null,
      reason: e.reason ?? e.error ?? null,
      id: e.id ?? null,
      ...(e.tunnelId && e.tunnelId !== e.id ? { tunnelId: e.tunnelId } : {}),
    });
  }
  rows.sort((a, b) => a.time.localeCompare(b.time));
  return rows.slice(-limit);
}
