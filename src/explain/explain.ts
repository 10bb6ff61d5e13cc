/**
 * `mesh explain`'s engine: follows one request through the mesh with the same functions the proxies run
 * (policy placement, request authentication, authorization, HTTP routing), without any network.
 *
 * The path a request takes (docs/design.md):
 * 1. The source ztunnel (when the client is an ambient workload) captures it and sends it over HBONE
 *    with the client's identity: to the destination's waypoint if one serves it, else to the workload.
 * 2. The waypoint (if any) authenticates the JWT (a bad token: 401), authorizes the request (403), then
 *    routes it (HTTPRoute: backend, filters, redirect; 404/500 when routes say so).
 * 3. The destination ztunnel admits the connection: only from the waypoint when one serves the workload
 *    (a bypass is refused), else it enforces the L4 policies itself (L7 ones fail closed).
 * A client outside the mesh reaches the destination ztunnel directly, as plaintext.
 */
import type { MeshModel, ModelIndex, RegistryHost, Service, ServiceEntry, Waypoint, Workload } from "../model/mod.ts";
import { authorizationPoliciesFor, entryService, indexModel, readyEndpoints, requestAuthenticationsFor } from "../model/mod.ts";
import { entryName, externalLeg } from "./external.ts";
import {
  admitRequest,
  authorizeAtZtunnel,
  type AuthzRequest,
  type EnforcedDecision,
  inlineKeySet,
  type KeyResolver,
  placement,
  waypointBindingFor,
} from "../policy/mod.ts";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { normalizeHeaders, routeRequest, routesForService, routesForServiceEntry } from "../route/mod.ts";
import type { AppliedFilter, RouteDecision } from "../route/mod.ts";
import type { ExplainQuery } from "./query.ts";

export type EnforcementPointName = "waypoint" | "ztunnel" | "none";

/** One proxy on the request's path and what it does there. */
export interface Hop {
  point: "source-ztunnel" | "waypoint" | "destination-ztunnel";
  /** "ztunnel on node-a", "waypoint ambient-ns/product-api-waypoint" */
  name: string;
  /** What happens there, one line each. */
  steps: string[];
  /** This hop made the final decision. */
  decided: boolean;
}

/** The answer: JSON-serializable, printed as-is by `mesh explain --format json`. */
export interface Explanation {
  /** The security decision: allowed through, denied by policy, or refused for a bad token. */
  decision: "allow" | "deny" | "unauthenticated";
  /** HTTP status the client gets; null when the connection itself is refused (reset), or for L4 traffic allowed through. */
  status: number | null;
  /** The enforcement point that decided. */
  enforcedBy: EnforcementPointName;
  /** Waypoint that decided (at a waypoint). */
  waypoint: string | null;
  /** "ns/name" of the policy that decided (the ALLOW policies that did not match, when none did). */
  policy: string | null;
  /** Rule index within that policy, when one rule decided. */
  rule: number | null;
  /** HTTP routing at the waypoint; null when no waypoint routes this request. */
  route: ExplainedRoute | null;
  /** Where the request ends up; null when it never gets there. */
  backend: ExplainedBackend | null;
  /** Filters applied by the route, in order. */
  filters: { type: string; level: "rule" | "backend" }[];
  redirect: { status: number; location: string } | null;
  authentication: ExplainedAuthn | null;
  reason: string;
  source: {
    identity: string | null;
    workload: string | null;
    address: string | null;
    node: string | null;
    /** Its traffic is captured by a ztunnel (an ambient workload). */
    inMesh: boolean;
  };
  destination: {
    service: string | null;
    port: number;
    address: string | null;
    workload: string | null;
    waypoint: string | null;
  };
  request: { method: string; path: string; host: string };
  /** Every proxy on the path, in order. */
  hops: Hop[];
  warnings: string[];
}

export interface ExplainedRoute {
  via: "route" | "default" | "none";
  namespace?: string;
  name?: string;
  ruleIndex?: number;
  ruleName?: string;
  matchIndex?: number;
  /** file:line:col of the HTTPRoute, when known. */
  source?: string;
  /** 404/500 reason. */
  error?: string;
}

