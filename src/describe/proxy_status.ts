/**
 * `mesh proxy-status`: every ztunnel and waypoint the configuration expects, and every proxy connected
 * to the control plane, with the version each acknowledged against the latest, NACKs and their reason,
 * and certificate expiry. Flags what needs attention:
 * - NOT CONNECTED: a node with ambient workloads has no ztunnel connected (killed, crashed, cannot reach
 *   the control plane), or a waypoint Gateway has no waypoint;
 * - NACK: it refused the latest version it was sent (the reason it gave);
 * - STALE: behind the latest version for longer than the stale threshold without a NACK (it is not
 *   answering); PENDING while younger than that;
 * - EXPIRED: a certificate it holds has expired.
 * Pure: the CLI passes the control plane's status report and the configuration it serves.
 */
import type { MeshModel } from "../model/mod.ts";
import { relative } from "./facts.ts";
import type { ProxyFact } from "./live.ts";
import { table } from "./table.ts";

export interface StatusInput {
  version: number;
  versionAt: string;
  proxies: ProxyFact[];
  /** Set while the control plane's configuration source is invalid (it keeps serving the last good one). */
  config?: { source?: string; lastError?: { at: string; diagnostics: ConfigDiagnostic[] } };
}

export interface ConfigDiagnostic {
  file: string;
  line: number;
  col: number;
  severity: string;
  message: string;
  rule: string;
}

