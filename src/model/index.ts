/**
 * Lookups over a MeshModel, built once per configuration version. Pure.
 *
 * An address names one workload. When several claim it (an error `mesh check` reports as
 * duplicate-address, which a live cluster can still produce), a Pod wins over a WorkloadEntry, and among
 * equals the FIRST in the model keeps it: an object added later cannot take over an address, so a
 * WorkloadEntry written with a pod's IP neither turns that pod away at its own ztunnel nor makes a
 * `forwarded for=` naming that IP believable for the entry's identity. (The Kubernetes source also drops
 * such WorkloadEntries, with a diagnostic.)
 */
import { buildRegistry, type Registry } from "./registry.ts";
import type { MeshModel, Namespace, Service, Waypoint, Workload } from "./types.ts";

export interface ModelIndex {
  readonly model: MeshModel;
  workloadByUid(uid: string): Workload | undefined;
  /** The workload that owns `ip`: a Pod before a WorkloadEntry, else the first in the model. */
  workloadByAddress(ip: string): Workload | undefined;
  serviceByVip(ip: string): Service | undefined;
  serviceByName(namespace: string, name: string): Service | undefined;
  /** "name.namespace", "name.namespace.svc", "name.namespace.svc.cluster.local" */
  serviceByHost(host: string): Service | undefined;
  namespace(name: string): Namespace | undefined;
  waypoint(namespace: string, name: string): Waypoint | undefined;
  /** "ns/name" */
  waypointByKey(key: string): Waypoint | undefined;
  waypointByAddress(ip: string): Waypoint | undefined;
  workloadsOnNode(node: string): Workload[];
  servicesOfWorkload(uid: string): Service[];
  /** ServiceEntry hosts, addresses and DestinationRules (./registry.ts). */
  readonly registry: Registry;
}

export function indexModel(model: MeshModel): ModelIndex {
  const byUid = new Map<string, Workload>();
  const byAddr = new Map<string, Workload>();
  const byNode = new Map<string, Workload[]>();
  for (const w of model.workloads) {
    byUid.set(w.uid, w);
    for (const a of w.addresses) {
      const prev = byAddr.get(a);
      if (!prev || (prev.kind === "WorkloadEntry" && w.kind === "Pod")) byAddr.set(a, w);
    }
    const list = byNode.get(w.node) ?? [];
    list.push(w);
    byNode.set(w.node, list);
  }
  const byVip = new Map<string, Service>();
  const byName = new Map<string, Service>();
  const svcOfWl = new Map<string, Service[]>();
  for (const s of model.services) {
    if (s.vip) byVip.set(s.vip, s);
    byName.set(`${s.namespace}/${s.name}`, s);
    for (const e of s.endpoints) {
      const list = svcOfWl.get(e.workloadUid) ?? [];
      list.push(s);
      svcOfWl.set(e.workloadUid, list);
    }
  }
  const ns = new Map(model.namespaces.map((n) => [n.name, n]));
  const wps = new Map(model.waypoints.map((w) => [`${w.namespace}/${w.name}`, w]));
  const wpByAddr = new Map<string, Waypoint>();
  for (const w of model.waypoints) for (const a of w.addresses) wpByAddr.set(a, w);
  return {
    model,
    workloadByUid: (uid) => byUid.get(uid),
    workloadByAddress: (ip) => byAddr.get(ip),
    serviceByVip: (ip) => byVip.get(ip),
    serviceByName: (namespace, name) => byName.get(`${namespace}/${name}`),
    serviceByHost: (host) => {
      const h = host.replace(/:\d+$/, "").toLowerCase();
      const parts = h.split(".");
      if (parts.length < 2) return undefined;
      const rest = parts.slice(2).join(".");
      if (rest !== "" && rest !== "svc" && !rest.startsWith("svc.")) return undefined;
      return byName.get(`${parts[1]}/${parts[0]}`);
    },
    namespace: (name) => ns.get(name),
    waypoint: (namespace, name) => wps.get(`${namespace}/${name}`),
    waypointByKey: (key) => wps.get(key),
    waypointByAddress: (ip) => wpByAddr.get(ip),
    workloadsOnNode: (node) => byNode.get(node) ?? [],
    servicesOfWorkload: (uid) => svcOfWl.get(uid) ?? [],
    registry: buildRegistry(model),
  };
}
