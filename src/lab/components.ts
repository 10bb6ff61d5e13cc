/**
 * The lab's processes: the mesh components (control plane, a ztunnel per node, a waypoint per Gateway)
 * and the pods' commands, each started inside its namespace with its output in its own log file, and
 * recorded in the state before it starts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { inNetns, isRunning, runCommand, spawnDetached, stopProcess } from "../platform/mod.ts";
import { listeningPorts, probeReady } from "./health.ts";
import { ADDRESSES, type LabPod, type LabWaypoint } from "./plan.ts";
import { childEnv } from "./runtime.ts";
import { type LabState, type ProcessKind, type ProcessRecord, saveState } from "./state.ts";

export const CONTROL_PLANE = `${ADDRESSES.control}:${ADDRESSES.controlPlanePort}`;

export function controlDataDir(state: LabState): string {
  return join(state.stateDir, "control");
}

export function rootCertPath(state: LabState): string {
  return join(controlDataDir(state), "root-cert.pem");
}

/** Where the lab's control role serves the traffic map (a path is the same in every network namespace). */
export function uiSocketPath(state: LabState): string {
  return join(controlDataDir(state), "ui.sock");
}

/** Where the traffic map's relay writes the address it listens at. */
export function uiAddressFile(state: LabState): string {
  return join(state.stateDir, "ui-address");
}

export function logPath(state: LabState, id: string): string {
  return join(state.stateDir, "logs", `${id.replace(/\//g, "_")}.log`);
}

function start(
  state: LabState,
  rec: Omit<ProcessRecord, "log" | "pid" | "startTime">,
  extraEnv: Record<string, string> = {},
  cwd?: string,
): ProcessRecord {
  const log = logPath(state, rec.id);
  mkdirSync(join(state.stateDir, "logs"), { recursive: true });
  const full: ProcessRecord = { ...rec, log };
  state.processes = state.processes.filter((p) => p.id !== rec.id);
  state.processes.push(full);
  saveState(state);
  writeFileSync(log, `# ${new Date().toISOString()} ${rec.argv.join(" ")}\n`, { flag: "a" });
  const id = spawnDetached(rec.argv, { logFile: log, env: childEnv(state.binDir, extraEnv), cwd });
  full.pid = id.pid;
  full.startTime = id.startTime;
  saveState(state);
  return full;
}

export function startControl(state: LabState, netns: string): ProcessRecord {
  mkdirSync(controlDataDir(state), { recursive: true });
  return start(state, {
    id: "control",
    kind: "control",
    netns,
    healthAddress: ADDRESSES.control,
    argv: inNetns(netns, [
      ...state.mesh,
      "run",
      "--role",
      "control",
      "--config",
      state.configFile,
      "--data-dir",
      controlDataDir(state),
      "--listen",
      CONTROL_PLANE,
      "--ui-listen",
      `unix:${uiSocketPath(state)}`,
    ]),
  });
}

/**
 * The traffic map's relay in the host's namespace (see ./ui_relay.ts), and an admin token to sign in with
 * (a 0600 file in the lab's state).
 */
export function startUiRelay(state: LabState, listen: string): { relay: ProcessRecord; tokenFile: string } {
  const tokenFile = createToken(state, ["--admin"]);
  const relay = start(state, {
    id: "ui",
    kind: "ui",
    netns: "",
    argv: [
      ...state.mesh,
      "lab",
      "ui-relay",
      "--ui-listen",
      listen,
      "--socket",
      uiSocketPath(state),
      "--address-file",
      uiAddressFile(state),
    ],
  });
  return { relay, tokenFile };
}

/** The token file of a node, a gateway ("ns/name") or "admin". */
export function tokenPath(state: LabState, who: string): string {
  return join(state.stateDir, "tokens", `${who.replace(/\//g, "_")}.token`);
}

/** `mesh token create` against the control plane's data dir; the token goes to a 0600 file. */
function createToken(state: LabState, subject: ["--node" | "--gateway", string] | ["--admin"]): string {
  const dir = join(state.stateDir, "tokens");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const argv = [...state.mesh, "token", "create", "--data-dir", controlDataDir(state), ...subject];
  const r = runCommand(argv, { timeoutMs: 30_000 });
  const token = r.stdout.trim();
  if (r.code !== 0 || !token) {
    throw new MeshError(ErrorCode.LabState, `Could not create a token (${argv.join(" ")}): ${r.stderr.trim() || "empty output"}`);
  }
  const file = tokenPath(state, subject[1] ?? "admin");
  writeFileSync(file, token + "\n", { mode: 0o600 });
  return file;
}

export function startZtunnel(state: LabState, node: string): ProcessRecord {
  const rec = state.nodes.find((n) => n.name === node)!;
  const tokenFile = createToken(state, ["--node", node]);
  const dataDir = join(state.stateDir, "ztunnel", node);
  mkdirSync(dataDir, { recursive: true });
  return start(state, {
    id: `ztunnel/${node}`,
    kind: "ztunnel",
    netns: rec.netns,
    healthAddress: rec.address,
    // The lab's DNS server, when it runs, is the upstream of the ztunnel's DNS proxy.
    argv: inNetns(rec.netns, proxyArgv(state, tokenFile, ["--role", "ztunnel", "--node", node], ["--redirect", "node", "--data-dir", dataDir, "--dns-upstream", ADDRESSES.dns])),
  });
}

