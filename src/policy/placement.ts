/**
 * Enforcement points (docs/design.md "Decisions the code relies on"): which proxy enforces which policies for a
 * destination workload W, reached directly or through a Service S.
 *
 * - A waypoint serves W or S (S.waypoint first, then W.waypoint, as ztunnel picks them): the WAYPOINT
 *   enforces every policy that applies: targetRefs to S or to its Gateway (or GatewayClass istio-waypoint
 *   from the root namespace), and root/namespace/selector policies that select W. L4 and L7 attributes
 *   alike, against the ORIGINAL client's identity (the waypoint terminates the client's mTLS). This is a
 *   deliberate improvement over Istio, whose waypoints ignore selector policies and whose ztunnel then
 *   sees only the waypoint's identity. The destination ztunnel admits traffic to W only from a waypoint
 *   that serves it (a bypass is refused) and does not evaluate those policies again.
 * - No waypoint: the destination ZTUNNEL enforces the root/namespace/selector policies that select W.
 *   What it cannot enforce fails closed (policyEnforcement in model decides, for `mesh check` too): a
 *   policy with L7 attributes, or a targetRefs policy naming one of W's Services. Every connection to W
 *   is then denied (ALLOW and DENY alike; AUDIT and dry-run are ignored), with a reason naming the policy
 *   and the missing waypoint. Istio instead drops such ALLOW rules and strips such DENY rules, and
 *   ignores targetRefs policies no waypoint serves, which silently changes what the author wrote.
 * - W bound to a waypoint that does not exist or has no address yet: every connection is denied.
 * - W not enrolled in ambient and no waypoint: nothing enforces policy ("none").
 */
import type {
  AuthorizationPolicy,
  ModelIndex,
  RequestAuthentication,
  Service,
  ServiceEntry,
  Waypoint,
  WaypointBinding,
  Workload,
} from "../model/mod.ts";
import {
  authorizationPoliciesFor,
  peerAuthenticationModeFor,
  policyEnforcement,
  requestAuthenticationsFor,
} from "../model/mod.ts";
import { policyL7Attributes } from "./attributes.ts";
import { authorize } from "./evaluate.ts";
import type { AuthzDecision, AuthzRequest } from "./request.ts";
import { policyKey } from "./request.ts";

export type EnforcementPoint = "waypoint" | "ztunnel" | "none";

/** A policy that applies but cannot be enforced where the traffic is: everything to W is denied. */
export interface FailClosed {
  policy: AuthorizationPolicy;
  reason: string;
}

export interface Placement {
  point: EnforcementPoint;
  /** The waypoint that enforces (point "waypoint"). */
  waypoint?: Waypoint;
  /** How that waypoint is bound ("ns/name" and why). */
  binding?: WaypointBinding;
  /** Policies evaluated at `point`. */
  policies: AuthorizationPolicy[];
  /** Policies that cannot be enforced at `point`; when non-empty every connection is denied. */
  failClosed: FailClosed[];
  /** RequestAuthentications the waypoint applies (empty at a ztunnel: it sees no HTTP). */
  requestAuthentications: RequestAuthentication[];
  /** Set when every connection to the destination is denied regardless of the request. */
  denyAll?: string;
  /** One line for describe/explain. */
  summary: string;
}

export interface Destination {
  workload: Workload;
  /** The Service the client addressed, if it addressed one. */
  service?: Service;
}

/** The waypoint that traffic to this destination goes through, if any: the Service's, else the workload's. */
export function waypointBindingFor(dest: Destination): WaypointBinding | undefined {
  return dest.service?.waypoint ?? dest.workload.waypoint;
}

function wname(w: Workload): string {
  return `${w.namespace}/${w.name}`;
}

/**
 * The policies that apply to `w` but that no proxy on an unserved path can enforce (policyEnforcement
 * decides, the same function `mesh check` asks): each denies every connection to `w`.
 */
function unservedFailClosed(policies: AuthorizationPolicy[], w: Workload): FailClosed[] {
  const out: FailClosed[] = [];
  for (const p of policies) {
    const e = policyEnforcement(p, false);
    if (e.at !== "fail-closed") continue;
    const why = e.because === "l7"
      ? `uses ${policyL7Attributes(p).join(", ") || "L7 attributes"}, which only a waypoint can enforce,`
      : `is attached by targetRefs (${
        targetRefsText(p)
      }), which only a waypoint applies,`;
    out.push({
      policy: p,
      reason: `${p.action} policy ${policyKey(p)} ${why} and no waypoint serves ${
        wname(w)
      }: every connection to it is denied (fail closed). Bind a waypoint (istio.io/use-waypoint) or ${
        e.because === "l7" ? "remove the L7 attributes" : "use a selector"
      }.`,
    });
  }
  return out;
}

function targetRefsText(p: AuthorizationPolicy): string {
  if (p.scope.kind !== "targetRefs") return "";
  return p.scope.targetRefs.map((r) => `${r.kind} ${r.namespace || p.namespace}/${r.name}`).join(", ");
}

