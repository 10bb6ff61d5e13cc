/**
 * Which workload port a Service port reaches, and which endpoints of a Service port take traffic: one
 * answer for the configuration loader, both proxies and `mesh explain`, so they cannot disagree. Pure.
 *
 * Kubernetes: a Service port's targetPort is a number or the NAME of a container port, looked up on each
 * endpoint (so two pods may serve one Service port on different numbers); a missing targetPort means the
 * port itself (the loader fills it in). Istio: a WorkloadEntry's `ports` map is keyed by the Service
 * port's name and overrides targetPort.
 */
import type { ModelIndex } from "./index.ts";
import type { Endpoint, Service, ServicePort, Workload } from "./types.ts";

/** The workload port service port `sp` reaches on `w`, or undefined when `w` has none (a name it does not declare). */
export function resolveTargetPort(sp: ServicePort, w: Workload): number | undefined {
  if (w.kind === "WorkloadEntry") {
    const byName = sp.name ? w.ports.find((p) => p.name === sp.name) : undefined;
    if (byName) return byName.port;
  }
  if (typeof sp.targetPort === "number") return sp.targetPort;
  return w.ports.find((p) => p.name === sp.targetPort)?.port;
}

/**
 * The workload port `svc` port `servicePort` maps to on endpoint `w`, or undefined when it has none.
 * The endpoint's own map (resolved when the model was built) wins; otherwise it is resolved now.
 */
export function endpointPort(svc: Service, servicePort: number, w: Workload): number | undefined {
  return portOn(svc, servicePort, svc.endpoints.find((e) => e.workloadUid === w.uid), w);
}

function portOn(svc: Service, servicePort: number, e: Endpoint | undefined, w: Workload): number | undefined {
  const mapped = e?.ports[servicePort];
  if (mapped !== undefined) return mapped;
  const sp = svc.ports.find((p) => p.port === servicePort);
  return sp ? resolveTargetPort(sp, w) : undefined;
}

/** An endpoint that takes traffic for one Service port: a ready workload, its first address, its port there. */
export interface ReadyEndpoint {
  workload: Workload;
  ip: string;
  port: number;
}

/**
 * The endpoints of `svc` port `servicePort` that take traffic, in configuration order: ready, with an
 * address, and serving that port. Callers cache it per configuration version.
 */
export function readyEndpoints(index: ModelIndex, svc: Service, servicePort: number): ReadyEndpoint[] {
  const list: ReadyEndpoint[] = [];
  for (const e of svc.endpoints) {
    const w = index.workloadByUid(e.workloadUid);
    if (!w || !w.ready || !w.addresses.length) continue;
    const port = portOn(svc, servicePort, e, w);
    if (port !== undefined) list.push({ workload: w, ip: w.addresses[0]!, port });
  }
  return list;
}