export interface ExplainedBackend {
  service: string | null;
  port: number;
  workload: string | null;
  address: string | null;
  targetPort: number | null;
  mirrors?: string[];
  timeoutMs?: number;
  backendTimeoutMs?: number;
  retry?: { attempts: number; codes: number[]; backoffMs?: number };
}

export interface ExplainedAuthn {
  status: "none" | "ok" | "invalid";
  principal?: string;
  error?: string;
  /** RequestAuthentication(s) whose rules applied ("ns/name"). */
  policies: string[];
}

export interface ExplainOptions {
  /** Verification keys per JWT rule. Default: the rule's inline `jwks`; a jwksUri is not fetched (no network). */
  keys?: KeyResolver;
  /** Clock for token expiry. */
  now?: Date;
}

const wl = (w: Workload) => `${w.kind} ${w.namespace}/${w.name}`;
const svcName = (s: Service) => `${s.namespace}/${s.name}`;
const wpName = (w: Waypoint) => `${w.namespace}/${w.name}`;

interface ResolvedSource {
  identity?: string;
  workload?: Workload;
  address?: string;
  inMesh: boolean;
}

function resolveSource(index: ModelIndex, q: ExplainQuery, warnings: string[]): ResolvedSource {
  const td = index.model.meshConfig.trustDomain;
  if (q.from.kind === "ip") {
    const w = index.workloadByAddress(q.from.address);
    if (!w) return { address: q.from.address, inMesh: false };
    return { identity: w.identity, workload: w, address: q.from.address, inMesh: w.ambient };
  }
  const { namespace, serviceAccount } = q.from;
  const candidates = index.model.workloads.filter((w) => w.namespace === namespace && w.serviceAccount === serviceAccount);
  const w = candidates.find((c) => c.ambient && c.ready) ?? candidates.find((c) => c.ambient) ?? candidates[0];
  const identity = `spiffe://${td}/ns/${namespace}/sa/${serviceAccount}`;
  if (!w) {
    const known = index.model.serviceAccounts.some((s) => s.namespace === namespace && s.name === serviceAccount);
    if (!known) {
      throw new MeshError(
        ErrorCode.ConfigInvalid,
        `No workload or ServiceAccount "${namespace}/${serviceAccount}" in the configuration: check --from`,
      );
    }
    warnings.push(`no workload runs as ${namespace}/${serviceAccount}; explaining as if one did, in the mesh`);
    return { identity, inMesh: true };
  }
  return { identity, workload: w, address: w.addresses[0], inMesh: w.ambient };
}

interface ResolvedTarget {
  service?: Service;
  /** The port the client dialed (a Service port, or the workload port when addressed directly). */
  port: number;
  workload?: Workload;
  address?: string;
  targetPort?: number;
  /** A ServiceEntry host (`service` is then the Service made from it). */
  external?: RegistryHost;
}

function externalTarget(index: ModelIndex, at: RegistryHost, port: number, address?: string): ResolvedTarget {
  if (!at.entry.ports.some((p) => p.number === port)) {
    throw new MeshError(ErrorCode.ConfigInvalid, `${entryName(at)} has no port ${port} (ports: ${at.entry.ports.map((p) => p.number).join(", ")}): check --to`);
  }
  return { service: entryService(at), port, address: address ?? index.registry.addressesOf(at)[0], external: at };
}

/**
 * The endpoint of `service` port `port` that explain follows: the first one the proxies would use (the
 * same list they round-robin over), so its workload and port are theirs.
 */
function endpointOf(index: ModelIndex, service: Service, port: number): { workload?: Workload; targetPort?: number; address?: string } {
  const e = readyEndpoints(index, service, port)[0];
  return e ? { workload: e.workload, targetPort: e.port, address: e.ip } : {};
}

