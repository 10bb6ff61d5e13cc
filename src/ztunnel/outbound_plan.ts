/**
 * Where one captured outbound connection goes (docs/design.md "Capture", docs/hbone.md): pure, over the
 * ztunnel's view of the mesh.
 *
 * - A Service VIP resolves to the Service; if a waypoint serves it, the tunnel goes to the waypoint with
 *   the VIP as the target (the waypoint picks the endpoint); otherwise to a ready endpoint (round robin).
 * - A workload address (given, or resolved) served by a waypoint (its own) goes to that waypoint; an
 *   ambient workload gets HBONE to `podIP:15008` with `podIP:targetPort` as the CONNECT target and the
 *   workload's identity as the expected server identity; a workload outside ambient is reached directly.
 * - A ServiceEntry address (its host's VIP, one of its `addresses`, or a STATIC endpoint) goes to the
 *   entry's egress waypoint when it has one (the VIP as the CONNECT target); otherwise straight out: to a
 *   STATIC endpoint (round robin), to the host's DNS addresses (the caller resolves them), or, for
 *   resolution NONE, to the original destination. The port must be one of the entry's ports; the
 *   endpoint's port is its own for that port name, else the port's targetPort, else the port.
 * - An address the mesh does not know is passed through, or refused when MeshConfig's outbound policy is
 *   "deny" (Istio's REGISTRY_ONLY: Services, ServiceEntries and mesh workloads are the registry).
 * The waypoint choice follows policy placement (Service's waypoint, else the workload's), so traffic
 * goes exactly where the destination ztunnel expects it from (it refuses a bypass).
 */
import { formatHostPort } from "../core/mod.ts";
import type { ModelIndex, ReadyEndpoint, RegistryHost } from "../model/mod.ts";
import { readyEndpoints } from "../model/mod.ts";
import type { Service, Waypoint, Workload } from "../model/mod.ts";

/** Ports that must never be a tunnel's target: a tunnel to one would loop back into a ztunnel. */
export const ILLEGAL_TARGET_PORTS = new Set([15001, 15006, 15008]);
export const HBONE_PORT = 15008;

export interface HbonePlan {
  kind: "hbone";
  /** Where the HTTP/2 connection goes. */
  hboneAddress: string;
  hbonePort: number;
  /** The CONNECT target, "ip:port". */
  authority: string;
  /** SPIFFE IDs the server may present. */
  expectedIdentities: string[];
  /** The workload reached (absent when a waypoint picks it). */
  workload?: Workload;
  service?: Service;
  waypoint?: Waypoint;
  /** The destination workload is on this node: serve it in-process instead of looping through the network. */
  sameNode: boolean;
  /** The workload's target port (when the workload is known). */
  targetPort?: number;
  /** The ServiceEntry host, for a connection to an egress waypoint. */
  external?: RegistryHost;
}

/** Straight out to a ServiceEntry destination, as plain TCP from the ztunnel. */
export interface ExternalPlan {
  kind: "external";
  external: RegistryHost;
  /** Where to connect: an address, or a host name to resolve first (resolution DNS). */
  address?: string;
  resolveHost?: string;
  port: number;
}

export interface PassthroughPlan {
  kind: "passthrough";
  address: string;
  port: number;
  workload?: Workload;
  service?: Service;
  reason: string;
}

export interface DenyPlan {
  kind: "deny";
  reason: string;
  workload?: Workload;
  service?: Service;
  external?: RegistryHost;
}

export type OutboundPlan = HbonePlan | PassthroughPlan | DenyPlan | ExternalPlan;

