/**
 * Policy attachment: which targets a security.istio.io policy's scope selects. Pure; shared by the policy
 * engine (placement, evaluation), the config lint rules and `mesh describe`/`explain`.
 *
 * Istio semantics followed here:
 * - A policy in the root namespace without a selector applies to every workload of the mesh.
 * - A policy without a selector (and without targetRefs) applies to every workload of its namespace.
 * - A selector policy applies to workloads of its namespace whose labels include every matchLabels pair.
 *   In the root namespace, Istio applies a selector policy to matching workloads of EVERY namespace
 *   (pilot fetches selector policies from the workload's namespace and from the root namespace).
 * - targetRefs name a Service (group "") or a Gateway (gateway.networking.k8s.io) and apply only at the
 *   waypoint serving it; they never select a workload directly. A GatewayClass `istio-waypoint` ref in the
 *   root namespace selects every waypoint. A ServiceEntry (group networking.istio.io) is named the same
 *   way, for the egress waypoint that serves it.
 */
import type { ModelIndex } from "./index.ts";
import type {
  AuthorizationPolicy,
  Labels,
  MeshConfig,
  MtlsMode,
  ObjectRef,
  PeerAuthentication,
  PolicyScope,
  RequestAuthentication,
  Service,
  ServiceEntry,
  Waypoint,
  Workload,
} from "./types.ts";

const GATEWAY_GROUP = "gateway.networking.k8s.io";
const NETWORKING_GROUP = "networking.istio.io";

/** True when every pair of `matchLabels` is present in `labels` (an empty selector selects everything). */
export function labelsMatch(matchLabels: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(matchLabels)) {
    if (labels[k] !== v) return false;
  }
  return true;
}

/** Does a policy (root, namespace or selector scope) in `policyNamespace` apply to `workload`? */
export function scopeSelectsWorkload(
  scope: PolicyScope,
  policyNamespace: string,
  workload: Workload,
  meshConfig: MeshConfig,
): boolean {
  const inRoot = policyNamespace === meshConfig.rootNamespace;
  switch (scope.kind) {
    case "root":
      return inRoot || policyNamespace === workload.namespace;
    case "namespace":
      return inRoot || policyNamespace === workload.namespace;
    case "selector":
      if (!inRoot && policyNamespace !== workload.namespace) return false;
      return labelsMatch(scope.matchLabels, workload.labels);
    case "targetRefs":
      return false;
  }
}

function refNamespace(ref: ObjectRef, policyNamespace: string): string {
  return ref.namespace || policyNamespace;
}

/** A policy or route target: a Service, a ServiceEntry or a waypoint. */
export interface RefTarget {
  service?: Service;
  serviceEntry?: ServiceEntry;
  waypoint?: Waypoint;
}

/** Does this ObjectRef name the given Service, ServiceEntry or waypoint Gateway? */
export function refSelects(
  ref: ObjectRef,
  policyNamespace: string,
  target: RefTarget,
  rootNamespace?: string,
): boolean {
  const ns = refNamespace(ref, policyNamespace);
  const group = ref.group ?? "";
  if (target.serviceEntry && ref.kind === "ServiceEntry" && group === NETWORKING_GROUP) {
    if (ref.name === target.serviceEntry.name && ns === target.serviceEntry.namespace) return true;
  }
  if (target.service && ref.kind === "Service" && group === "") {
    if (ref.name === target.service.name && ns === target.service.namespace) return true;
  }
  if (target.waypoint && group === GATEWAY_GROUP) {
    if (ref.kind === "Gateway" && ref.name === target.waypoint.name && ns === target.waypoint.namespace) {
      return true;
    }
    if (
      ref.kind === "GatewayClass" && ref.name === "istio-waypoint" && rootNamespace !== undefined &&
      policyNamespace === rootNamespace
    ) return true;
  }
  return false;
}

/**
 * Does a targetRefs policy select the Service or the waypoint (Gateway)? Non-targetRefs scopes select
 * neither (they select workloads: see scopeSelectsWorkload).
 */
export function targetRefsSelect(
  scope: PolicyScope,
  policyNamespace: string,
  target: RefTarget,
  rootNamespace?: string,
): boolean {
  if (scope.kind !== "targetRefs") return false;
  return scope.targetRefs.some((r) => refSelects(r, policyNamespace, target, rootNamespace));
}