function resolveTarget(index: ModelIndex, q: ExplainQuery): ResolvedTarget {
  if (q.to.kind === "host") {
    const at = index.registry.byHost(q.to.host);
    if (!at) throw new MeshError(ErrorCode.ConfigInvalid, `No Service or ServiceEntry host "${q.to.host}" in the configuration: check --to`);
    return externalTarget(index, at, q.to.port);
  }
  if (q.to.kind === "service") {
    const s = index.serviceByName(q.to.namespace, q.to.name);
    // "partner.example:80" reads like NAME.NAMESPACE too: a ServiceEntry host of that name is what is meant.
    const at = s ? undefined : index.registry.byHost(`${q.to.name}.${q.to.namespace}`);
    if (at) return externalTarget(index, at, q.to.port);
    if (!s) {
      throw new MeshError(ErrorCode.ConfigInvalid, `No Service "${q.to.namespace}/${q.to.name}" in the configuration: check --to`);
    }
    if (s.ports.length > 0 && !s.ports.some((p) => p.port === q.to.port)) {
      throw new MeshError(
        ErrorCode.ConfigInvalid,
        `Service ${svcName(s)} has no port ${q.to.port} (ports: ${s.ports.map((p) => p.port).join(", ")}): check --to`,
      );
    }
    return { service: s, port: q.to.port, ...endpointOf(index, s, q.to.port) };
  }
  const { address, port } = q.to;
  const s = index.serviceByVip(address);
  if (s) {
    return { service: s, port, ...endpointOf(index, s, port) };
  }
  const w = index.workloadByAddress(address);
  if (w) return { workload: w, port, targetPort: port, address };
  const at = index.registry.byAddress(address);
  if (at) return externalTarget(index, at, port, address);
  return { port, address };
}

/**
 * Explains what the mesh does with one request described by `query`, over `model`.
 *
 * @example
 * const e = await explainRequest(model, {
 *   from: parseSource("ambient-ns/product-viewer-sa"), to: parseTarget("product-api.ambient-ns:8000"),
 *   method: "GET", path: "/get" });
 * e.decision // "deny"; e.status 403; e.policy "ambient-ns/require-get-on-products"
 */
