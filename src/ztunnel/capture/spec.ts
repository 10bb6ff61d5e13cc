/**
 * Which workloads this ztunnel captures, from its view of the mesh: the workloads scheduled on its node
 * (Pod spec.nodeName, or the WorkloadEntry's node) whose namespace is enrolled in ambient mode.
 */
import type { ModelIndex } from "../../model/mod.ts";
import type { Workload } from "../../model/mod.ts";
import type { CapturedWorkload, CapturePorts, CaptureSpec } from "./rules.ts";

/** The workloads this node's ztunnel owns and captures. */
export function capturedWorkloads(index: ModelIndex, node: string): Workload[] {
  return index.workloadsOnNode(node).filter((w) => w.ambient);
}

/** A workload's ports as inbound capture sees them: declared ports plus every Service target port it serves. */
export function workloadPorts(index: ModelIndex, w: Workload): number[] {
  const ports = new Set(w.ports.map((p) => p.port));
  for (const svc of index.servicesOfWorkload(w.uid)) {
    for (const e of svc.endpoints) {
      if (e.workloadUid !== w.uid) continue;
      for (const p of Object.values(e.ports)) ports.add(p);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

export interface CaptureChoice {
  mode: "node" | "host";
  ports: CapturePorts;
  exemptGid: number;
  exemptUid?: number;
}

export function captureSpecFor(index: ModelIndex, node: string, choice: CaptureChoice): CaptureSpec {
  const dns = choice.mode === "node" && choice.ports.dns !== undefined;
  const workloads: CapturedWorkload[] = capturedWorkloads(index, node).flatMap((w) =>
    w.addresses.map((address) => {
      const c: CapturedWorkload = { address, ports: choice.mode === "host" ? workloadPorts(index, w) : [] };
      if (dns && w.dnsCapture !== false) c.dns = true;
      return c;
    })
  );
  if (choice.mode === "node") return { mode: "node", ports: choice.ports, workloads };
  return { mode: "host", ports: choice.ports, workloads, exemptGid: choice.exemptGid, exemptUid: choice.exemptUid };
}