/** Picks endpoints in turn, per Service. */
export class RoundRobin {
  #next = new Map<string, number>();
  pick<T>(key: string, items: T[]): T | undefined {
    if (!items.length) return undefined;
    const i = (this.#next.get(key) ?? 0) % items.length;
    this.#next.set(key, i + 1);
    return items[i];
  }
}

function toWaypoint(
  index: ModelIndex,
  gateway: string,
  authority: string,
  extra: { workload?: Workload; service?: Service; targetPort?: number; external?: RegistryHost },
): OutboundPlan {
  const wp = index.waypointByKey(gateway);
  if (!wp) return { kind: "deny", reason: `waypoint ${gateway} does not exist (fail closed)`, ...extra };
  const addr = wp.addresses[0];
  if (!addr) return { kind: "deny", reason: `waypoint ${gateway} has no address to reach it at`, ...extra };
  return {
    kind: "hbone",
    hboneAddress: addr,
    hbonePort: wp.port || HBONE_PORT,
    authority,
    expectedIdentities: [wp.identity],
    waypoint: wp,
    sameNode: false,
    ...extra,
  };
}

function toWorkload(
  index: ModelIndex,
  node: string,
  w: Workload,
  ip: string,
  port: number,
  service: Service | undefined,
): OutboundPlan {
  // The Service's own waypoint was handled by the caller; here only the workload's can apply.
  if (w.waypoint) return toWaypoint(index, w.waypoint.gateway, formatHostPort(ip, port), { workload: w, service, targetPort: port });
  if (!w.ambient) {
    return { kind: "passthrough", address: ip, port, workload: w, service, reason: "destination workload is not in the mesh" };
  }
  if (ILLEGAL_TARGET_PORTS.has(port)) {
    return { kind: "deny", reason: `port ${port} is a ztunnel port and cannot be a tunnel target`, workload: w, service };
  }
  return {
    kind: "hbone",
    hboneAddress: ip,
    hbonePort: HBONE_PORT,
    authority: formatHostPort(ip, port),
    expectedIdentities: [w.identity],
    workload: w,
    service,
    sameNode: w.node === node,
    targetPort: port,
  };
}

/**
 * Ready endpoints of a Service port, computed once per configuration version: keyed by the index (one per
 * version) as well as the Service, since an unchanged Service may be carried over to a version in which
 * its workloads changed.
 */
const endpointCache = new WeakMap<ModelIndex, WeakMap<Service, Map<number, ReadyEndpoint[]>>>();

function cachedReadyEndpoints(index: ModelIndex, svc: Service, servicePort: number): ReadyEndpoint[] {
  let bySvc = endpointCache.get(index);
  if (!bySvc) endpointCache.set(index, (bySvc = new WeakMap()));
  let byPort = bySvc.get(svc);
  if (!byPort) bySvc.set(svc, (byPort = new Map()));
  let list = byPort.get(servicePort);
  if (list) return list;
  list = readyEndpoints(index, svc, servicePort);
  byPort.set(servicePort, list);
  return list;
}

/**
 * The plan for a connection the client addressed to `dst` (its original destination).
 * `node` is this ztunnel's node; `rr` keeps the round-robin position per Service.
 */
export function planOutbound(
  index: ModelIndex,
  node: string,
  dst: { address: string; port: number },
  rr: RoundRobin,
): OutboundPlan {
  const svc = index.serviceByVip(dst.address);
  if (svc) {
    const sp = svc.ports.find((p) => p.port === dst.port && p.protocol === "TCP");
    if (!sp) return { kind: "deny", reason: `service ${svc.hostname} has no TCP port ${dst.port}`, service: svc };
    if (svc.waypoint) return toWaypoint(index, svc.waypoint.gateway, formatHostPort(dst.address, dst.port), { service: svc });
    const ready = cachedReadyEndpoints(index, svc, dst.port);
    const pick = rr.pick(`${svc.namespace}/${svc.name}:${dst.port}`, ready);
    if (!pick) return { kind: "deny", reason: `service ${svc.hostname} has no ready endpoint for port ${dst.port}`, service: svc };
    return toWorkload(index, node, pick.workload, pick.ip, pick.port, svc);
  }
  const w = index.workloadByAddress(dst.address);
  if (w) return toWorkload(index, node, w, dst.address, dst.port, undefined);
  const external = index.registry.byAddress(dst.address);
  if (external) return toExternal(index, external, dst, rr);
  if (index.model.meshConfig.outboundPolicy === "deny") {
    return { kind: "deny", reason: `${formatHostPort(dst.address, dst.port)} is outside the mesh and MeshConfig outboundPolicy is deny` };
  }
  return { kind: "passthrough", address: dst.address, port: dst.port, reason: "destination is outside the mesh" };
}

function toExternal(index: ModelIndex, at: RegistryHost, dst: { address: string; port: number }, rr: RoundRobin): OutboundPlan {
  const se = at.entry;
  const name = `ServiceEntry ${se.namespace}/${se.name}`;
  const port = se.ports.find((p) => p.number === dst.port);
  if (!port) return { kind: "deny", reason: `${name} (${at.host}) has no port ${dst.port}`, external: at };
  if (se.waypoint) return toWaypoint(index, se.waypoint.gateway, formatHostPort(dst.address, dst.port), { external: at });
  if (ILLEGAL_TARGET_PORTS.has(port.targetPort ?? port.number)) {
    return { kind: "deny", reason: `port ${port.targetPort ?? port.number} is a ztunnel port and cannot be a destination`, external: at };
  }
  const target = port.targetPort ?? port.number;
  switch (se.resolution) {
    case "STATIC": {
      // A client that dialed an endpoint itself gets that endpoint; the VIP is balanced over all of them.
      const ep = se.endpoints.find((e) => e.address === dst.address) ?? rr.pick(`se/${se.namespace}/${se.name}:${port.number}`, se.endpoints);
      if (!ep) return { kind: "deny", reason: `${name} has no endpoint`, external: at };
      return { kind: "external", external: at, address: ep.address, port: (port.name && ep.ports?.[port.name]) || target };
    }
    case "DNS":
      if (at.host.startsWith("*.")) return { kind: "deny", reason: `${name}: the wildcard host ${at.host} cannot be resolved`, external: at };
      return { kind: "external", external: at, resolveHost: at.host, port: target };
    case "NONE":
      return { kind: "external", external: at, address: dst.address, port: target };
  }
}