export async function explainRequest(model: MeshModel, query: ExplainQuery, options: ExplainOptions = {}): Promise<Explanation> {
  const index = indexModel(model);
  const warnings: string[] = [];
  const src = resolveSource(index, query, warnings);
  const dst = resolveTarget(index, query);
  const method = (query.method ?? "GET").toUpperCase();
  const path = query.path ?? "/";
  const headers = normalizeHeaders(query.headers ?? {});
  const host = headers["host"]?.[0] ?? (dst.external
    ? dst.external.host
    : query.to.kind === "host"
    ? `${query.to.host}:${query.to.port}`
    : query.to.kind === "service"
    ? `${query.to.name}.${query.to.namespace}:${query.to.port}`
    : `${query.to.address.includes(":") ? `[${query.to.address}]` : query.to.address}:${query.to.port}`);
  delete headers["host"];
  if (query.jwt !== undefined) (headers["authorization"] ??= []).push(`Bearer ${query.jwt}`);

  const hops: Hop[] = [];
  // As the ztunnel picks it (policy's waypointBindingFor): the Service's waypoint, else the workload's.
  const binding = dst.service?.waypoint ?? dst.workload?.waypoint;
  const waypoint = binding ? index.waypointByKey(binding.gateway) : undefined;

  const out: Explanation = {
    decision: "allow",
    status: null,
    enforcedBy: "none",
    waypoint: null,
    policy: null,
    rule: null,
    route: null,
    backend: null,
    filters: [],
    redirect: null,
    authentication: null,
    reason: "",
    source: {
      identity: src.identity ?? null,
      workload: src.workload ? wl(src.workload) : null,
      address: src.address ?? null,
      node: src.workload && src.inMesh ? src.workload.node : null,
      inMesh: src.inMesh,
    },
    destination: {
      service: dst.external ? entryName(dst.external) : dst.service ? svcName(dst.service) : null,
      port: dst.port,
      address: dst.service?.vip ?? dst.address ?? null,
      workload: dst.workload ? wl(dst.workload) : null,
      waypoint: binding?.gateway ?? null,
    },
    request: { method, path, host },
    hops,
    warnings,
  };

  if (src.inMesh) {
    const next = binding
      ? `waypoint ${binding.gateway}${waypoint?.addresses[0] ? ` (${waypoint.addresses[0]}:${waypoint.port})` : ""}`
      : dst.external
      ? `${entryName(dst.external)}: ${externalLeg(index, dst.external, dst.port, false).target}`
      : dst.workload
      ? `${wl(dst.workload)} (${dst.address}:15008)`
      : `${dst.address ?? "the destination"}:${dst.port}`;
    const hbone = binding || dst.workload?.ambient;
    hops.push({
      point: "source-ztunnel",
      name: `ztunnel on ${src.workload?.node ?? "the source node"}`,
      steps: [
        hbone
          ? `captures the connection and sends it over HBONE (mTLS as ${src.identity}) to ${next}`
          : `captures the connection and passes it on as plain TCP to ${next}: the destination is not in the mesh`,
      ],
      decided: false,
    });
  }

  // Not a mesh destination at all.
  if (!dst.service && !dst.workload) {
    const policy = model.meshConfig.outboundPolicy;
    out.decision = policy === "deny" && src.inMesh ? "deny" : "allow";
    out.enforcedBy = src.inMesh ? "ztunnel" : "none";
    out.reason = `${dst.address}:${dst.port} is not a Service or workload of the mesh; outbound policy "${policy}"` +
      (src.inMesh ? (policy === "deny" ? ": the source ztunnel refuses it" : ": passed through unchanged") : "");
    if (hops[0]) hops[0].decided = policy === "deny";
    return out;
  }

  const authzReq: AuthzRequest = {
    source: src.inMesh ? { principal: src.identity, ip: src.address } : { ip: src.address },
    destination: { ip: dst.address, port: dst.targetPort ?? dst.port },
    http: { method, path, host, headers },
  };

  if (binding && src.inMesh) {
    return await throughWaypoint(index, out, { binding, waypoint, src, dst, authzReq, options });
  }
  if (dst.external) {
    // No waypoint: the source ztunnel lets a registered host out (outbound policy deny or not); no policy applies.
    const leg = externalLeg(index, dst.external, dst.port, false);
    out.enforcedBy = src.inMesh ? "ztunnel" : "none";
    out.reason = `${entryName(dst.external)} is in the mesh's registry: the source ztunnel ${leg.steps.join(", ")}`;
    out.backend = { service: entryName(dst.external), port: dst.port, workload: null, address: dst.address ?? null, targetPort: leg.targetPort };
    if (hops[0]) hops[0].decided = true;
    return out;
  }
  return directToWorkload(index, out, { src, dst, authzReq, routed: false });
}

interface WaypointCtx {
  binding: { gateway: string; via: string };
  waypoint?: Waypoint;
  src: ResolvedSource;
  dst: ResolvedTarget;
  authzReq: AuthzRequest;
  options: ExplainOptions;
}

