/**
 * The question `mesh explain` answers, and its command-line spellings (--from, --to, --header).
 */
import { ErrorCode, MeshError } from "../core/mod.ts";

/** Who sends: a workload identity, or a bare address (possibly outside the mesh). */
export type ExplainSource =
  | { kind: "identity"; namespace: string; serviceAccount: string }
  | { kind: "ip"; address: string };

/** Where to: a Service port by name, or an address and port (a Service VIP, a workload, or outside the mesh). */
export type ExplainTarget =
  | { kind: "service"; name: string; namespace: string; port: number }
  | { kind: "address"; address: string; port: number }
  /** A ServiceEntry host such as api.partner.example. */
  | { kind: "host"; host: string; port: number };

export interface ExplainQuery {
  from: ExplainSource;
  to: ExplainTarget;
  /** Default GET. */
  method?: string;
  /** Path with optional query. Default "/". */
  path?: string;
  /** Extra request headers (names in any case). A `host` header overrides the Host derived from --to. */
  headers?: Record<string, string | string[]>;
  /** A JWT sent as "Authorization: Bearer <token>". */
  jwt?: string;
}

/**
 * Parses --from: "NAMESPACE/SERVICEACCOUNT" or "ip:ADDRESS".
 *
 * @example
 * parseSource("ambient-ns/product-viewer-sa") // { kind: "identity", namespace: "ambient-ns", serviceAccount: "product-viewer-sa" }
 */
export function parseSource(text: string): ExplainSource {
  if (text.startsWith("ip:")) {
    const address = text.slice(3).replace(/^\[|\]$/g, "");
    if (address === "") throw usage(`--from "${text}" has no address: write ip:10.0.0.5`);
    return { kind: "ip", address };
  }
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  if (!m) throw usage(`--from "${text}" is neither NAMESPACE/SERVICEACCOUNT nor ip:ADDRESS`);
  return { kind: "identity", namespace: m[1]!, serviceAccount: m[3]! };
}

/**
 * Parses --to: "SERVICE.NAMESPACE:PORT" (also with ".svc" or ".svc.cluster.local"), "ADDRESS:PORT"
 * ("[v6]:PORT" for IPv6), or a ServiceEntry host "HOST:PORT".
 *
 * @example
 * parseTarget("product-api.ambient-ns:8000") // { kind: "service", name: "product-api", namespace: "ambient-ns", port: 8000 }
 * parseTarget("10.96.0.20:8000")             // { kind: "address", address: "10.96.0.20", port: 8000 }
 */
export function parseTarget(text: string): ExplainTarget {
  const m = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw usage(`--to "${text}" needs a port: write SERVICE.NAMESPACE:PORT or ADDRESS:PORT`);
  }
  const host = m[1]!.replace(/^\[|\]$/g, "");
  if (isIpAddress(host)) return { kind: "address", address: host, port };
  const parts = host.toLowerCase().split(".");
  const rest = parts.slice(2).join(".");
  if (parts.length < 2) throw usage(`--to "${text}": write the Service as NAME.NAMESPACE:PORT (or give an IP address or a ServiceEntry host)`);
  if (rest !== "" && rest !== "svc" && !rest.startsWith("svc.")) return { kind: "host", host: host.toLowerCase(), port };
  return { kind: "service", name: parts[0]!, namespace: parts[1]!, port };
}

/** Parses repeated --header K=V (also "K: V") into a header record; repeated names keep every value. */
export function parseHeaders(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list) {
    const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(item);
    if (!m) throw usage(`--header "${item}" is not NAME=VALUE`);
    (out[m[1]!.toLowerCase()] ??= []).push(m[2]!);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
}

export function isIpAddress(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
}

function usage(message: string): MeshError {
  return new MeshError(ErrorCode.Usage, message);
}
