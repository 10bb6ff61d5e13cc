/**
 * `mesh lab up`, `apply` and `down`: the lab's whole life. Up and apply go through the same
 * reconciliation; down works from the recorded state alone, so it cleans up after a crash too.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { listNetns, netnsExists, runCommand, stopProcess } from "../platform/mod.ts";
import { controlDataDir, rootCertPath, startControl, startUiRelay, waitReady } from "./components.ts";
import { DEFAULT_UI_LISTEN, labUiUrl } from "./ui_relay.ts";
import { defaultStateDir, labNames } from "./names.ts";
import { planFromYaml } from "./plan.ts";
import { elapsed, type Progress, reconcileNetwork, reconcileProcesses } from "./reconcile.ts";
import { currentMeshCommand, installMeshShim, requireRoot } from "./runtime.ts";
import { type LabState, loadState, saveState } from "./state.ts";
import { createControlNamespace, createFabric, deleteLabNetns, removeEtcNetnsIfOurs, removeNamespace } from "./topology.ts";

export interface LabLocation {
  /** --prefix: names become mlab.<prefix>-* and the default state dir /run/mesh-lab/<prefix> */
  prefix?: string;
  stateDir?: string;
}

export interface UpOptions extends LabLocation {
  file: string;
  noMesh?: boolean;
  /** readiness timeout per phase */
  timeoutMs?: number;
  /** argv prefix that runs mesh (default: this executable) */
  mesh?: string[];
  /** Where the host reaches the traffic map (default 127.0.0.1:15014; a free port when taken). */
  uiListen?: string;
  progress?: Progress;
}

export function resolveStateDir(loc: LabLocation): string {
  return resolve(loc.stateDir ?? defaultStateDir(loc.prefix));
}

/** The running lab's state, or a clear error saying there is none. */
export function requireLab(loc: LabLocation): LabState {
  const dir = resolveStateDir(loc);
  const state = loadState(dir);
  if (!state) {
    throw new MeshError(ErrorCode.LabState, `No lab is up here (no state in ${dir}): start one with mesh lab up FILE`);
  }
  return state;
}

