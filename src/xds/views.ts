/**
 * What each proxy needs from a configuration version (pure).
 *
 * Every proxy gets the mesh-wide collections (namespaces, service accounts, workloads, services,
 * waypoints, reference grants): a ztunnel resolves any outbound destination and labels telemetry with the source workload,
 * and a waypoint forwards to any backendRef of its routes. The policy collections are placed:
 * - a ztunnel gets the AuthorizationPolicies and PeerAuthentications that select a workload on its node
 *   (it enforces L4 rules, and fails closed on L7 rules, only for destinations it owns);
 * - a waypoint gets the AuthorizationPolicies and RequestAuthentications whose targetRefs name it or a
 *   Service it serves, or whose scope selects a workload it serves (L7 rules are enforced there whether
 *   the policy uses a selector or targetRefs), and the HTTPRoutes whose parentRefs name such a Service or
 *   its Gateway, and those naming a ServiceEntry it serves as egress waypoint.
 */
import {
  type MeshModel,
  type PolicyScope,
  refSelects,
  scopeSelectsWorkload,
  type Service,
  targetRefsSelect,
  type Waypoint,
  type Workload,
} from "../model/mod.ts";
import { type Collection, type ProxyId, proxyKey, resourceKey } from "./protocol.ts";

/** Sent whole to every proxy. */
export const GLOBAL_COLLECTIONS = [
  "namespaces",
  "serviceAccounts",
  "workloads",
  "services",
  "waypoints",
  "referenceGrants",
  "serviceEntries",
  "destinationRules",
] as const;
/** Filtered per proxy. */
export const PLACED_COLLECTIONS = [
  "authorizationPolicies",
  "requestAuthentications",
  "peerAuthentications",
  "httpRoutes",
] as const;
export type PlacedCollection = (typeof PLACED_COLLECTIONS)[number];

/** The keys of placed resources one proxy gets. */
export type Placement = { [C in PlacedCollection]: Set<string> };

export function emptyPlacement(): Placement {
  return {
    authorizationPolicies: new Set(),
    requestAuthentications: new Set(),
    peerAuthentications: new Set(),
    httpRoutes: new Set(),
  };
}

/** Placement for every ztunnel node and every waypoint of a model, keyed by proxyKey(). */
export function placeAll(model: MeshModel): Map<string, Placement> {
  const out = new Map<string, Placement>();
  const forKey = (k: string) => {
    let p = out.get(k);
    if (!p) out.set(k, (p = emptyPlacement()));
    return p;
  };
  const root = model.meshConfig.rootNamespace;
  const byNamespace = new Map<string, Workload[]>();
  for (const w of model.workloads) {
    let l = byNamespace.get(w.namespace);
    if (!l) byNamespace.set(w.namespace, (l = []));
    l.push(w);
  }
  // Workloads a policy can select: its namespace's, or every namespace's from the root namespace.
  const candidates = (ns: string) => (ns === root ? model.workloads : byNamespace.get(ns) ?? []);
  const selected = (scope: PolicyScope, ns: string): Workload[] =>
    scope.kind === "targetRefs" ? [] : candidates(ns).filter((w) => scopeSelectsWorkload(scope, ns, w, model.meshConfig));

  for (const node of new Set(model.workloads.map((w) => w.node))) forKey(proxyKey({ kind: "ztunnel", node }));
  for (const p of model.authorizationPolicies) {
    const k = resourceKey("authorizationPolicies", p);
    for (const w of selected(p.scope, p.namespace)) forKey(proxyKey({ kind: "ztunnel", node: w.node })).authorizationPolicies.add(k);
  }
  for (const p of model.peerAuthentications) {
    const k = resourceKey("peerAuthentications", p);
    for (const w of selected(p.scope, p.namespace)) forKey(proxyKey({ kind: "ztunnel", node: w.node })).peerAuthentications.add(k);
  }

  if (!model.waypoints.length) return out;
  const byUid = new Map(model.workloads.map((w) => [w.uid, w]));
  for (const wp of model.waypoints) {
    const gw = `${wp.namespace}/${wp.name}`;
    const placement = forKey(proxyKey({ kind: "waypoint", namespace: wp.namespace, name: wp.name }));
    const services = model.services.filter((s) => s.waypoint?.gateway === gw);
    const entries = (model.serviceEntries ?? []).filter((s) => s.waypoint?.gateway === gw);
    const served = new Set<Workload>(model.workloads.filter((w) => w.waypoint?.gateway === gw));
    for (const s of services) {
      for (const e of s.endpoints) {
        const w = byUid.get(e.workloadUid);
        if (w) served.add(w);
      }
    }
    const applies = (scope: PolicyScope, ns: string) =>
      scope.kind === "targetRefs"
        ? targetsWaypoint(scope, ns, wp, services, root) ||
          entries.some((se) => targetRefsSelect(scope, ns, { serviceEntry: se }, root))
        : [...served].some((w) => scopeSelectsWorkload(scope, ns, w, model.meshConfig));
    for (const p of model.authorizationPolicies) {
      if (applies(p.scope, p.namespace)) placement.authorizationPolicies.add(resourceKey("authorizationPolicies", p));
    }
    for (const p of model.requestAuthentications) {
      if (applies(p.scope, p.namespace)) placement.requestAuthentications.add(resourceKey("requestAuthentications", p));
    }
    for (const r of model.httpRoutes) {
      const attached = r.parentRefs.some((ref) =>
        refSelects(ref, r.namespace, { waypoint: wp }, root) ||
        services.some((s) => refSelects(ref, r.namespace, { service: s }, root)) ||
        entries.some((se) => refSelects(ref, r.namespace, { serviceEntry: se }, root))
      );
      if (attached) placement.httpRoutes.add(resourceKey("httpRoutes", r));
    }
  }
  return out;
}

function targetsWaypoint(scope: PolicyScope, ns: string, wp: Waypoint, services: Service[], root: string): boolean {
  if (targetRefsSelect(scope, ns, { waypoint: wp }, root)) return true;
  return services.some((s) => targetRefsSelect(scope, ns, { service: s }, root));
}

/** The model one proxy receives (what the client library rebuilds from snapshots and deltas). */
export function viewOf(model: MeshModel, proxy: ProxyId): MeshModel {
  const placement = placeAll(model).get(proxyKey(proxy)) ?? emptyPlacement();
  const pick = <C extends PlacedCollection>(c: C) =>
    (model[c] as { name: string; namespace: string }[]).filter((r) => placement[c].has(resourceKey(c as Collection, r)));
  return {
    ...model,
    authorizationPolicies: pick("authorizationPolicies") as MeshModel["authorizationPolicies"],
    requestAuthentications: pick("requestAuthentications") as MeshModel["requestAuthentications"],
    peerAuthentications: pick("peerAuthentications") as MeshModel["peerAuthentications"],
    httpRoutes: pick("httpRoutes") as MeshModel["httpRoutes"],
  };
}