/** `mesh run` for a proxy of the lab: its role flags, the lab's control plane and root, its token. */
function proxyArgv(state: LabState, tokenFile: string, role: string[], extra: string[] = []): string[] {
  return [...state.mesh, "run", ...role, "--control-plane", CONTROL_PLANE, "--ca-cert", rootCertPath(state), "--token-file", tokenFile, ...extra];
}

export function startWaypoint(state: LabState, wp: LabWaypoint, netns: string): ProcessRecord {
  const gateway = `${wp.namespace}/${wp.name}`;
  const tokenFile = createToken(state, ["--gateway", gateway]);
  return start(state, {
    id: `waypoint/${gateway}`,
    kind: "waypoint",
    netns,
    healthAddress: wp.ip,
    argv: inNetns(netns, proxyArgv(state, tokenFile, ["--role", "waypoint", "--gateway", gateway])),
  });
}

/** Runs a pod's command in its namespace, in a working directory of its own. Pods without one run nothing. */
export function startPod(state: LabState, pod: LabPod, netns: string): ProcessRecord | undefined {
  if (!pod.command.length) return undefined;
  const cwd = join(state.stateDir, "pods", `${pod.namespace}.${pod.name}`);
  mkdirSync(cwd, { recursive: true });
  return start(
    state,
    { id: `pod/${pod.namespace}/${pod.name}`, kind: "pod", netns, ports: pod.ports, argv: inNetns(netns, pod.command) },
    { POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_IP: pod.ip, NODE_NAME: pod.node, HOSTNAME: pod.name },
    cwd,
  );
}

/** An ExternalHost's command or the lab's DNS server, in its namespace (ready when its ports listen). */
export function startExternal(state: LabState, rec: { id: string; netns: string; argv: string[]; ports: number[] }): ProcessRecord {
  const cwd = join(state.stateDir, "external", rec.id.replace(/\//g, "_"));
  mkdirSync(cwd, { recursive: true });
  return start(state, { ...rec, kind: "external" }, {}, cwd);
}

export async function stopRecorded(state: LabState, id: string): Promise<void> {
  const p = state.processes.find((x) => x.id === id);
  if (!p) return;
  if (p.pid !== undefined && p.startTime !== undefined) await stopProcess({ pid: p.pid, startTime: p.startTime });
  state.processes = state.processes.filter((x) => x !== p);
  saveState(state);
}

export function isAlive(p: ProcessRecord): boolean {
  return p.pid !== undefined && p.startTime !== undefined && isRunning({ pid: p.pid, startTime: p.startTime });
}

/** Ready: a mesh component's /healthz/ready says 200; a pod runs and its declared ports listen. */
export function isReady(p: ProcessRecord): boolean {
  if (!isAlive(p)) return false;
  // The relay is ready once it wrote where it listens.
  if (p.kind === "ui") return existsSync(p.argv[p.argv.indexOf("--address-file") + 1] ?? "");
  if (p.kind === "pod" || p.kind === "external") {
    if (!p.ports?.length) return true;
    const open = listeningPorts(p.netns);
    return p.ports.every((port) => open.has(port));
  }
  return probeReady(p.netns, p.healthAddress);
}

export function logTail(p: ProcessRecord, lines = 15): string {
  if (!existsSync(p.log)) return "(no log)";
  const text = readFileSync(p.log, "utf8").trimEnd().split("\n");
  return text.slice(-lines).map((l) => `    | ${l}`).join("\n");
}

/**
 * Waits until every listed process is ready. Fails at once if one exits (quoting its log), or when
 * `timeoutMs` passes (naming those not ready). `onReady` reports each as it becomes ready.
 */
export async function waitReady(
  processes: ProcessRecord[],
  timeoutMs: number,
  onReady: (p: ProcessRecord, ms: number) => void,
): Promise<void> {
  const started = Date.now();
  const pending = new Set(processes);
  while (pending.size) {
    for (const p of [...pending]) {
      if (!isAlive(p)) {
        throw new MeshError(ErrorCode.LabState, `${p.id} exited before it was ready; the end of ${p.log}:\n${logTail(p)}`);
      }
      if (isReady(p)) {
        pending.delete(p);
        onReady(p, Date.now() - started);
      }
    }
    if (!pending.size) break;
    if (Date.now() - started > timeoutMs) {
      const details = [...pending].map((p) => `  ${p.id} (log ${p.log}):\n${logTail(p, 8)}`).join("\n");
      throw new MeshError(ErrorCode.LabState, `Not ready after ${Math.round(timeoutMs / 1000)} s:\n${details}`);
    }
    await Bun.sleep(150);
  }
}

export type { ProcessKind };