/** Where and what is enforced for traffic to `dest`. */
export function placement(index: ModelIndex, dest: Destination): Placement {
  const binding = waypointBindingFor(dest);
  if (binding) {
    const waypoint = index.waypointByKey(binding.gateway);
    // A binding nobody can serve denies everything rather than letting traffic around the waypoint.
    const unserved = !waypoint ? "which does not exist" : !waypoint.addresses.length ? "which has no address yet (not ready)" : undefined;
    if (unserved || !waypoint) {
      const denyAll = `${wname(dest.workload)} is bound to waypoint ${binding.gateway} (${binding.via}), ${unserved}: every connection is denied`;
      return { point: "waypoint", ...(waypoint ? { waypoint } : {}), binding, policies: [], failClosed: [], requestAuthentications: [], denyAll, summary: denyAll };
    }
    const target = { workload: dest.workload, service: dest.service, waypoint };
    const policies = authorizationPoliciesFor(index, target);
    return {
      point: "waypoint",
      waypoint,
      binding,
      policies,
      failClosed: [],
      requestAuthentications: requestAuthenticationsFor(index, target),
      summary: `waypoint ${binding.gateway} enforces ${policies.length} polic${
        policies.length === 1 ? "y" : "ies"
      } (L4 and L7) with the client's identity; the ztunnel of ${wname(dest.workload)} admits only that waypoint`,
    };
  }
  const inbound = ztunnelInbound(index, dest.workload);
  const servedBy = [...inbound.waypoints.map((w) => `${w.namespace}/${w.name}`), ...inbound.missingWaypoints];
  if (servedBy.length) {
    // Addressed so that no waypoint is on the path (e.g. the pod IP of a Service with a waypoint): the
    // destination ztunnel admits only the waypoint, so this path is refused.
    const denyAll = `${wname(dest.workload)} is served by waypoint ${
      servedBy.join(", ")
    }, which this traffic does not go through: the ztunnel refuses it (address the Service instead)`;
    return { point: "ztunnel", policies: [], failClosed: [], requestAuthentications: [], denyAll, summary: denyAll };
  }
  const { policies, failClosed } = inbound;
  if (!dest.workload.ambient) {
    return {
      point: "none",
      policies,
      failClosed: [],
      requestAuthentications: [],
      summary: `${
        wname(dest.workload)
      } is not in the mesh (not ambient) and no waypoint serves it: no policy is enforced`,
    };
  }
  return {
    point: "ztunnel",
    policies,
    failClosed,
    requestAuthentications: [],
    denyAll: failClosed.length ? failClosed.map((f) => f.reason).join("; ") : undefined,
    summary: failClosed.length
      ? `the ztunnel of ${wname(dest.workload)} denies every connection: ${
        failClosed.map((f) => policyKey(f.policy)).join(", ")
      } need${failClosed.length === 1 ? "s" : ""} a waypoint`
      : `the ztunnel of ${wname(dest.workload)} enforces ${policies.length} L4 polic${
        policies.length === 1 ? "y" : "ies"
      }`,
  };
}

/** What the destination ztunnel enforces for inbound traffic to `workload`, whatever the client addressed. */
export interface ZtunnelInbound {
  /** Waypoints serving the workload (its own, and its Services'): only they may connect. */
  waypoints: Waypoint[];
  /** Bindings to waypoints that do not exist ("ns/name"). */
  missingWaypoints: string[];
  /** Enforced when no waypoint serves the workload. */
  policies: AuthorizationPolicy[];
  failClosed: FailClosed[];
}

// Per-configuration memo: a ModelIndex is an immutable snapshot, so answers per workload never change.
const inboundMemo = new WeakMap<ModelIndex, Map<string, ZtunnelInbound>>();
const waypointMemo = new WeakMap<ModelIndex, Map<string, AuthorizationPolicy[]>>();

function memo<T>(store: WeakMap<ModelIndex, Map<string, T>>, index: ModelIndex, key: string, make: () => T): T {
  let m = store.get(index);
  if (!m) store.set(index, m = new Map());
  let v = m.get(key);
  if (v === undefined) m.set(key, v = make());
  return v;
}

/** Memoized per index and workload uid (the hot path: one call per inbound connection). */
export function ztunnelInbound(index: ModelIndex, workload: Workload): ZtunnelInbound {
  return memo(inboundMemo, index, workload.uid, () => computeZtunnelInbound(index, workload));
}

function computeZtunnelInbound(index: ModelIndex, workload: Workload): ZtunnelInbound {
  const keys = new Set<string>();
  if (workload.waypoint) keys.add(workload.waypoint.gateway);
  for (const s of index.servicesOfWorkload(workload.uid)) if (s.waypoint) keys.add(s.waypoint.gateway);
  const waypoints: Waypoint[] = [];
  const missingWaypoints: string[] = [];
  for (const k of keys) {
    const w = index.waypointByKey(k);
    if (w) waypoints.push(w);
    else missingWaypoints.push(k);
  }
  if (keys.size) return { waypoints, missingWaypoints, policies: [], failClosed: [] };
  // Policies selecting the workload, and targetRefs policies naming one of its Services: the client may
  // have addressed the workload through any of them, and this ztunnel cannot tell which.
  const applies = new Set(authorizationPoliciesFor(index, { workload }));
  for (const service of index.servicesOfWorkload(workload.uid)) {
    for (const p of authorizationPoliciesFor(index, { workload, service })) applies.add(p);
  }
  const policies = index.model.authorizationPolicies.filter((p) => applies.has(p));
  return { waypoints, missingWaypoints, policies, failClosed: unservedFailClosed(policies, workload) };
}