export async function labUp(opts: UpOptions): Promise<LabState> {
  requireRoot("mesh lab up");
  const progress = opts.progress ?? (() => {});
  const t0 = Date.now();
  const names = labNames(opts.prefix);
  const stateDir = resolveStateDir(opts);
  const source = resolve(opts.file);
  if (!existsSync(source)) throw new MeshError(ErrorCode.ConfigNotFound, `Config file not found: ${source}`);
  const text = readFileSync(source, "utf8");
  const plan = planFromYaml(text, opts.file);
  if (!plan.pods.length) {
    throw new MeshError(ErrorCode.ConfigInvalid, `${opts.file} declares no Pod: the lab builds its nodes from Pods (spec.nodeName, status.podIP)`);
  }
  if (loadState(stateDir)) {
    throw new MeshError(
      ErrorCode.LabState,
      `A lab is already recorded in ${stateDir}: take it down first (mesh lab down${opts.prefix ? ` --prefix ${opts.prefix}` : ""}), or use another --prefix`,
    );
  }
  const taken = listNetns().filter((n) => n.startsWith(names.prefix));
  if (taken.length) {
    throw new MeshError(
      ErrorCode.LabState,
      `Network namespaces named like this lab's already exist (${taken.slice(0, 3).join(", ")}${taken.length > 3 ? ", ..." : ""}) without a state in ${stateDir}: remove them (mesh lab down --force) or use another --prefix`,
    );
  }
  const mesh = opts.mesh ?? currentMeshCommand();
  const mode = opts.noMesh ? "no-mesh" : "mesh";
  const state: LabState = {
    version: 1,
    prefix: opts.prefix,
    namePrefix: names.prefix,
    stateDir,
    mode,
    phase: "starting",
    createdAt: new Date().toISOString(),
    source,
    configFile: join(stateDir, "config", "mesh.yaml"),
    mesh,
    binDir: join(stateDir, "bin"),
    namespaces: [],
    nodes: [],
    endpoints: [],
    processes: [],
    nextNodeIndex: 0,
    plan: { nodes: [], pods: [], waypoints: [], services: [] },
  };
  if (mode === "mesh") {
    const check = runCommand([...mesh, "check", source], { timeoutMs: 30_000 });
    if (check.code !== 0) {
      const said = (check.stdout + check.stderr).trim().split("\n").map((l) => `    ${l}`).join("\n");
      progress(`mesh lab: mesh check reports problems with ${opts.file} (the control plane may refuse it):\n${said}`);
    }
  }
  mkdirSync(join(stateDir, "config"), { recursive: true });
  saveState(state);
  copyFileSync(source, state.configFile);
  installMeshShim(state.binDir, mesh);
  progress(
    `mesh lab: bringing up ${opts.file} as ${names.prefix}* (${mode === "mesh" ? "with the mesh" : "--no-mesh: no mesh components"}), state in ${stateDir}`,
  );
  const timeoutMs = opts.timeoutMs ?? 60_000;
  try {
    createFabric(state);
    const controlNs = mode === "mesh" ? createControlNamespace(state) : undefined;
    const diff = await reconcileNetwork(state, plan, progress);
    if (controlNs) {
      const t1 = Date.now();
      const control = startControl(state, controlNs);
      await waitReady([control], timeoutMs, () => {});
      if (!existsSync(rootCertPath(state))) {
        throw new MeshError(ErrorCode.LabState, `The control plane is ready but wrote no ${rootCertPath(state)}`);
      }
      progress(`  control    ${controlNs} at 10.99.0.2:15012, data in ${controlDataDir(state)} ready ${elapsed(t1)}`);
      const { relay, tokenFile } = startUiRelay(state, opts.uiListen ?? DEFAULT_UI_LISTEN);
      await waitReady([relay], timeoutMs, () => {});
      progress(`  map        ${labUiUrl(state)} (the traffic map; sign in with the admin token in ${tokenFile})`);
    }
    await reconcileProcesses(state, plan, diff, progress, timeoutMs);
  } catch (e) {
    state.phase = "failed";
    saveState(state);
    throw new MeshError(
      ErrorCode.LabState,
      `${(e as Error).message}\nThe lab is left as it is for inspection: mesh lab status${locFlags(opts)}; remove it with mesh lab down${locFlags(opts)}`,
      { cause: e },
    );
  }
  state.phase = "ready";
  saveState(state);
  progress(`mesh lab: ready ${elapsed(t0)}`);
  return state;
}

function locFlags(loc: LabLocation): string {
  return `${loc.prefix ? ` --prefix ${loc.prefix}` : ""}${loc.stateDir ? ` --state-dir ${loc.stateDir}` : ""}`;
}

export interface ApplyOptions extends LabLocation {
  file: string;
  timeoutMs?: number;
  progress?: Progress;
}

/**
 * Pushes a new configuration: overwrites the control plane's --config in place (it watches the file)
 * and reconciles the topology (pods, nodes, waypoints added, changed or removed).
 */
export async function labApply(opts: ApplyOptions): Promise<LabState> {
  requireRoot("mesh lab apply");
  const progress = opts.progress ?? (() => {});
  const state = requireLab(opts);
  const source = resolve(opts.file);
  if (!existsSync(source)) throw new MeshError(ErrorCode.ConfigNotFound, `Config file not found: ${source}`);
  const text = readFileSync(source, "utf8");
  const plan = planFromYaml(text, opts.file);
  const t0 = Date.now();
  state.phase = "applying";
  state.source = source;
  saveState(state);
  if (state.mode === "mesh") {
    // Say up front what the control plane will think of it (it keeps its last good config on errors).
    const check = runCommand([...state.mesh, "check", source], { timeoutMs: 30_000 });
    if (check.code !== 0) {
      const said = (check.stdout + check.stderr).trim().split("\n").map((l) => `    ${l}`).join("\n");
      progress(`  check      mesh check reports problems (the control plane may keep its last good configuration):\n${said}`);
    }
  }
  // In place (one write, same inode) so a watcher on the file itself keeps watching it.
  writeFileSync(state.configFile, text);
  progress(`mesh lab: applied ${opts.file} to ${state.configFile}${state.mode === "mesh" ? " (the control plane reloads it)" : ""}`);
  const diff = await reconcileNetwork(state, plan, progress);
  await reconcileProcesses(state, plan, diff, progress, opts.timeoutMs ?? 60_000);
  state.phase = "ready";
  saveState(state);
  progress(`mesh lab: applied ${elapsed(t0)}`);
  return state;
}