async function throughWaypoint(index: ModelIndex, out: Explanation, c: WaypointCtx): Promise<Explanation> {
  const { waypoint, dst, authzReq } = c;
  const hop: Hop = { point: "waypoint", name: `waypoint ${c.binding.gateway}`, steps: [], decided: false };
  out.hops.push(hop);
  out.waypoint = c.binding.gateway;
  if (!waypoint) {
    out.decision = "deny";
    out.enforcedBy = "waypoint";
    out.reason = `${out.destination.service ?? out.destination.workload} is bound to waypoint ${c.binding.gateway} (${c.binding.via}), which does not exist: every connection is refused`;
    hop.steps.push("does not exist: nothing can reach the destination");
    hop.decided = true;
    return out;
  }
  hop.steps.push(`receives the request over HBONE; bound by ${c.binding.via}; the client is ${c.src.identity}`);
  // An external host: the policies attached to its ServiceEntry (and the waypoint) decide, as at the waypoint.
  const dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry } = dst.external
    ? { serviceEntry: dst.external.entry }
    : { workload: dst.workload, service: dst.service };
  const keys: KeyResolver = c.options.keys ?? defaultKeys;
  const http = authzReq.http!;
  const admission = await admitRequest(index, waypoint, dest, { ...authzReq, http }, keys, c.options.now);
  const ras = raNamesFor(index, waypoint, dest, admission.authn.status === "invalid" ? admission.authn.rule : undefined);
  const authn = admission.authn;
  out.authentication = authn.status === "ok"
    ? { status: "ok", principal: authn.principal, policies: ras }
    : authn.status === "invalid"
    ? { status: "invalid", error: authn.error, policies: ras }
    : { status: "none", policies: ras };
  hop.steps.push(
    authn.status === "ok"
      ? `authentication: token of ${authn.principal} verified (RequestAuthentication ${ras.join(", ")})`
      : authn.status === "invalid"
      ? `authentication: ${authn.error} -> ${authn.httpStatus} (RequestAuthentication ${ras.join(", ")})`
      : `authentication: ${authn.reason}`,
  );
  if (authn.status === "invalid") {
    out.decision = "unauthenticated";
    out.status = authn.httpStatus;
    out.enforcedBy = "waypoint";
    out.policy = ras.length ? ras.join(", ") : null;
    out.reason = `request authentication failed at waypoint ${wpName(waypoint)}: ${authn.error}`;
    hop.decided = true;
    return out;
  }
  const d = admission.decision!;
  describeAuthz(index, out, d, waypoint, dest);
  hop.steps.push(`authorization: ${d.reason}`);
  if (!d.allowed) {
    out.decision = "deny";
    out.status = 403;
    out.enforcedBy = "waypoint";
    out.reason = `denied at waypoint ${wpName(waypoint)}: ${d.reason}`;
    hop.decided = true;
    return out;
  }

  // Routing sees the request as authentication left it (token header stripped, claim headers added).
  const headers: Record<string, string | string[]> = { ...http.headers };
  for (const h of admission.stripHeaders) delete headers[h];
  Object.assign(headers, admission.addHeaders);
  if (!dst.service) {
    out.route = null;
    hop.steps.push(`routing: no Service addressed, forwarded to ${out.destination.workload}`);
    return directToWorkload(index, out, { src: c.src, dst, authzReq, routed: true, waypoint });
  }
  const ext = dst.external ? dst.service : undefined;
  const services = (ns: string, n: string) => (ext && ns === ext.namespace && n === ext.name ? ext : index.serviceByName(ns, n));
  const rd = routeRequest({
    routes: ext && dst.external ? routesForServiceEntry(index.model.httpRoutes, dst.external, ext, dst.port) : index.model.httpRoutes,
    service: dst.service,
    port: dst.port,
    request: { method: http.method, path: http.path, host: http.host, headers },
    services,
    referenceGrants: index.model.referenceGrants ?? [],
    // Deterministic: the first backend by weight and every mirror with a percent above zero.
    random: () => 0,
  });
  describeRoute(out, rd);
  hop.steps.push(routeStep(rd, dst.service, dst.port));
  if (rd.kind === "error") {
    out.status = rd.status;
    out.enforcedBy = "waypoint";
    out.reason = `allowed by policy, but routing at waypoint ${wpName(waypoint)} answers ${rd.status}: ${rd.reason}`;
    hop.decided = true;
    return out;
  }
  if (rd.kind === "redirect") {
    out.status = rd.status;
    out.enforcedBy = "waypoint";
    out.redirect = { status: rd.status, location: rd.location };
    out.reason = `allowed at waypoint ${wpName(waypoint)}, which answers with a redirect to ${rd.location}`;
    hop.decided = true;
    return out;
  }
  const backendSvc = services(rd.backend.namespace, rd.backend.name)!;
  if (dst.external && backendSvc === dst.service) {
    const leg = externalLeg(index, dst.external, rd.backend.port, true);
    hop.steps.push(...leg.steps);
    out.backend = { service: entryName(dst.external), port: rd.backend.port, workload: null, address: dst.address ?? null, targetPort: leg.targetPort };
    out.decision = "allow";
    out.enforcedBy = "waypoint";
    out.reason = `allowed at waypoint ${wpName(waypoint)}${out.policy ? ` by ${out.policy}` : ""}; it ${leg.steps.join(", ")}`;
    hop.decided = true;
    return out;
  }
  const ep = endpointOf(index, backendSvc, rd.backend.port);
  const target: ResolvedTarget = { service: backendSvc, port: rd.backend.port, ...ep };
  out.backend = {
    service: svcName(backendSvc),
    port: rd.backend.port,
    workload: ep.workload ? wl(ep.workload) : null,
    address: ep.address ?? null,
    targetPort: ep.targetPort ?? null,
    ...(rd.mirrors.length ? { mirrors: rd.mirrors.map((m) => `${m.namespace}/${m.name}:${m.port}`) } : {}),
    ...(rd.timeoutMs !== undefined ? { timeoutMs: rd.timeoutMs } : {}),
    ...(rd.backendTimeoutMs !== undefined ? { backendTimeoutMs: rd.backendTimeoutMs } : {}),
    ...(rd.retry ? { retry: rd.retry } : {}),
  };
  out.decision = "allow";
  out.enforcedBy = "waypoint";
  hop.decided = true;
  return directToWorkload(index, out, { src: c.src, dst: target, authzReq, routed: true, waypoint });
}