export interface EnforcedDecision extends AuthzDecision {
  enforcedBy: EnforcementPoint;
  /** "ns/name" of the waypoint that decided, at a waypoint. */
  waypoint?: string;
}

/**
 * Is `ip` one of the waypoint's own addresses (its Gateway's, or in Kubernetes its pods')? Traffic is
 * "from the waypoint" only when its identity is the waypoint's AND it comes from one of these (as
 * ztunnel does, docs/hbone.md §6): an identity alone could be held by someone else.
 */
export function isWaypointAddress(waypoint: Waypoint, ip: string | undefined): boolean {
  if (ip === undefined) return false;
  return waypoint.addresses.includes(ip) || (waypoint.podAddresses?.includes(ip) ?? false);
}

/**
 * The destination ztunnel's decision for one inbound connection to `workload` (L4: `req.http` is ignored).
 * Order: PeerAuthentication STRICT refuses plaintext; a workload served by a waypoint admits only that
 * waypoint (its identity, from one of its addresses: `req.source.peerIp`, else `ip`); otherwise
 * fail-closed policies deny, and the L4 policies decide.
 */
export function authorizeAtZtunnel(index: ModelIndex, workload: Workload, req: AuthzRequest): EnforcedDecision {
  const { peerIp, ...source } = req.source;
  const conn: AuthzRequest = { source, destination: req.destination, sni: req.sni };
  const deny = (reason: string, extra: Partial<AuthzDecision> = {}): EnforcedDecision => ({
    allowed: false,
    reason,
    enforcedBy: "ztunnel",
    ...extra,
  });
  const mode = peerAuthenticationModeFor(index, workload, req.destination.port);
  if (mode === "STRICT" && !req.source.principal) {
    return deny(
      `PeerAuthentication STRICT for ${wname(workload)} port ${req.destination.port}: plaintext connection refused`,
    );
  }
  const inbound = ztunnelInbound(index, workload);
  if (inbound.waypoints.length || inbound.missingWaypoints.length) {
    const claimed = inbound.waypoints.find((w) => w.identity === req.source.principal);
    const at = peerIp ?? req.source.ip;
    const from = claimed && isWaypointAddress(claimed, at) ? claimed : undefined;
    const names = [...inbound.waypoints.map((w) => `${w.namespace}/${w.name}`), ...inbound.missingWaypoints];
    if (claimed && !from) {
      return deny(
        `traffic with the identity of waypoint ${claimed.namespace}/${claimed.name} came from ${
          at ?? "an unknown address"
        }, which is not one of its addresses (${
          [...claimed.addresses, ...(claimed.podAddresses ?? [])].join(", ") || "none known"
        }): not the waypoint, refused (bypass)`,
      );
    }
    if (from) {
      return {
        allowed: true,
        reason: `from waypoint ${from.namespace}/${from.name}, which serves ${
          wname(workload)
        } and enforced its policies`,
        enforcedBy: "ztunnel",
      };
    }
    const missing = inbound.waypoints.length === 0
      ? ` (waypoint ${inbound.missingWaypoints.join(", ")} does not exist)`
      : "";
    return deny(
      `${wname(workload)} is served by waypoint ${names.join(", ")}${missing}; traffic from ${
        req.source.principal ?? "a plaintext peer"
      } did not come through it (bypass refused)`,
    );
  }
  if (inbound.failClosed.length) {
    const f = inbound.failClosed[0];
    return deny(f.reason, { policy: policyKey(f.policy), action: f.policy.action });
  }
  return { ...authorize(inbound.policies, conn), enforcedBy: "ztunnel" };
}

/**
 * A waypoint's decision for one request (or, without `http`, one TCP connection) to `dest`, after it
 * picked the endpoint workload. `req.source.principal` is the original client's identity.
 */
export function authorizeAtWaypoint(
  index: ModelIndex,
  waypoint: Waypoint,
  dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry },
  req: AuthzRequest,
): EnforcedDecision {
  const key = `${waypoint.namespace}/${waypoint.name}|${dest.workload?.uid ?? ""}|${
    dest.service ? `${dest.service.namespace}/${dest.service.name}` : ""
  }|${dest.serviceEntry ? `${dest.serviceEntry.namespace}/${dest.serviceEntry.name}` : ""}`;
  const policies = memo(waypointMemo, index, key, () => authorizationPoliciesFor(index, { ...dest, waypoint }));
  return { ...authorize(policies, req), enforcedBy: "waypoint", waypoint: `${waypoint.namespace}/${waypoint.name}` };
}
