/**
 * What `mesh describe`, `mesh proxy-status` and `mesh proxy-config` share: how they reach a running mesh.
 *
 * - The control plane (15012, TLS) with an admin credential: --token-file (from `mesh token create
 *   --admin`) with --ca-cert, or --data-dir (local access to the control plane's data dir: its root
 *   certificate, and an admin token made for this call). Never without one.
 * - A proxy's admin API (localhost:15000) with its local secret (src/admin/auth.ts), from the proxy's
 *   network namespace.
 * - In the lab, by themselves: with no connection flags (or --lab PREFIX), they find the lab's state, and
 *   run again inside the right network namespace (the control plane's, a node's, a waypoint's) with the
 *   lab's addresses, data dir and log files filled in. The host namespace has no route into the lab.
 */
import { existsSync, openSync, readFileSync, readSync, closeSync, fstatSync } from "node:fs";
import { basename, join } from "node:path";
import type { FlagSpec, Parsed } from "../args.ts";
import type { CommandIO } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { readText } from "../../platform/mod.ts";
import { createBootstrapToken } from "../../identity/mod.ts";
import type { MeshModel } from "../../model/mod.ts";
import { callJson, errorOf, openSession, parseWith, PATHS, type StatusReport, StatusReportSchema } from "../../xds/mod.ts";
import { ADDRESSES, defaultStateDir, type LabState, loadState, requireLab } from "../../lab/mod.ts";
import { type AccessLogEntry, parseAccessLog, type ReadinessFact } from "../../describe/mod.ts";

export const CONTROL_FLAGS: FlagSpec[] = [
  { name: "control-plane", kind: "string", help: "HOST:PORT of the control role (default 127.0.0.1:15012)" },
  { name: "data-dir", kind: "string", help: "the control role's data dir: local access (root-cert.pem, an admin token made for this call)" },
  { name: "token-file", kind: "string", help: "admin token from `mesh token create --admin` (with --ca-cert)" },
  { name: "ca-cert", kind: "string", help: "root certificate of the control plane (default DATA_DIR/root-cert.pem)" },
  { name: "lab", kind: "string", help: "the lab to ask: its --prefix, or \"default\" (found by itself when no other flag says where)" },
];

export const FORMAT_FLAG: FlagSpec = { name: "format", kind: "string", help: "text or json", default: "text" };

export function str(args: Parsed, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function formatOf(args: Parsed): "text" | "json" {
  const f = str(args, "format") ?? "text";
  if (f !== "text" && f !== "json") throw new MeshError(ErrorCode.Usage, `--format must be text or json, not "${f}"`);
  return f;
}

// ---- the lab ----

/**
 * The lab these commands should ask, if any: --lab PREFIX ("default" for the default lab), or, when no
 * flag names a control plane, a proxy or a configuration, the default lab if one is up.
 */
export function labFor(args: Parsed, connectionFlags: string[]): LabState | undefined {
  const named = str(args, "lab");
  if (named) {
    const prefix = named === "default" ? undefined : named;
    return requireLab({ prefix });
  }
  if (connectionFlags.some((f) => args.flags[f] !== undefined && args.flags[f] !== "")) return undefined;
  const state = loadState(defaultStateDir());
  return state && state.mode === "mesh" ? state : undefined;
}

export function labControl(state: LabState): { netns: string; dataDir: string; controlPlane: string } {
  const ns = state.namespaces.find((n) => n.kind === "control");
  if (!ns) throw new MeshError(ErrorCode.LabState, `The lab in ${state.stateDir} runs no control plane (--no-mesh): nothing to ask`);
  return { netns: ns.name, dataDir: join(state.stateDir, "control"), controlPlane: `${ADDRESSES.control}:${ADDRESSES.controlPlanePort}` };
}

/** The log files of the lab's proxies, by proxy id ("ztunnel/node-a", "waypoint/ns/name"). */
export function labProxyLogs(state: LabState): { proxy: string; file: string }[] {
  return state.processes.filter((p) => p.kind === "ztunnel" || p.kind === "waypoint").map((p) => ({ proxy: p.id, file: p.log }));
}

/** argv prefix that runs this mesh: the compiled executable itself, or bun with the CLI's entry file. */
export function selfCommand(): string[] {
  const name = basename(process.execPath);
  return name === "bun" || name.startsWith("bun-") ? [process.execPath, Bun.main] : [process.execPath];
}

/** Rebuilds a command line from parsed flags, minus `drop`, plus `add` (list flags repeat). */
export function argvFrom(name: string, args: Parsed, drop: string[], add: Record<string, string | string[]>): string[] {
  const out = [name, ...args.positionals];
  for (const [k, v] of Object.entries(args.flags)) {
    if (drop.includes(k) || k in add || v === undefined || v === false) continue;
    if (v === true) out.push(`--${k}`);
    else if (Array.isArray(v)) for (const x of v) out.push(`--${k}=${x}`);
    else out.push(`--${k}=${v}`);
  }
  for (const [k, v] of Object.entries(add)) for (const x of Array.isArray(v) ? v : [v]) out.push(`--${k}=${x}`);
  return out;
}

/** Runs this mesh again inside a network namespace (`ip netns exec`), relaying its output and exit code. */
export async function runInNetns(netns: string, argv: string[], io: CommandIO, timeoutMs = 60_000): Promise<number> {
  if (process.getuid?.() !== 0) {
    throw new MeshError(ErrorCode.NotRoot, `Asking the lab needs root (it runs inside the lab's network namespace ${netns}): use sudo`);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // The child gets every flag on its command line; a MESH_* twin must not add another (e.g. MESH_LAB).
    if (v !== undefined && (!k.startsWith("MESH_") || k === "MESH_LOG_LEVEL")) env[k] = v;
  }
  const p = Bun.spawn(["ip", "netns", "exec", netns, ...selfCommand(), ...argv], { stdout: "pipe", stderr: "pipe", env });
  // timeoutMs 0: no limit (`mesh observe --follow` runs until interrupted); output is relayed as it comes.
  const timer = timeoutMs > 0 ? setTimeout(() => p.kill("SIGKILL"), timeoutMs) : undefined;
  const relay = async (from: ReadableStream<Uint8Array>, to: (text: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of from) to(dec.decode(chunk, { stream: true }));
  };
  // Interrupting this process interrupts the command it runs (which may follow a stream until then).
  const forward = (signal: NodeJS.Signals) => p.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    const [, , code] = await Promise.all([relay(p.stdout, (t) => io.stdout(t)), relay(p.stderr, (t) => io.stderr(t)), p.exited]);
    return code;
  } finally {
    clearTimeout(timer);
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  }
}

