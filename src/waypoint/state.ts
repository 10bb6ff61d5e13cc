/**
 * What the waypoint knows of the mesh: its view from the control plane (one immutable snapshot per
 * version), the Gateway it is, and the per-version answers the request path asks for again and again
 * (the destination a tunnel names, a Service port's ready endpoints, its compiled routes).
 */
import { parseIpPort } from "../core/mod.ts";
import type { ModelIndex, MeshModel, Service, Waypoint, Workload } from "../model/mod.ts";
import { emptyModel, indexModel, readyEndpoints } from "../model/mod.ts";
import { compileRoutes, type CompiledRoutes } from "../route/mod.ts";
import { type ExternalDestination, externalEndpoint, externalOf, externalRoutes, externalService } from "./egress.ts";

/** Where a tunnel is going, as its CONNECT authority names it. */
export interface TunnelDestination {
  /** The Service the client addressed (by its VIP). */
  service?: Service;
  /** The workload the client addressed directly (its own address, bound to this waypoint). */
  workload?: Workload;
  ip: string;
  /** The port the client dialed: a Service port, or the workload's port. */
  port: number;
  /** A ServiceEntry host this waypoint serves as egress waypoint (`service` is then made from it: ./egress.ts). */
  external?: ExternalDestination;
}

/** One workload to send a request to. */
export interface Endpoint {
  workload: Workload;
  ip: string;
  /** The workload's port (the Service port's targetPort on this endpoint). */
  port: number;
}

export type DestinationAnswer = { ok: true; destination: TunnelDestination } | { ok: false; status: 400 | 503; reason: string };

export class WaypointState {
  /** "namespace/name" of this waypoint's Gateway. */
  readonly gateway: string;
  #index: ModelIndex = indexModel(emptyModel());
  #version: number | undefined;
  #waypoint: Waypoint | undefined;
  #endpoints = new Map<string, Endpoint[]>();
  #routes = new Map<string, CompiledRoutes>();
  #rr = new Map<string, number>();

  constructor(gateway: string) {
    this.gateway = gateway;
  }

  get index(): ModelIndex {
    return this.#index;
  }
  get version(): number | undefined {
    return this.#version;
  }
  /** This waypoint as the configuration describes it (undefined until its Gateway is known). */
  get waypoint(): Waypoint | undefined {
    return this.#waypoint;
  }

  replace(model: MeshModel, version: number): void {
    this.#index = indexModel(model);
    this.#version = version;
    this.#waypoint = this.#index.waypointByKey(this.gateway);
    this.#endpoints.clear();
    this.#routes.clear();
  }

  /**
   * The destination a tunnel's CONNECT authority names: a Service VIP and port whose Service is bound
   * to this waypoint, or the address of a workload bound to it. Anything else is not ours to serve.
   */
  destination(authority: string): DestinationAnswer {
    const a = parseIpPort(authority);
    if (!a) return { ok: false, status: 400, reason: `CONNECT authority "${authority}" is not ip:port` };
    const svc = this.#index.serviceByVip(a.ip);
    if (svc) {
      if (svc.waypoint?.gateway !== this.gateway) {
        return { ok: false, status: 503, reason: `Service ${svc.namespace}/${svc.name} is not served by waypoint ${this.gateway}` };
      }
      if (svc.ports.length && !svc.ports.some((p) => p.port === a.port)) {
        return { ok: false, status: 503, reason: `Service ${svc.namespace}/${svc.name} has no port ${a.port}` };
      }
      return { ok: true, destination: { service: svc, ip: a.ip, port: a.port } };
    }
    const w = this.#index.workloadByAddress(a.ip);
    if (w && w.waypoint?.gateway === this.gateway) return { ok: true, destination: { workload: w, ip: a.ip, port: a.port } };
    const at = this.#index.registry.byAddress(a.ip);
    if (at) {
      const se = at.entry;
      if (se.waypoint?.gateway !== this.gateway) {
        return { ok: false, status: 503, reason: `ServiceEntry ${se.namespace}/${se.name} is not served by waypoint ${this.gateway}` };
      }
      const port = se.ports.find((p) => p.number === a.port);
      if (!port) return { ok: false, status: 503, reason: `ServiceEntry ${se.namespace}/${se.name} has no port ${a.port}` };
      const tls = this.#index.registry.clientTls(at.host, a.port)?.tls;
      const external: ExternalDestination = tls ? { at, port, tls } : { at, port };
      return { ok: true, destination: { service: externalService(at), ip: a.ip, port: a.port, external } };
    }
    return { ok: false, status: 503, reason: `${authority} is not a destination served by waypoint ${this.gateway}` };
  }

  /** Ready endpoints of `svc` port `port`, in configuration order. */
  endpoints(svc: Service, port: number): Endpoint[] {
    const key = `${svc.namespace}/${svc.name}:${port}`;
    let list = this.#endpoints.get(key);
    if (list) return list;
    list = readyEndpoints(this.#index, svc, port);
    this.#endpoints.set(key, list);
    return list;
  }

  /** The next ready endpoint of `svc` port `port` (round robin), skipping `avoid` when another exists. */
  pickEndpoint(svc: Service, port: number, avoid?: Endpoint, dialed = avoid?.ip ?? ""): Endpoint | undefined {
    const at = externalOf(svc);
    if (at) {
      const key = `se/${svc.namespace}/${svc.name}:${port}`;
      return externalEndpoint(at, port, dialed, (n) => {
        const i = this.#rr.get(key) ?? 0;
        this.#rr.set(key, (i + 1) % 1_000_000_007);
        return i % n;
      });
    }
    const list = this.endpoints(svc, port);
    if (list.length === 0) return undefined;
    const key = `${svc.namespace}/${svc.name}:${port}`;
    let i = this.#rr.get(key) ?? 0;
    let pick = list[i % list.length]!;
    if (avoid && list.length > 1 && pick.ip === avoid.ip && pick.port === avoid.port) pick = list[++i % list.length]!;
    this.#rr.set(key, (i + 1) % 1_000_000_007);
    return pick;
  }

  /** The HTTPRoutes deciding requests to `svc` port `port`, ordered once per configuration version. */
  routes(svc: Service, port: number): CompiledRoutes {
    const key = `${svc.namespace}/${svc.name}:${port}`;
    let c = this.#routes.get(key);
    if (!c) {
      c = compileRoutes(externalOf(svc) ? externalRoutes(this.#index, svc, port) : this.#index.model.httpRoutes, svc, port);
      this.#routes.set(key, c);
    }
    return c;
  }
}