interface DirectCtx {
  src: ResolvedSource;
  dst: ResolvedTarget;
  authzReq: AuthzRequest;
  /** The waypoint forwarded it (the waypoint's identity reaches the ztunnel). */
  routed: boolean;
  waypoint?: Waypoint;
}

/** The last leg: the destination ztunnel admits (or refuses) the connection to the workload. */
function directToWorkload(index: ModelIndex, out: Explanation, c: DirectCtx): Explanation {
  const w = c.dst.workload;
  if (!w) {
    out.status = 503;
    out.decision = c.routed ? out.decision : "allow";
    out.reason = `${c.dst.service ? `Service ${svcName(c.dst.service)}` : "the destination"} has no ready endpoint: 503`;
    return out;
  }
  if (!c.routed) {
    out.backend = {
      service: c.dst.service ? svcName(c.dst.service) : null,
      port: c.dst.port,
      workload: wl(w),
      address: c.dst.address ?? null,
      targetPort: c.dst.targetPort ?? null,
    };
  }
  const port = c.dst.targetPort ?? c.dst.port;
  if (!w.ambient && !c.routed) {
    out.decision = "allow";
    out.enforcedBy = "none";
    out.status = null;
    out.reason = `${wl(w)} is not in the mesh (no ambient label): no proxy enforces anything, plain TCP`;
    return out;
  }
  const hop: Hop = { point: "destination-ztunnel", name: `ztunnel on ${w.node}`, steps: [], decided: false };
  out.hops.push(hop);
  const peer = c.routed && c.waypoint
    ? { principal: c.waypoint.identity, ip: c.waypoint.addresses[0] }
    : c.authzReq.source;
  const d = authorizeAtZtunnel(index, w, {
    source: peer,
    destination: { ip: c.dst.address, port },
  });
  hop.steps.push(`${peer.principal ? `HBONE from ${peer.principal}` : "plaintext connection"}: ${d.reason}`);
  if (!d.allowed) {
    hop.decided = true;
    out.decision = "deny";
    out.enforcedBy = "ztunnel";
    out.policy = d.policy ?? null;
    out.rule = d.ruleIndex ?? null;
    // Behind a waypoint the client sees the upstream failure; without one the connection is reset.
    out.status = c.routed ? 503 : null;
    out.reason = `refused by the ztunnel of ${wl(w)}: ${d.reason}`;
    if (!c.routed) {
      const unrouted = c.dst.service ? routesForService(index.model.httpRoutes, c.dst.service, c.dst.port) : [];
      if (unrouted.length) out.warnings.push(noWaypointRoutes(unrouted.map((r) => `${r.namespace}/${r.name}`)));
    }
    return out;
  }
  hop.steps.push(`delivers to ${wl(w)} at ${c.dst.address}:${port}`);
  if (c.routed) {
    out.status = out.status ?? 200;
    out.reason ||= `allowed: ${out.authentication?.principal ? `token of ${out.authentication.principal}, ` : ""}${
      out.policy ? `policy ${out.policy}` : "no policy refuses it"
    } at waypoint ${c.waypoint ? wpName(c.waypoint) : ""}; delivered to ${wl(w)}`;
    return out;
  }
  hop.decided = true;
  describeZtunnelAllow(out, d);
  const unrouted = c.dst.service ? routesForService(index.model.httpRoutes, c.dst.service, c.dst.port) : [];
  if (unrouted.length) out.warnings.push(noWaypointRoutes(unrouted.map((r) => `${r.namespace}/${r.name}`)));
  return out;
}