// ---- the control plane ----

export interface ControlAccess {
  controlPlane: string;
  ca: string;
  token: string | (() => Promise<string>);
  dataDir?: string;
}

export function controlAccess(args: Parsed, command: string): ControlAccess {
  const dataDir = str(args, "data-dir");
  const caPath = str(args, "ca-cert") ?? (dataDir ? join(dataDir, "root-cert.pem") : undefined);
  const controlPlane = str(args, "control-plane") ?? "127.0.0.1:15012";
  const where = "--data-dir DIR (on the control host), or --token-file FILE (mesh token create --admin) with --ca-cert FILE; in a lab, --lab PREFIX";
  if (!caPath) throw new MeshError(ErrorCode.Usage, `mesh ${command} needs a credential for the control plane: ${where}`);
  const ca = readText(caPath, "the root certificate", { code: ErrorCode.Usage });
  const tokenFile = str(args, "token-file");
  if (tokenFile) return { controlPlane, ca, token: readText(tokenFile, "the token file", { code: ErrorCode.Usage }).trim(), dataDir };
  if (!dataDir) throw new MeshError(ErrorCode.Usage, `mesh ${command} needs an admin credential: ${where}`);
  return { controlPlane, ca, token: () => createBootstrapToken(dataDir, { admin: true, ttlSeconds: 120 }), dataDir };
}

/** The status report and the configuration the control plane serves, with one admin token. */
export async function askControl(a: ControlAccess): Promise<{ status: StatusReport; model: MeshModel | undefined }> {
  const token = typeof a.token === "string" ? a.token : await a.token();
  const session = await openSession(a.controlPlane, { ca: a.ca }, 5000);
  try {
    const headers = { authorization: `Bearer ${token}` };
    const [s, c] = await Promise.all([
      callJson(session, "GET", PATHS.status, undefined, headers),
      callJson(session, "GET", PATHS.config, undefined, headers),
    ]);
    if (s.status !== 200) throw errorOf(s.status, s.body, "Status refused");
    const p = parseWith(StatusReportSchema, s.body);
    if (!p.ok) throw new MeshError(ErrorCode.Unreachable, `Unexpected status answer: ${p.error}`);
    let model: MeshModel | undefined;
    if (c.status === 200) model = ((c.body as { model?: MeshModel | null }).model) ?? undefined;
    else if (c.status !== 404) throw errorOf(c.status, c.body, "Configuration refused");
    // A control plane without /v1/config: with local access, its last good configuration is on disk.
    if (!model && a.dataDir) {
      const saved = join(a.dataDir, "control-last-good.json");
      if (existsSync(saved)) model = JSON.parse(readFileSync(saved, "utf8")) as MeshModel;
    }
    return { status: p.value, model };
  } finally {
    session.destroy();
  }
}

/** /healthz/ready of a proxy, asked at the address of its control-plane connection (15021 is open). */
export async function probeReadiness(remote: string, timeoutMs = 1000): Promise<ReadinessFact> {
  const host = remote.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  const url = `http://${host.includes(":") ? `[${host}]` : host}:15021/healthz/ready`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = (await r.text()).trim();
    return r.status === 200 ? { ready: true, reasons: [] } : { ready: false, reasons: text.replace(/^not ready:\s*/, "").split("; ").filter(Boolean) };
  } catch (e) {
    const why = (e as { code?: string }).code ?? (e as Error).name;
    return { error: `${url} did not answer (${why})` };
  }
}

/** The last `maxBytes` of a file (logs grow; recent lines are what matter). */
function tail(path: string, maxBytes: number): string {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString("utf8");
    return start > 0 ? text.slice(text.indexOf("\n") + 1) : text;
  } finally {
    closeSync(fd);
  }
}

/** "PROXY=FILE" or "FILE" (the proxy then unknown) -> parsed access-log lines, oldest first. */
export function readAccessLogs(specs: string[], maxBytes = 4 * 1024 * 1024): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const [proxy, file] = eq > 0 && !spec.startsWith("/") ? [spec.slice(0, eq), spec.slice(eq + 1)] : [undefined, spec];
    try {
      out.push(...parseAccessLog(tail(file, maxBytes), proxy));
    } catch (e) {
      throw new MeshError(ErrorCode.Usage, `Cannot read the access log "${file}": ${(e as Error).message}`);
    }
  }
  return out.sort((a, b) => a.time.localeCompare(b.time));
}
