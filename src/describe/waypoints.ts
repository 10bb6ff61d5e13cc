/**
 * Which waypoint serves a workload or a Service, through which label, and why a label did not bind.
 *
 * The labels followed (as src/config binds them): istio.io/use-waypoint on the workload or the Service
 * wins over the namespace's; "none" opts out; istio.io/use-waypoint-namespace names the Gateway's
 * namespace; a Gateway binds only traffic it is for (istio.io/waypoint-for: service, workload, all, none).
 */
import type { Labels, ModelIndex, Service, Waypoint, WaypointBinding, Workload } from "../model/mod.ts";
import type { LiveFacts } from "./live.ts";
import { proxyById } from "./facts.ts";
import type { WaypointRef } from "./types.ts";

const USE = "istio.io/use-waypoint";
const USE_NS = "istio.io/use-waypoint-namespace";

function accepts(w: Waypoint, target: "service" | "workload"): boolean {
  return w.waypointFor === "all" || w.waypointFor === target;
}

const VIA: Record<WaypointBinding["via"], string> = {
  "namespace-label": "istio.io/use-waypoint on namespace",
  "service-label": "istio.io/use-waypoint on Service",
  "pod-label": "istio.io/use-waypoint on Pod",
  "workloadentry-label": "istio.io/use-waypoint on WorkloadEntry",
  "serviceentry-label": "istio.io/use-waypoint on ServiceEntry",
};

export function waypointRef(
  index: ModelIndex,
  binding: WaypointBinding,
  on: { namespace: string; name: string },
  servesFor: string,
  live: LiveFacts | undefined,
): WaypointRef {
  const w = index.waypointByKey(binding.gateway);
  const via = binding.via === "namespace-label" ? `${VIA[binding.via]} ${on.namespace}` : `${VIA[binding.via]} ${on.namespace}/${on.name}`;
  let connected: boolean | null = null;
  let state = w ? `listens on ${w.addresses.length ? w.addresses.map((a) => `${a}:${w.port}`).join(", ") : `*:${w.port}`}` : "MISSING: no such istio-waypoint Gateway";
  if (live?.proxies && w) {
    const p = proxyById(live, `waypoint/${binding.gateway}`);
    connected = p !== undefined;
    state += p
      ? `, connected, ${p.ackedVersion === live.latestVersion ? `synced (v${live.latestVersion})` : `acked ${p.ackedVersion === undefined ? "nothing" : `v${p.ackedVersion}`} of v${live.latestVersion}`}${p.nack ? `, NACKed v${p.nack.version}: ${p.nack.reason}` : ""}`
      : ", NOT CONNECTED to the control plane (not running?)";
  }
  return {
    gateway: binding.gateway,
    via,
    binding: binding.via,
    servesFor,
    exists: w !== undefined,
    addresses: w?.addresses ?? [],
    identity: w?.identity ?? null,
    connected,
    state,
  };
}

/** Why a use-waypoint label on `labels` (or the namespace's) did not bind; empty when it did or there is none. */
function labelNotes(
  index: ModelIndex,
  labels: Labels,
  namespace: string,
  what: string,
  target: "service" | "workload",
  bound: boolean,
): string[] {
  if (bound) return [];
  const own = labels[USE];
  if (own === "none") return [`${what} opts out of waypoints (${USE}=none)`];
  let key: string | undefined;
  let where = "";
  if (own) {
    key = `${labels[USE_NS] || namespace}/${own}`;
    where = `${what} is labelled ${USE}=${own}`;
  } else {
    key = index.namespace(namespace)?.useWaypoint;
    where = `namespace ${namespace} is labelled ${USE}`;
  }
  if (!key) return [];
  const w = index.waypointByKey(key);
  if (!w) return [`${where}, but there is no istio-waypoint Gateway ${key}: no waypoint is bound`];
  if (!accepts(w, target)) {
    return [`${where}, but Gateway ${key} is for ${w.waypointFor === "none" ? "no" : w.waypointFor} traffic (istio.io/waypoint-for: ${w.waypointFor}), not ${target} traffic: it does not serve ${what}`];
  }
  return [];
}

/** Waypoints serving a workload (its own, then each of its Services'), and notes on labels that did not bind. */
export function workloadWaypoints(
  index: ModelIndex,
  w: Workload,
  services: Service[],
  live: LiveFacts | undefined,
): { waypoints: WaypointRef[]; notes: string[] } {
  const waypoints: WaypointRef[] = [];
  const notes: string[] = [];
  if (w.waypoint) waypoints.push(waypointRef(index, w.waypoint, w, "the workload itself (traffic to its address)", live));
  notes.push(...labelNotes(index, w.labels, w.namespace, `${w.kind} ${w.namespace}/${w.name}`, "workload", w.waypoint !== undefined));
  for (const s of services) {
    if (s.waypoint) waypoints.push(waypointRef(index, s.waypoint, s, `Service ${s.name}.${s.namespace}`, live));
    notes.push(...serviceWaypointNotes(index, s));
  }
  return { waypoints, notes: [...new Set(notes)] };
}

export function serviceWaypointNotes(index: ModelIndex, s: Service): string[] {
  return labelNotes(index, s.labels, s.namespace, `Service ${s.namespace}/${s.name}`, "service", s.waypoint !== undefined);
}
