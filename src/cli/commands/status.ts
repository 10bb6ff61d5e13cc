/**
 * `mesh status`: what the control plane knows: connected proxies, the version each acknowledged against
 * the latest, NACK reasons, certificate expiry, and the configuration's state (the last error, with
 * file:line:col, while an invalid file is being ignored).
 *
 * It asks the control role on 15012 with an admin token: --token-file (from `mesh token create --admin`),
 * or, with local access to the control plane's --data-dir, one it makes itself for this call.
 */
import { join } from "node:path";
import type { Command } from "../command.ts";
import type { Parsed } from "../args.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { readText } from "../../platform/mod.ts";
import { createBootstrapToken } from "../../identity/mod.ts";
import { callJson, errorOf, openSession, parseWith, PATHS, type StatusReport, StatusReportSchema } from "../../xds/mod.ts";

export const status: Command = {
  name: "status",
  summary: "control plane status: connected proxies, acknowledged versions, certificate expiry",
  usage: "mesh status [--control-plane HOST:15012] [--data-dir DIR | --token-file FILE --ca-cert FILE] [--format text|json]",
  details: `Examples:
  mesh status --data-dir /var/lib/mesh                        # on the control host
  mesh status --control-plane 10.0.0.10:15012 --ca-cert root-cert.pem --token-file admin.token
Exit status: 0 when every connected proxy acknowledged the latest version and the configuration is valid,
3 otherwise (behind, NACKed, or configuration errors), 1 when the control plane cannot be asked.`,
  flags: [
    { name: "control-plane", kind: "string", help: "HOST:PORT of the control role", default: "127.0.0.1:15012" },
    { name: "data-dir", kind: "string", help: "the control role's data dir (root-cert.pem and a locally made admin token)" },
    { name: "token-file", kind: "string", help: "admin token from `mesh token create --admin`" },
    { name: "ca-cert", kind: "string", help: "root certificate of the control plane (default DATA_DIR/root-cert.pem)" },
    { name: "format", kind: "string", help: "text or json", default: "text" },
  ],
  async run(args, io) {
    const format = str(args, "format") ?? "text";
    if (format !== "text" && format !== "json") throw new MeshError(ErrorCode.Usage, `--format must be text or json, not "${format}"`);
    const cp = str(args, "control-plane") ?? "127.0.0.1:15012";
    const report = await fetchStatus(cp, credentials(args));
    if (format === "json") io.stdout(JSON.stringify(report, null, 2) + "\n");
    else io.stdout(renderStatus(report, cp));
    const behind = report.proxies.some((p) => p.ackedVersion !== report.version || p.nack);
    return behind || report.config.lastError ? 3 : 0;
  },
};

function str(args: Parsed, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function credentials(args: Parsed): { ca: string; token: string | (() => Promise<string>) } {
  const dataDir = str(args, "data-dir");
  const caPath = str(args, "ca-cert") ?? (dataDir ? join(dataDir, "root-cert.pem") : undefined);
  if (!caPath) throw new MeshError(ErrorCode.Usage, "mesh status needs --data-dir DIR, or --ca-cert FILE with --token-file FILE");
  const ca = readText(caPath, "the root certificate", { code: ErrorCode.Usage });
  const tokenFile = str(args, "token-file");
  if (tokenFile) return { ca, token: readText(tokenFile, "the token file", { code: ErrorCode.Usage }).trim() };
  if (!dataDir) throw new MeshError(ErrorCode.Usage, "mesh status needs --token-file FILE (an admin token) or --data-dir DIR");
  return { ca, token: () => createBootstrapToken(dataDir, { admin: true, ttlSeconds: 120 }) };
}

export async function fetchStatus(controlPlane: string, c: { ca: string; token: string | (() => Promise<string>) }): Promise<StatusReport> {
  const token = typeof c.token === "string" ? c.token : await c.token();
  const session = await openSession(controlPlane, { ca: c.ca }, 5000);
  try {
    const r = await callJson(session, "GET", PATHS.status, undefined, { authorization: `Bearer ${token}` });
    if (r.status !== 200) throw errorOf(r.status, r.body, "Status refused");
    const p = parseWith(StatusReportSchema, r.body);
    if (!p.ok) throw new MeshError(ErrorCode.Unreachable, `Unexpected status answer: ${p.error}`);
    return p.value;
  } finally {
    session.destroy();
  }
}

function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  const abs = Math.abs(s);
  const t = abs < 120 ? `${abs}s` : abs < 7200 ? `${Math.round(abs / 60)}m` : abs < 172800 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s >= 0 ? `${t} ago` : `in ${t}`;
}

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join("  ").trimEnd()).join("\n") + "\n";
}

export function renderStatus(r: StatusReport, controlPlane: string): string {
  const out: string[] = [];
  out.push(`Control plane ${controlPlane}: configuration version ${r.version} (${ago(r.versionAt)})`);
  const c = r.config;
  out.push(`Configuration ${c.source}: ${c.workloads} workloads, ${c.services} services, ${c.warnings} warnings`);
  if (c.lastError) {
    out.push(`  INVALID since ${ago(c.lastError.at)}: still serving version ${r.version}, the last good configuration`);
    for (const d of c.lastError.diagnostics.filter((x) => x.severity === "error").slice(0, 20)) {
      const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
      out.push(`  ${where}: ${d.severity}: ${d.message} [${d.rule}]`);
    }
  }
  out.push(`Trust bundle: ${r.trustBundle.map((b) => `${b.subject} (expires ${b.notAfter.slice(0, 10)})`).join("; ")}`);
  out.push("");
  if (!r.proxies.length) {
    out.push("No proxy connected.");
    return out.join("\n") + "\n";
  }
  const rows = [["PROXY", "NODE/GATEWAY", "ACKED", "STATE", "CONNECTED", "CERTS", "NEXT CERT EXPIRY"]];
  for (const p of r.proxies) {
    const state = p.nack
      ? `NACK v${p.nack.version}: ${p.nack.reason}`
      : p.ackedVersion === r.version
      ? "SYNCED"
      : p.sentVersion !== undefined && p.sentVersion !== p.ackedVersion
      ? `PENDING v${p.sentVersion}`
      : "STALE";
    const expiries = p.certificates.map((x) => x.notAfter).sort();
    rows.push([
      p.id,
      p.node ?? p.gateway ?? "-",
      p.ackedVersion === undefined ? "-" : String(p.ackedVersion),
      state,
      ago(p.connectedSince),
      String(p.certificates.length),
      expiries[0] ? `${expiries[0]} (${ago(expiries[0])})` : "-",
    ]);
  }
  return out.join("\n") + "\n" + table(rows);
}
