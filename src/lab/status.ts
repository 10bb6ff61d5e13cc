/** `mesh lab status`: what runs where, whether it is healthy, and where its log is. */
import { netnsExists } from "../platform/mod.ts";
import { isAlive, isReady, tokenPath } from "./components.ts";
import { labUiUrl } from "./ui_relay.ts";
import { type LabLocation, requireLab } from "./lifecycle.ts";
import { requireRoot } from "./runtime.ts";
import type { LabState } from "./state.ts";

export interface LabStatusEntry {
  /** "control", "ztunnel/<node>", "waypoint/<ns>/<name>", "pod/<ns>/<name>", "node/<name>" */
  id: string;
  kind: "control" | "ztunnel" | "waypoint" | "pod" | "node" | "ui" | "external";
  netns: string;
  netnsExists: boolean;
  address?: string;
  node?: string;
  pid?: number;
  running: boolean;
  ready: boolean;
  /** what "ready" means for it */
  check: string;
  log?: string;
  command?: string[];
}

export interface LabStatus {
  prefix: string;
  mode: LabState["mode"];
  phase: LabState["phase"];
  stateDir: string;
  source: string;
  configFile: string;
  createdAt: string;
  healthy: boolean;
  /** Where the host reaches the traffic map, when the lab runs the mesh, and the admin token to sign in with. */
  uiUrl?: string;
  uiTokenFile?: string;
  entries: LabStatusEntry[];
}

export function labStatus(loc: LabLocation): LabStatus {
  requireRoot("mesh lab status");
  const state = requireLab(loc);
  const entries: LabStatusEntry[] = [];
  const proc = (id: string) => state.processes.find((p) => p.id === id);
  const control = proc("control");
  if (control) {
    entries.push({
      id: "control",
      kind: "control",
      netns: control.netns,
      netnsExists: netnsExists(control.netns),
      address: control.healthAddress,
      pid: control.pid,
      running: isAlive(control),
      ready: isReady(control),
      check: "GET :15021/healthz/ready",
      log: control.log,
    });
  }
  const ui = proc("ui");
  if (ui) {
    entries.push({
      id: "ui",
      kind: "ui",
      netns: "(host)",
      netnsExists: true,
      address: labUiUrl(state),
      pid: ui.pid,
      running: isAlive(ui),
      ready: isReady(ui),
      check: "relay listening (the traffic map)",
      log: ui.log,
    });
  }
  for (const n of state.nodes) {
    const z = proc(`ztunnel/${n.name}`);
    entries.push({
      id: state.mode === "mesh" ? `ztunnel/${n.name}` : `node/${n.name}`,
      kind: state.mode === "mesh" ? "ztunnel" : "node",
      netns: n.netns,
      netnsExists: netnsExists(n.netns),
      address: n.address,
      node: n.name,
      pid: z?.pid,
      running: z ? isAlive(z) : state.mode === "no-mesh",
      ready: z ? isReady(z) : state.mode === "no-mesh" && netnsExists(n.netns),
      check: z ? "GET :15021/healthz/ready" : "namespace exists",
      log: z?.log,
    });
  }
  for (const e of state.endpoints) {
    // An external host's key already says "external/".
    const id = e.kind === "external" ? e.key : `${e.kind}/${e.key}`;
    const p = proc(id);
    const pod = e.kind === "pod" ? state.plan.pods.find((x) => `${x.namespace}/${x.name}` === e.key) : undefined;
    const exists = netnsExists(e.netns);
    entries.push({
      id,
      kind: e.kind,
      netns: e.netns,
      netnsExists: exists,
      address: e.ip,
      node: e.node,
      pid: p?.pid,
      running: p ? isAlive(p) : exists && (e.kind === "pod" ? !pod?.command.length : e.kind === "external" || state.mode === "no-mesh"),
      ready: p ? isReady(p) : exists && (e.kind === "pod" ? !pod?.command.length : e.kind === "external" || state.mode === "no-mesh"),
      check: e.kind === "external"
        ? p?.ports?.length ? `running, listening on ${p.ports.join(", ")}` : "namespace exists"
        : e.kind === "pod"
        ? pod?.command.length ? (pod.ports.length ? `running, listening on ${pod.ports.join(", ")}` : "running") : "no command: namespace exists"
        : state.mode === "mesh" ? "GET :15021/healthz/ready" : "namespace exists (--no-mesh: no waypoint runs)",
      log: p?.log,
      command: pod?.command,
    });
  }
  return {
    prefix: state.namePrefix,
    mode: state.mode,
    phase: state.phase,
    stateDir: state.stateDir,
    source: state.source,
    configFile: state.configFile,
    createdAt: state.createdAt,
    healthy: state.phase === "ready" && entries.every((e) => e.ready),
    uiUrl: labUiUrl(state),
    uiTokenFile: ui ? tokenPath(state, "admin") : undefined,
    entries,
  };
}

export function formatStatus(s: LabStatus): string {
  const lines = [
    `lab ${s.prefix}* (${s.mode}), ${s.phase}${s.healthy ? ", healthy" : ", NOT healthy"}, up since ${s.createdAt}`,
    `config ${s.source} (control plane reads ${s.configFile}); state in ${s.stateDir}`,
    ...(s.uiUrl ? [`traffic map ${s.uiUrl} (sign in with the admin token in ${s.uiTokenFile})`] : []),
    "",
  ];
  const rows = [["WHAT", "ADDRESS", "NODE", "PID", "STATE", "NAMESPACE", "LOG"]];
  for (const e of s.entries) {
    const state = !e.netnsExists ? "namespace missing" : e.ready ? "ready" : e.running ? "not ready" : e.pid ? "exited" : "not running";
    rows.push([e.id, e.address ?? "-", e.node ?? "-", e.pid ? String(e.pid) : "-", state, e.netns, e.log ?? "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
  return lines.join("\n") + "\n";
}