export interface DownOptions extends LabLocation {
  /** keep STATE_DIR/logs */
  keepLogs?: boolean;
  /** without a state: remove every namespace carrying this lab's prefix */
  force?: boolean;
  progress?: Progress;
}

export interface DownReport {
  stoppedProcesses: number;
  removedNamespaces: string[];
  /** namespaces with the lab's prefix still present afterwards (should be none) */
  leftover: string[];
}

/** Removes everything the lab recorded: processes, namespaces (with their links and rules), files. */
export async function labDown(opts: DownOptions): Promise<DownReport> {
  requireRoot("mesh lab down");
  const progress = opts.progress ?? (() => {});
  const names = labNames(opts.prefix);
  const stateDir = resolveStateDir(opts);
  const state = loadState(stateDir);
  const report: DownReport = { stoppedProcesses: 0, removedNamespaces: [], leftover: [] };
  if (!state) {
    const strays = listNetns().filter((n) => n.startsWith(names.prefix));
    if (!strays.length) {
      progress(`mesh lab: nothing to take down (no state in ${stateDir})`);
      return report;
    }
    if (!opts.force) {
      throw new MeshError(
        ErrorCode.LabState,
        `No state in ${stateDir}, but namespaces named like this lab's exist (${strays.join(", ")}): mesh lab down --force removes them`,
      );
    }
    for (const ns of strays) {
      await deleteLabNetns(ns);
      const etc = `/etc/netns/${ns}`;
      if (existsSync(etc)) rmSync(etc, { recursive: true, force: true });
      report.removedNamespaces.push(ns);
    }
    removeEtcNetnsIfOurs();
    progress(`mesh lab: removed ${strays.length} namespace(s) without a state (--force)`);
    return report;
  }
  const t0 = Date.now();
  // Pods first, then waypoints and ztunnels, the control plane last (it serves the others until then). The
  // ztunnels leave their capture rules (fail closed); the node namespaces, removed below, take them along.
  const order = ["ui", "pod", "external", "waypoint", "ztunnel", "control"] as const;
  for (const kind of order) {
    const list = state.processes.filter((p) => p.kind === kind && p.pid !== undefined && p.startTime !== undefined);
    const stopped = await Promise.all(list.map((p) => stopProcess({ pid: p.pid!, startTime: p.startTime! })));
    report.stoppedProcesses += stopped.filter(Boolean).length;
  }
  state.processes = [];
  saveState(state);
  // Leaves before the fabric; each namespace's leftover processes (children, `lab exec` shells) go first.
  const rank = { pod: 0, waypoint: 0, external: 0, node: 1, control: 1, fabric: 2 } as const;
  const namespaces = [...state.namespaces].sort((a, b) => rank[a.kind] - rank[b.kind]);
  for (const ns of namespaces) {
    const existed = netnsExists(ns.name);
    await removeNamespace(state, ns.name);
    if (existed) report.removedNamespaces.push(ns.name);
  }
  removeEtcNetnsIfOurs();
  report.leftover = listNetns().filter((n) => namespaces.some((x) => x.name === n));
  if (report.leftover.length) {
    throw new MeshError(ErrorCode.LabState, `Could not remove ${report.leftover.join(", ")}: state kept in ${stateDir}; try again`);
  }
  if (opts.keepLogs) {
    for (const entry of ["state.json", "config", "bin", "tokens", "control", "ztunnel", "pods"]) {
      rmSync(join(stateDir, entry), { recursive: true, force: true });
    }
  } else {
    rmSync(stateDir, { recursive: true, force: true });
  }
  progress(
    `mesh lab: down: stopped ${report.stoppedProcesses} process(es), removed ${report.removedNamespaces.length} namespace(s) ${elapsed(t0)}` +
      (opts.keepLogs ? `; logs kept in ${join(stateDir, "logs")}` : ""),
  );
  return report;
}