function noWaypointRoutes(names: string[]): string {
  return `HTTPRoute ${names.join(", ")} attached to this Service port is not applied: only a waypoint routes HTTP`;
}

function describeZtunnelAllow(out: Explanation, d: EnforcedDecision): void {
  out.decision = "allow";
  out.enforcedBy = "ztunnel";
  out.policy = d.policy ?? null;
  out.rule = d.ruleIndex ?? null;
  // L4: the ztunnel passes bytes; the HTTP status is the application's.
  out.status = null;
  out.reason = `allowed by the destination ztunnel (L4): ${d.reason}`;
}

function describeAuthz(
  index: ModelIndex,
  out: Explanation,
  d: EnforcedDecision,
  waypoint: Waypoint,
  dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry },
): void {
  out.rule = d.ruleIndex ?? null;
  if (d.policy) {
    out.policy = d.policy;
    return;
  }
  // "No ALLOW policy matched": the ALLOW policies that applied are what decided.
  const allows = authorizationPoliciesFor(index, { ...dest, waypoint })
    .filter((p) => p.action === "ALLOW" && !p.dryRun)
    .map((p) => `${p.namespace}/${p.name}`);
  out.policy = allows.length ? allows.join(", ") : null;
  if (d.warnings) out.warnings.push(...d.warnings);
}

/** The RequestAuthentications applied at the waypoint (the one holding `rule` when it is known). */
function raNamesFor(
  index: ModelIndex,
  waypoint: Waypoint,
  dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry },
  rule?: unknown,
): string[] {
  const ras = requestAuthenticationsFor(index, { ...dest, waypoint });
  const chosen = rule ? ras.filter((r) => r.jwtRules.some((j) => j === rule)) : ras;
  return (chosen.length ? chosen : ras).map((r) => `${r.namespace}/${r.name}`);
}

function describeRoute(out: Explanation, rd: RouteDecision): void {
  const r: ExplainedRoute = { via: rd.via };
  if (rd.route) {
    r.namespace = rd.route.namespace;
    r.name = rd.route.name;
    r.ruleIndex = rd.route.ruleIndex;
    r.matchIndex = rd.route.matchIndex;
    if (rd.route.ruleName) r.ruleName = rd.route.ruleName;
    if (rd.route.source) r.source = `${rd.route.source.file}:${rd.route.source.line}:${rd.route.source.col}`;
  }
  if (rd.kind === "error") r.error = rd.reason;
  out.route = r;
  out.filters = rd.filters.map((f: AppliedFilter) => ({ type: f.type, level: f.level }));
}

function routeStep(rd: RouteDecision, s: Service, port: number): string {
  const where = rd.route ? `HTTPRoute ${rd.route.namespace}/${rd.route.name} rule ${rd.route.ruleIndex}` : "";
  if (rd.via === "default") return `routing: no HTTPRoute on ${svcName(s)}:${port}, forwarded to the Service itself`;
  if (rd.kind === "error") return `routing: ${where ? `${where}: ` : ""}${rd.status} (${rd.reason})`;
  if (rd.kind === "redirect") return `routing: ${where} redirects (${rd.status}) to ${rd.location}`;
  const filters = rd.filters.length ? `, filters ${rd.filters.map((f) => f.type).join(", ")}` : "";
  return `routing: ${where} -> ${rd.backend.namespace}/${rd.backend.name}:${rd.backend.port}${filters}`;
}

/** Inline JWKS only: explain never fetches a jwksUri. */
const defaultKeys: KeyResolver = (rule) => {
  if (rule.jwks) return inlineKeySet(rule);
  throw new MeshError(
    ErrorCode.TokenInvalid,
    `JWT rule for issuer "${rule.issuer}" has only a jwksUri, which mesh explain does not fetch (no network)`,
  );
};
