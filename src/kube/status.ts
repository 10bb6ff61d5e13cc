/**
 * Status the control role writes, as Istio does. Pure: computes conditions; ./controller.ts writes them.
 *
 * Gateway (class istio-waypoint): Accepted; Programmed once its Deployment has a ready replica and its
 * Service an address; status.addresses = the Service's ClusterIP (where ztunnels send HBONE to it); one
 * listener status per listener.
 *
 * AuthorizationPolicy: with targetRefs, WaypointAccepted is True ("bound to NS/WAYPOINT") when every target
 * resolves to a waypoint, else False (TargetNotFound, or AncestorNotBound for a Service no waypoint serves).
 * Without targetRefs (selector, namespace or mesh-wide), ZtunnelAccepted is True for L4 rules and False
 * (UnsupportedValue) when the rules use HTTP attributes, which the ztunnel cannot check: there the policy
 * is enforced by the destination's waypoint, and without one it denies (fail closed).
 */
import { l7Attributes } from "../config/mod.ts";
import type { AuthorizationPolicy, MeshModel } from "../model/mod.ts";
import type { KubeObject } from "./client.ts";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** Our conditions merged into the existing list: others' conditions kept, lastTransitionTime kept when the status did not change. */
export function mergeConditions(existing: readonly Condition[] | undefined, ours: readonly Condition[], now: string): Condition[] {
  const out: Condition[] = (existing ?? []).filter((c) => !ours.some((o) => o.type === c.type));
  for (const c of ours) {
    const prev = existing?.find((e) => e.type === c.type);
    out.push({ ...c, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now });
  }
  return out;
}

/** Do two condition lists say the same thing (ignoring transition times and order)? */
export function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const norm = (l: readonly Condition[] | undefined) =>
    JSON.stringify((l ?? []).map(({ lastTransitionTime: _t, ...c }) => c).sort((x, y) => x.type.localeCompare(y.type)));
  return norm(a) === norm(b);
}

export interface GatewayStatusInput {
  gateway: KubeObject;
  service?: KubeObject;
  deployment?: KubeObject;
  /** Why the objects could not be made (e.g. a same-named Service that is not ours). */
  problem?: string;
}

export interface GatewayStatus {
  addresses: { type: "IPAddress"; value: string }[];
  conditions: Condition[];
  listeners: { name: string; attachedRoutes: number; supportedKinds: { group?: string; kind: string }[]; conditions: Condition[] }[];
}

export function gatewayStatus(i: GatewayStatusInput): GatewayStatus {
  const gen = i.gateway.metadata.generation;
  const svcSpec = (i.service?.spec ?? {}) as { clusterIP?: string; clusterIPs?: string[] };
  const ips = (svcSpec.clusterIPs?.length ? svcSpec.clusterIPs : svcSpec.clusterIP ? [svcSpec.clusterIP] : []).filter((ip) => ip && ip !== "None");
  const ready = ((i.deployment?.status ?? {}) as { readyReplicas?: number }).readyReplicas ?? 0;
  let programmed: Condition;
  if (i.problem) programmed = { type: "Programmed", status: "False", reason: "Invalid", message: i.problem };
  else if (!ips.length) programmed = { type: "Programmed", status: "False", reason: "AddressNotAssigned", message: "The waypoint's Service has no ClusterIP yet" };
  else if (ready < 1) programmed = { type: "Programmed", status: "False", reason: "Pending", message: "The waypoint's Deployment has no ready replica yet" };
  else programmed = { type: "Programmed", status: "True", reason: "Programmed", message: `Resource programmed, assigned to service(s) ${i.gateway.metadata.name}.${i.gateway.metadata.namespace}.svc.cluster.local:15008` };
  const accepted: Condition = { type: "Accepted", status: "True", reason: "Accepted", message: "Resource accepted" };
  const withGen = (c: Condition): Condition => (gen !== undefined ? { ...c, observedGeneration: gen } : c);
  const listeners = ((i.gateway.spec as { listeners?: { name: string; protocol?: string }[] } | undefined)?.listeners ?? []).map((l) => ({
    name: l.name,
    attachedRoutes: 0,
    supportedKinds: [],
    conditions: [
      withGen({ type: "Accepted", status: "True", reason: "Accepted", message: "No errors found" }),
      withGen({ type: "Programmed", status: programmed.status, reason: programmed.status === "True" ? "Programmed" : "Pending", message: programmed.status === "True" ? "No errors found" : programmed.message }),
      withGen({ type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "No errors found" }),
    ],
  }));
  return { addresses: ips.map((value) => ({ type: "IPAddress", value })), conditions: [withGen(accepted), withGen(programmed)], listeners };
}

/** The conditions of one AuthorizationPolicy under the model being served. */
export function policyConditions(p: AuthorizationPolicy, model: MeshModel, generation?: number): Condition[] {
  const withGen = (c: Condition): Condition => (generation !== undefined ? { ...c, observedGeneration: generation } : c);
  if (p.scope.kind === "targetRefs") {
    const bound: string[] = [];
    for (const ref of p.scope.targetRefs) {
      const ns = ref.namespace || p.namespace;
      if (ref.kind === "Gateway") {
        const wp = model.waypoints.find((w) => w.name === ref.name && w.namespace === ns);
        if (!wp) return [withGen({ type: "WaypointAccepted", status: "False", reason: "TargetNotFound", message: `not bound: Gateway ${ns}/${ref.name} is not a waypoint (gatewayClassName istio-waypoint) of this mesh` })];
        bound.push(`${ns}/${ref.name}`);
      } else if (ref.kind === "GatewayClass") {
        if (ref.name !== "istio-waypoint" || p.namespace !== model.meshConfig.rootNamespace) {
          return [withGen({ type: "WaypointAccepted", status: "False", reason: "Invalid", message: `not bound: a GatewayClass target must be istio-waypoint, from the root namespace ${model.meshConfig.rootNamespace}` })];
        }
        bound.push(...model.waypoints.map((w) => `${w.namespace}/${w.name}`));
      } else if (ref.kind === "Service") {
        const svc = model.services.find((s) => s.name === ref.name && s.namespace === ns);
        if (!svc) return [withGen({ type: "WaypointAccepted", status: "False", reason: "TargetNotFound", message: `not bound: Service ${ns}/${ref.name} not found` })];
        if (!svc.waypoint) {
          return [withGen({ type: "WaypointAccepted", status: "False", reason: "AncestorNotBound", message: `not bound: Service ${ns}/${ref.name} is not served by a waypoint (label it, or its namespace, istio.io/use-waypoint=<gateway>)` })];
        }
        bound.push(svc.waypoint.gateway);
      } else {
        return [withGen({ type: "WaypointAccepted", status: "False", reason: "Invalid", message: `not bound: targetRefs of kind ${ref.kind} are not supported` })];
      }
    }
    const uniq = [...new Set(bound)].sort();
    return [withGen({ type: "WaypointAccepted", status: "True", reason: "Accepted", message: uniq.length ? `bound to ${uniq.join(", ")}` : "bound to no waypoint yet" })];
  }
  if (!p.hasL7) return [withGen({ type: "ZtunnelAccepted", status: "True", reason: "Accepted", message: "attached to ztunnel" })];
  const attrs = [...new Set(l7Attributes(p.rules).map((a) => a.name))].sort();
  return [withGen({
    type: "ZtunnelAccepted",
    status: "False",
    reason: "UnsupportedValue",
    message: `ztunnel does not support HTTP attributes (found: ${attrs.join(", ")}): the waypoint serving each destination enforces them; destinations without a waypoint refuse the connections this policy would allow`,
  })];
}
