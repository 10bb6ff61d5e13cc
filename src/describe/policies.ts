/**
 * The policies that apply to a workload and where each is enforced, path by path (through each of its
 * Services, or to its own address), with the placement the proxies use (src/policy placement):
 * - a waypoint on the path enforces every policy that applies (L4 and L7, with the client's identity);
 * - without one, the destination ztunnel enforces L4 policies and denies everything when an L7 policy,
 *   or a targetRefs policy naming one of its Services, applies ("denies everything: no waypoint");
 * - a workload outside the mesh with no waypoint: nothing enforces anything.
 */
import type { AuthorizationPolicy, ModelIndex, PolicyScope, RequestAuthentication, Service, Workload } from "../model/mod.ts";
import { authorizationPoliciesFor, requestAuthenticationsFor } from "../model/mod.ts";
import { type Placement, placement, policyKey, policyL7Attributes } from "../policy/mod.ts";
import type { InboundPath, PolicyPlacementRow } from "./types.ts";

/** A path and its placement. */
export interface PlacedPath {
  path: InboundPath;
  placement: Placement;
  service?: Service;
}

function wname(w: Workload): string {
  return `${w.namespace}/${w.name}`;
}

export function servicePortsText(s: Service, w?: Workload): string[] {
  return s.ports.map((p) => {
    const ep = w ? s.endpoints.find((e) => e.workloadUid === w.uid) : undefined;
    const target = ep?.ports[p.port] ?? p.targetPort;
    return `${p.port} -> ${target}${p.name ? ` (${p.name})` : ""}`;
  });
}

export function pathVia(w: Workload, s?: Service): string {
  if (s) return `Service ${s.name}.${s.namespace}${s.vip ? ` (${s.vip})` : ""}`;
  return w.addresses.length ? `${w.kind === "Pod" ? "pod" : "workload"} address ${w.addresses.join(", ")}` : "its address (none known)";
}

export function placePath(index: ModelIndex, w: Workload, s?: Service): PlacedPath {
  const p = placement(index, { workload: w, service: s });
  const deniesAll = p.denyAll !== undefined;
  return {
    service: s,
    placement: p,
    path: {
      via: pathVia(w, s),
      point: p.point,
      waypoint: p.binding?.gateway ?? null,
      deniesAll,
      summary: p.summary,
    },
  };
}

/** Every inbound path to the workload: through each of its Services, then directly. */
export function inboundPaths(index: ModelIndex, w: Workload, services: Service[]): PlacedPath[] {
  return [...services.map((s) => placePath(index, w, s)), placePath(index, w)];
}

export function scopeText(scope: PolicyScope, namespace: string, root: string): string {
  switch (scope.kind) {
    case "root":
      return "mesh-wide (root namespace)";
    case "namespace":
      return namespace === root ? "mesh-wide (root namespace)" : `namespace ${namespace}`;
    case "selector": {
      const sel = Object.entries(scope.matchLabels).map(([k, v]) => `${k}=${v}`).join(",");
      return `selector ${sel || "(empty)"}${namespace === root ? " (every namespace: root)" : ""}`;
    }
    case "targetRefs":
      return `targetRefs ${scope.targetRefs.map((r) => `${r.kind} ${r.namespace || namespace}/${r.name}`).join(", ")}`;
  }
}

function sourceText(s: { file: string; line: number; col: number } | undefined): string | null {
  return s ? `${s.file}:${s.line}:${s.col}` : null;
}

function layerOf(p: AuthorizationPolicy): "L4" | "L7" {
  return p.hasL7 || policyL7Attributes(p).length > 0 ? "L7" : "L4";
}

interface Acc {
  kind: PolicyPlacementRow["kind"];
  policy: AuthorizationPolicy | RequestAuthentication;
  /** where -> the paths ("to Service x", "to its address") it enforces on there */
  enforcedAt: Map<string, string[]>;
  failClosed: boolean;
  enforced: boolean;
  notEnforced: Set<string>;
}

/**
 * Rows for every AuthorizationPolicy and RequestAuthentication that applies to `w` on any of `paths`,
 * (targetRefs policies naming one of its Services included: without a waypoint they fail closed).
 */
