/**
 * backendRefs: validity and weighted choice. Per the Gateway API spec, a backendRef is invalid when its
 * kind is not supported, its Service does not exist, or it crosses namespaces without a ReferenceGrant;
 * the share of traffic that would have gone to an invalid backend gets HTTP 500 (the others still work).
 */
import type { BackendRef, ReferenceGrant, Service } from "../model/mod.ts";
import type { BackendTarget } from "./types.ts";

const GATEWAY_GROUP = "gateway.networking.k8s.io";

/** Does a ReferenceGrant let an HTTPRoute in `fromNamespace` refer to Service `name` in `toNamespace`? */
export function referencePermitted(
  grants: ReferenceGrant[],
  fromNamespace: string,
  toNamespace: string,
  name: string,
): boolean {
  if (fromNamespace === toNamespace) return true;
  return grants.some((g) =>
    g.namespace === toNamespace &&
    g.from.some((f) => f.group === GATEWAY_GROUP && f.kind === "HTTPRoute" && f.namespace === fromNamespace) &&
    g.to.some((t) => (t.group === "" || t.group === "core") && t.kind === "Service" && (t.name ?? name) === name)
  );
}

/** A backendRef resolved to a Service port, or the reason it cannot be used. */
export type ResolvedBackend = { ok: true; target: BackendTarget; service: Service } | { ok: false; reason: string };

/**
 * Resolves a backendRef (or a mirror's backendRef) of a route in `routeNamespace`. `parent` is the Service
 * the route is attached to: a consumer route (GAMMA) may send to its parent Service in the producer's
 * namespace without a ReferenceGrant, as the mesh conformance test MeshConsumerRoute expects.
 */
export function resolveBackend(
  ref: BackendRef,
  routeNamespace: string,
  services: (namespace: string, name: string) => Service | undefined,
  grants: ReferenceGrant[],
  parent?: { namespace: string; name: string },
): ResolvedBackend {
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Service";
  const namespace = ref.namespace ?? routeNamespace;
  const label = `${namespace}/${ref.name}`;
  if ((group !== "" && group !== "core") || kind !== "Service") {
    return { ok: false, reason: `backendRef ${label} has unsupported kind "${kind}" in group "${group}" (InvalidKind)` };
  }
  const toParent = parent !== undefined && parent.namespace === namespace && parent.name === ref.name;
  if (!toParent && !referencePermitted(grants, routeNamespace, namespace, ref.name)) {
    return {
      ok: false,
      reason: `backendRef ${label} crosses namespaces without a ReferenceGrant in "${namespace}" (RefNotPermitted)`,
    };
  }
  const service = services(namespace, ref.name);
  if (!service) return { ok: false, reason: `backend Service ${label} does not exist (BackendNotFound)` };
  if (ref.port === undefined) return { ok: false, reason: `backendRef ${label} has no port` };
  if (service.ports.length > 0 && !service.ports.some((p) => p.port === ref.port)) {
    return { ok: false, reason: `backend Service ${label} has no port ${ref.port}` };
  }
  return { ok: true, target: { namespace, name: ref.name, port: ref.port }, service };
}

/**
 * Index of the backendRef chosen by weight (default 1; weight 0 is never chosen), or -1 when no weight
 * is positive. `random` returns [0, 1). Draws once, and only when there is a real choice.
 */
export function pickWeighted(refs: { weight?: number }[], random: () => number): number {
  let total = 0;
  let only = -1;
  let positive = 0;
  refs.forEach((r, i) => {
    const w = r.weight ?? 1;
    if (w > 0) {
      total += w;
      positive++;
      only = i;
    }
  });
  if (positive <= 1) return only;
  let x = random() * total;
  for (let i = 0; i < refs.length; i++) {
    const w = refs[i]!.weight ?? 1;
    if (w <= 0) continue;
    if (x < w) return i;
    x -= w;
  }
  return only; // random() returned 1 or rounding left a remainder: the last positive one
}