/** A destination as policy attachment sees it: the workload reached, the Service used, the waypoint on the path. */
export interface PolicyDestination {
  workload?: Workload;
  service?: Service;
  /** An external host reached through an egress waypoint. */
  serviceEntry?: ServiceEntry;
  waypoint?: Waypoint;
}

function attached<T extends { namespace: string; scope: PolicyScope }>(
  list: T[],
  index: ModelIndex,
  dest: PolicyDestination,
): T[] {
  const mc = index.model.meshConfig;
  return list.filter((p) =>
    (dest.workload !== undefined && scopeSelectsWorkload(p.scope, p.namespace, dest.workload, mc)) ||
    targetRefsSelect(p.scope, p.namespace, { service: dest.service, serviceEntry: dest.serviceEntry, waypoint: dest.waypoint }, mc.rootNamespace)
  );
}

/**
 * Every AuthorizationPolicy that applies to the destination: root/namespace/selector policies selecting
 * `dest.workload`, plus targetRefs policies naming `dest.service` or `dest.waypoint`. Order: as in the model.
 */
export function authorizationPoliciesFor(index: ModelIndex, dest: PolicyDestination): AuthorizationPolicy[] {
  return attached(index.model.authorizationPolicies, index, dest);
}

/** Every RequestAuthentication that applies to the destination (same attachment rules). */
export function requestAuthenticationsFor(index: ModelIndex, dest: PolicyDestination): RequestAuthentication[] {
  return attached(index.model.requestAuthentications, index, dest);
}

/**
 * The effective mTLS mode for inbound traffic to `workload` on `port` (the workload's own port), with
 * Istio's precedence: a selector policy matching the workload > its namespace's policy > the root
 * namespace's (mesh-wide) policy. UNSET inherits from the next level; portLevelMtls (selector policies
 * only, as in Istio) overrides the mode for that port. When several policies tie at one level, the first
 * in the model wins (Istio picks the oldest; the model keeps file order). Default: PERMISSIVE.
 */
export function peerAuthenticationModeFor(index: ModelIndex, workload: Workload, port?: number): MtlsMode {
  const chain = peerAuthenticationChain(index, workload);
  let mode: MtlsMode = "PERMISSIVE";
  // Walk from the widest scope to the narrowest so narrower levels override.
  for (const pa of [chain.root, chain.namespace, chain.workload]) {
    if (!pa) continue;
    if (pa.mode !== "UNSET") mode = pa.mode;
  }
  const wl = chain.workload;
  if (wl && port !== undefined && wl.portLevelMtls) {
    const pm = wl.portLevelMtls[port];
    if (pm !== undefined && pm !== "UNSET") mode = pm;
  }
  return mode;
}

/** The PeerAuthentications that decide `workload`'s mode, one per level (for describe/explain). */
export function peerAuthenticationChain(
  index: ModelIndex,
  workload: Workload,
): { workload?: PeerAuthentication; namespace?: PeerAuthentication; root?: PeerAuthentication } {
  const mc = index.model.meshConfig;
  const out: { workload?: PeerAuthentication; namespace?: PeerAuthentication; root?: PeerAuthentication } = {};
  for (const pa of index.model.peerAuthentications) {
    const inRoot = pa.namespace === mc.rootNamespace;
    if (pa.scope.kind === "selector") {
      if (!scopeSelectsWorkload(pa.scope, pa.namespace, workload, mc)) continue;
      // A selector policy in the workload's own namespace beats a root-namespace one.
      if (!out.workload || (out.workload.namespace !== workload.namespace && pa.namespace === workload.namespace)) {
        out.workload = pa;
      }
    } else if (pa.scope.kind === "root" || pa.scope.kind === "namespace") {
      if (pa.namespace === workload.namespace && !inRoot) {
        if (!out.namespace) out.namespace = pa;
      } else if (inRoot) {
        // A root-namespace policy is mesh-wide; for workloads of the root namespace it is also their namespace policy.
        if (!out.root) out.root = pa;
      }
    }
  }
  return out;
}