export function policyRows(index: ModelIndex, w: Workload, paths: PlacedPath[]): PolicyPlacementRow[] {
  const root = index.model.meshConfig.rootNamespace;
  const acc = new Map<string, Acc>();
  const get = (kind: Acc["kind"], p: AuthorizationPolicy | RequestAuthentication): Acc => {
    const key = `${kind}|${policyKey(p)}`;
    let a = acc.get(key);
    if (!a) acc.set(key, a = { kind, policy: p, enforcedAt: new Map(), failClosed: false, enforced: false, notEnforced: new Set() });
    return a;
  };
  const node = `ztunnel of ${w.node || "(no node)"}`;
  const at = (a: Acc, where: string, on: string) => {
    const list = a.enforcedAt.get(where) ?? [];
    if (!list.includes(on)) list.push(on);
    a.enforcedAt.set(where, list);
  };
  for (const { placement: pl, service, path } of paths) {
    const on = service ? `to Service ${service.name}.${service.namespace}` : "to its address";
    if (pl.point === "waypoint") {
      const where = `waypoint ${pl.binding!.gateway}`;
      for (const p of pl.policies) {
        const a = get("AuthorizationPolicy", p);
        a.enforced = true;
        at(a, where, on);
      }
      for (const r of pl.requestAuthentications) {
        const a = get("RequestAuthentication", r);
        a.enforced = true;
        at(a, where, on);
      }
      if (!pl.waypoint) {
        // Bound to a waypoint that does not exist: every connection is denied before any policy.
        for (const p of authorizationPoliciesFor(index, { workload: w, service })) {
          get("AuthorizationPolicy", p).notEnforced.add(`waypoint ${pl.binding!.gateway} does not exist: every connection ${on} is denied`);
        }
      }
      continue;
    }
    if (path.deniesAll && pl.failClosed.length === 0) continue; // a refused bypass: no policy is evaluated there
    const outside = `${wname(w)} is not in the mesh and no waypoint serves it`;
    if (pl.point === "none") {
      for (const p of pl.policies) get("AuthorizationPolicy", p).notEnforced.add(outside);
    } else {
      const failing = new Set(pl.failClosed.map((f) => policyKey(f.policy)));
      for (const p of pl.policies) {
        const a = get("AuthorizationPolicy", p);
        at(a, node, on);
        if (failing.has(policyKey(p))) a.failClosed = true;
        else a.enforced = true;
      }
    }
    // A ztunnel reads no HTTP: request authentication needs a waypoint.
    for (const r of requestAuthenticationsFor(index, { workload: w })) {
      get("RequestAuthentication", r).notEnforced.add(pl.point === "none" ? outside : `the ztunnel reads no HTTP and no waypoint serves ${wname(w)}`);
    }
  }
  return [...acc.values()].map((a) => row(a, root, paths.length));
}

function row(a: Acc, root: string, pathCount: number): PolicyPlacementRow {
  const p = a.policy;
  const isAuthz = a.kind === "AuthorizationPolicy";
  const ap = p as AuthorizationPolicy;
  let effect: string;
  if (isAuthz && ap.action === "AUDIT") effect = "audit only: never allows or denies";
  else if (isAuthz && ap.dryRun) effect = "dry run: evaluated and logged, not enforced";
  else if (a.failClosed) effect = "denies everything: no waypoint";
  else if (a.enforced) effect = "enforced";
  else effect = `not enforced: ${[...a.notEnforced].join("; ")}`;
  if (a.enforced && a.notEnforced.size && effect === "enforced") effect = `enforced; elsewhere not: ${[...a.notEnforced].join("; ")}`;
  if (a.failClosed && a.enforced) effect = "denies everything where no waypoint is on the path; enforced where one is";
  return {
    kind: a.kind,
    policy: policyKey(p),
    action: isAuthz ? ap.action : null,
    layer: isAuthz ? layerOf(ap) : "L7",
    attachment: scopeText(p.scope, p.namespace, root),
    enforcedAt: [...a.enforcedAt].map(([where, ons]) => (ons.length === pathCount && pathCount > 1 ? `${where} (every path)` : `${where} (traffic ${ons.join(", ")})`)),
    effect,
    source: sourceText(p.source),
  };
}
