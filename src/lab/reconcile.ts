/**
 * From the topology the lab runs to the one a mesh.yaml asks for: `up` reconciles from nothing, `apply`
 * from the running lab. Changed pods and waypoints (another address, node or command) are removed and
 * created again; nodes come and go with their pods.
 */
import { labNames } from "./names.ts";
import { hostsFile, type LabPlan, type LabPod, type LabWaypoint } from "./plan.ts";
import { type LabState, type ProcessRecord, saveState } from "./state.ts";
import {
  isAlive,
  startPod,
  startWaypoint,
  startZtunnel,
  stopRecorded,
  waitReady,
} from "./components.ts";
import { createEndpoint, createNode, removeEndpoint, removeNamespace, writeHosts } from "./topology.ts";
import { labNameserver, reconcileOutsideNetwork, startOutside } from "./outside.ts";

export type Progress = (line: string) => void;

export interface PlanDiff {
  /** ExternalHosts added or changed, and whether the DNS server's names changed (./outside.ts). */
  outside?: Awaited<ReturnType<typeof reconcileOutsideNetwork>>;
  addNodes: string[];
  removeNodes: string[];
  addPods: LabPod[];
  removePods: LabPod[];
  addWaypoints: LabWaypoint[];
  removeWaypoints: LabWaypoint[];
}

const podKey = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;

export function diffPlans(from: LabPlan, to: LabPlan): PlanDiff {
  const changed = <T extends { namespace: string; name: string }>(a: T[], b: T[]) => {
    const before = new Map(a.map((x) => [podKey(x), JSON.stringify(x)]));
    const after = new Map(b.map((x) => [podKey(x), JSON.stringify(x)]));
    return {
      add: b.filter((x) => before.get(podKey(x)) !== after.get(podKey(x))),
      remove: a.filter((x) => after.get(podKey(x)) !== before.get(podKey(x))),
    };
  };
  const pods = changed(from.pods, to.pods);
  const wps = changed(from.waypoints, to.waypoints);
  return {
    addNodes: to.nodes.filter((n) => !from.nodes.includes(n)),
    removeNodes: from.nodes.filter((n) => !to.nodes.includes(n)),
    addPods: pods.add,
    removePods: pods.remove,
    addWaypoints: wps.add,
    removeWaypoints: wps.remove,
  };
}

export function describeDiff(d: PlanDiff): string {
  const parts: string[] = [];
  const list = (verb: string, what: string, xs: string[]) => xs.length && parts.push(`${verb} ${what} ${xs.join(", ")}`);
  list("+", "node", d.addNodes);
  list("-", "node", d.removeNodes);
  list("+", "pod", d.addPods.map(podKey));
  list("-", "pod", d.removePods.map(podKey));
  list("+", "waypoint", d.addWaypoints.map(podKey));
  list("-", "waypoint", d.removeWaypoints.map(podKey));
  return parts.length ? parts.join("; ") : "no topology change";
}