/** "file:line:col: message [rule]" for the errors of a refused configuration. */
export function configErrors(lastError: { diagnostics: ConfigDiagnostic[] }): string[] {
  return lastError.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file}: ${d.message} [${d.rule}]`);
}

export type ProxyState = "SYNCED" | "PENDING" | "STALE" | "NACK" | "NOT CONNECTED";

export interface ProxyStatusRow {
  id: string;
  kind: "ztunnel" | "waypoint";
  /** node name or "ns/gateway" */
  target: string;
  state: ProxyState;
  /** Expected by the configuration (a node with ambient workloads, a waypoint Gateway). */
  expected: boolean;
  remote: string | null;
  connectedSince: string | null;
  ackedVersion: number | null;
  latestVersion: number;
  nack: { version: number; reason: string; at: string } | null;
  certificates: number;
  /** The earliest expiry among its workload certificates. */
  nextCertExpiry: string | null;
  clientCertNotAfter: string | null;
  /** What needs attention, one line each. */
  problems: string[];
}

export interface ProxyStatusReport {
  controlPlane: string;
  latestVersion: number;
  latestAt: string;
  proxies: ProxyStatusRow[];
  /** Set while the configuration source is invalid: since when, and its errors. */
  configError: { at: string; errors: string[] } | null;
  /** Every problem (each proxy's prefixed with its id). */
  problems: string[];
  ok: boolean;
}

export interface ProxyStatusOptions {
  now?: number;
  /** How long a proxy may stay behind without a NACK before it is STALE (default 10 s). */
  staleAfterMs?: number;
}

/** The proxies a configuration expects: a ztunnel per node with an ambient workload, a waypoint per Gateway. */
export function expectedProxies(model: MeshModel): { id: string; kind: "ztunnel" | "waypoint"; target: string; why: string }[] {
  const out: { id: string; kind: "ztunnel" | "waypoint"; target: string; why: string }[] = [];
  const nodes = new Map<string, number>();
  for (const w of model.workloads) if (w.ambient && w.node) nodes.set(w.node, (nodes.get(w.node) ?? 0) + 1);
  for (const [node, n] of [...nodes].sort()) out.push({ id: `ztunnel/${node}`, kind: "ztunnel", target: node, why: `${n} ambient workload${n === 1 ? "" : "s"} on node ${node}` });
  for (const w of model.waypoints) out.push({ id: `waypoint/${w.namespace}/${w.name}`, kind: "waypoint", target: `${w.namespace}/${w.name}`, why: `istio-waypoint Gateway ${w.namespace}/${w.name}` });
  return out;
}

export function proxyStatus(
  controlPlane: string,
  status: StatusInput,
  model: MeshModel | undefined,
  opts: ProxyStatusOptions = {},
): ProxyStatusReport {
  const now = opts.now ?? Date.now();
  const staleAfter = opts.staleAfterMs ?? 10_000;
  const expected = model ? expectedProxies(model) : [];
  const rows: ProxyStatusRow[] = [];
  const behindFor = now - Date.parse(status.versionAt);
  for (const p of status.proxies) {
    const problems: string[] = [];
    let state: ProxyState;
    if (p.nack && (p.ackedVersion === undefined || p.nack.version > p.ackedVersion)) {
      state = "NACK";
      problems.push(`refused (NACK) version ${p.nack.version} ${relative(p.nack.at, now)}: ${p.nack.reason}; it keeps serving ${p.ackedVersion === undefined ? "nothing from this control plane" : `version ${p.ackedVersion}`}`);
    } else if (p.ackedVersion === status.version) {
      state = "SYNCED";
    } else {
      // Behind since the latest version was made (or since it connected, if later).
      const since = Math.min(behindFor, now - Date.parse(p.connectedSince));
      state = since > staleAfter ? "STALE" : "PENDING";
      if (state === "STALE") {
        problems.push(`behind: acknowledged ${p.ackedVersion === undefined ? "no version" : `version ${p.ackedVersion}`} of ${status.version} for ${Math.round(since / 1000)} s without a NACK (not answering?)`);
      }
    }
    const expiries = p.certificates.map((c) => c.notAfter).sort();
    for (const c of p.certificates) {
      if (Date.parse(c.notAfter) <= now) problems.push(`certificate of ${c.identity} EXPIRED ${relative(c.notAfter, now)}`);
    }
    const dup = status.proxies.filter((x) => x.id === p.id).length;
    if (dup > 1) problems.push(`${dup} connections for this proxy (an overlapping restart, or two processes claim it)`);
    rows.push({
      id: p.id,
      kind: p.kind,
      target: p.node ?? p.gateway ?? "-",
      state,
      expected: expected.some((e) => e.id === p.id),
      remote: p.remote,
      connectedSince: p.connectedSince,
      ackedVersion: p.ackedVersion ?? null,
      latestVersion: status.version,
      nack: p.nack ?? null,
      certificates: p.certificates.length,
      nextCertExpiry: expiries[0] ?? null,
      clientCertNotAfter: p.clientCertNotAfter ?? null,
      problems,
    });
  }
  for (const e of expected) {
    if (rows.some((r) => r.id === e.id)) continue;
    rows.push({
      id: e.id,
      kind: e.kind,
      target: e.target,
      state: "NOT CONNECTED",
      expected: true,
      remote: null,
      connectedSince: null,
      ackedVersion: null,
      latestVersion: status.version,
      nack: null,
      certificates: 0,
      nextCertExpiry: null,
      clientCertNotAfter: null,
      problems: [`not connected to the control plane, but the configuration expects it (${e.why}): ${e.kind === "ztunnel" ? "its workloads' traffic is refused" : "traffic through it fails"} until it is back`],
    });
  }
  rows.sort((a, b) => a.id.localeCompare(b.id) || (a.connectedSince ?? "").localeCompare(b.connectedSince ?? ""));
  const problems = rows.flatMap((r) => r.problems.map((x) => `${r.id}: ${x}`));
  const lastError = status.config?.lastError;
  const configError = lastError ? { at: lastError.at, errors: configErrors(lastError) } : null;
  if (configError) {
    problems.unshift(`configuration: the control plane refuses ${status.config?.source ?? "its configuration"} since ${relative(configError.at, now)} (${configError.errors.length} error${configError.errors.length === 1 ? "" : "s"}, first: ${configError.errors[0] ?? "unknown"}); it keeps serving version ${status.version}`);
  }
  return { controlPlane, latestVersion: status.version, latestAt: status.versionAt, proxies: rows, configError, problems, ok: problems.length === 0 };
}

export function formatProxyStatus(r: ProxyStatusReport, now = Date.now()): string {
  const out: string[] = [`Control plane ${r.controlPlane}: latest configuration version ${r.latestVersion} (made ${relative(r.latestAt, now)})`, ""];
  if (!r.proxies.length) out.push("No proxy connected, and the configuration expects none.");
  else {
    out.push(table([
      ["PROXY", "NODE/GATEWAY", "STATE", "ACKED", "REMOTE", "CONNECTED", "CERTS", "NEXT CERT EXPIRY"],
      ...r.proxies.map((p) => [
        p.id,
        p.target,
        p.state,
        p.ackedVersion === null ? "-" : `${p.ackedVersion}/${p.latestVersion}`,
        p.remote ?? "-",
        p.connectedSince ? relative(p.connectedSince, now) : "-",
        String(p.certificates),
        p.nextCertExpiry ? `${p.nextCertExpiry} (${relative(p.nextCertExpiry, now)})` : "-",
      ]),
    ]).trimEnd());
  }
  if (r.problems.length) {
    out.push("", "Needs attention:");
    for (const p of r.problems) out.push(`  ! ${p}`);
  } else out.push("", "Every expected proxy is connected and synced.");
  return out.join("\n") + "\n";
}