/** Removes what the new plan drops, creates the namespaces and routes it adds, rewrites hosts files. */
export async function reconcileNetwork(state: LabState, plan: LabPlan, progress: Progress): Promise<PlanDiff> {
  const names = labNames(state.prefix);
  const diff = diffPlans(state.plan, plan);
  const t0 = Date.now();
  for (const p of diff.removePods) {
    await stopRecorded(state, `pod/${podKey(p)}`);
    await removeEndpoint(state, podKey(p), "pod");
  }
  for (const w of diff.removeWaypoints) {
    await stopRecorded(state, `waypoint/${podKey(w)}`);
    await removeEndpoint(state, podKey(w), "waypoint");
  }
  for (const n of diff.removeNodes) {
    await stopRecorded(state, `ztunnel/${n}`);
    const rec = state.nodes.find((x) => x.name === n);
    if (rec) await removeNamespace(state, rec.netns);
    state.nodes = state.nodes.filter((x) => x.name !== n);
    // Endpoints behind a removed node went with its links.
    state.endpoints = state.endpoints.filter((e) => e.node !== n);
  }
  state.plan = { ...state.plan, nodes: state.plan.nodes.filter((n) => !diff.removeNodes.includes(n)) };
  saveState(state);

  for (const n of diff.addNodes) createNode(state, n);
  for (const p of diff.addPods) createEndpoint(state, "pod", podKey(p), names.pod(p.namespace, p.name), p.node, p.ip);
  for (const w of diff.addWaypoints) {
    createEndpoint(state, "waypoint", podKey(w), names.waypoint(w.namespace, w.name), w.node, w.ip);
  }
  diff.outside = await reconcileOutsideNetwork(state, plan);
  const nameserver = labNameserver(plan);
  for (const n of state.nodes) writeHosts(state, n.netns, hostsFile(plan, { name: n.name, ip: n.address }), nameserver);
  for (const e of state.endpoints) {
    const [namespace, name] = e.key.split("/") as [string, string];
    writeHosts(state, e.netns, hostsFile(plan, { name, namespace, ip: e.ip }), nameserver);
  }
  const counts = `${plan.nodes.length} node(s), ${plan.pods.length} pod(s)` +
    (plan.waypoints.length ? `, ${plan.waypoints.length} waypoint address(es)` : "");
  progress(`  network    ${counts}: routed through the nodes, no bridge (${describeDiff(diff)}) ${elapsed(t0)}`);
  return diff;
}

/** Starts the ztunnels, waypoints and pod commands the diff adds, and waits until they are ready. */
export async function reconcileProcesses(
  state: LabState,
  plan: LabPlan,
  diff: PlanDiff,
  progress: Progress,
  timeoutMs: number,
): Promise<void> {
  const names = labNames(state.prefix);
  // Outside the cluster first: the DNS server must answer before the ztunnels forward to it.
  if (diff.outside) await startOutside(state, plan, diff.outside, timeoutMs, progress);
  if (state.mode === "mesh") {
    // Restart the ztunnel of any node that lacks a live one (new node, or one that crashed).
    const ztunnels: ProcessRecord[] = [];
    for (const n of plan.nodes) {
      const existing = state.processes.find((p) => p.id === `ztunnel/${n}`);
      if (existing && isAlive(existing)) continue;
      ztunnels.push(startZtunnel(state, n));
    }
    await ready(ztunnels, "ztunnel", timeoutMs, progress, (p) => `${p.id.slice(8)} (--redirect node)`);
    const waypoints = diff.addWaypoints.map((w) => startWaypoint(state, w, names.waypoint(w.namespace, w.name)));
    await ready(waypoints, "waypoint", timeoutMs, progress, (p) => {
      const w = diff.addWaypoints.find((x) => `waypoint/${podKey(x)}` === p.id)!;
      return `${podKey(w)} at ${w.ip}:15008 behind ${w.node}`;
    });
  }
  const pods: ProcessRecord[] = [];
  for (const p of diff.addPods) {
    const rec = startPod(state, p, names.pod(p.namespace, p.name));
    if (rec) pods.push(rec);
    else progress(`  pod        ${podKey(p)} ${p.ip} on ${p.node}: no command (a namespace to exec into)`);
  }
  await ready(pods, "pod", timeoutMs, progress, (r) => {
    const p = diff.addPods.find((x) => `pod/${podKey(x)}` === r.id)!;
    return `${podKey(p)} ${p.ip} on ${p.node}: ${p.command.join(" ")}${p.ports.length ? ` (listening on ${p.ports.join(", ")})` : ""}`;
  });
  state.plan = plan;
  saveState(state);
}

async function ready(
  list: ProcessRecord[],
  label: string,
  timeoutMs: number,
  progress: Progress,
  describe: (p: ProcessRecord) => string,
): Promise<void> {
  await waitReady(list, timeoutMs, (p, ms) => progress(`  ${label.padEnd(10)} ${describe(p)} ready (${(ms / 1000).toFixed(1)} s)`));
}

export function elapsed(t0: number): string {
  return `(${((Date.now() - t0) / 1000).toFixed(1)} s)`;
}
