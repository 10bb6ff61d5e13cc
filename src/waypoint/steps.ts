/**
 * The request path before forwarding, one small step each, in the order `mesh explain` follows
 * (src/explain): pick the endpoint of the addressed Service, authenticate the token and authorize the
 * request for that endpoint (src/policy admitRequest), then route (src/route routeRequest). A step either
 * lets the request go on (undefined) or answers it (a LocalReply).
 *
 * The request may then be sent to another workload than the one it was admitted for (a route to another
 * backend, a retry on the next endpoint): `admitEndpoint` decides again for each such workload before
 * anything is sent to it, since its ztunnel admits whatever this waypoint sends and enforces nothing.
 */
import type { HttpHeaderModifier, ModelIndex, Service } from "../model/mod.ts";
import type { HeaderMap } from "../route/mod.ts";
import { applyHeaderModifier, routeRequest } from "../route/mod.ts";
import { type Admission, admitRequest, jwtRulesFor, type KeyResolver, type VerifiedTokens } from "../policy/mod.ts";
import { logger } from "../core/mod.ts";
import type { ForwardPlan, LocalReply, RequestContext } from "./context.ts";
import { accessDenied, noRoute, notServing, redirect, routeError, unauthenticated } from "./local_reply.ts";
import { externalRoutes, policyDestination } from "./egress.ts";
import type { Endpoint, WaypointState } from "./state.ts";

const log = logger("waypoint");

export interface StepInputs {
  state: WaypointState;
  keys: KeyResolver;
  /** Tokens whose signature already verified (src/waypoint/token_cache.ts); absent: every token is verified. */
  tokens?: VerifiedTokens;
  /** Clock for token expiry (tests). */
  now?: () => Date;
}

export type Step = (ctx: RequestContext, inputs: StepInputs) => LocalReply | undefined | Promise<LocalReply | undefined>;

/** The endpoint policy is evaluated for: the next ready one of the addressed Service, or the addressed workload. */
export const chooseEndpoint: Step = (ctx, { state }) => {
  const d = ctx.tunnel.destination;
  if (d.service) ctx.endpoint = state.pickEndpoint(d.service, d.port, undefined, d.ip);
  else if (d.workload) ctx.endpoint = { workload: d.workload, ip: d.ip, port: d.port };
  return undefined;
};

const XFCC = "x-forwarded-client-cert";

// Per configuration: every header name a RequestAuthentication of the mesh fills from a verified token.
const outputHeaderMemo = new WeakMap<ModelIndex, Set<string>>();

/**
 * Header names that only a verified token may set. Mesh-wide rather than only the rules of the admitted
 * destination: the request can end up at another workload (route backend, retry) whose rules name other
 * headers, and a client's copy of any of them must never reach a workload that trusts it.
 */
function jwtOutputHeaders(index: ModelIndex): Set<string> {
  let names = outputHeaderMemo.get(index);
  if (!names) {
    names = new Set();
    for (const ra of index.model.requestAuthentications) {
      for (const r of ra.jwtRules) {
        if (r.outputPayloadToHeader) names.add(r.outputPayloadToHeader.toLowerCase());
        for (const o of r.outputClaimToHeaders ?? []) names.add(o.header.toLowerCase());
      }
    }
    outputHeaderMemo.set(index, names);
  }
  return names;
}

/** What admit decided for, kept for `admitEndpoint`: the sanitized request headers, and workloads already admitted. */
interface Admitted {
  headers: HeaderMap;
  allowed: Set<string>;
}
const admitted = new WeakMap<RequestContext, Admitted>();

/** One admission decision: a workload (none: the Service had no ready endpoint), via a Service, on a port. */
function admissionKey(workloadUid: string | undefined, service: Service | undefined, port: number): string {
  return `${workloadUid ?? ""}|${service ? `${service.namespace}/${service.name}` : ""}|${port}`;
}

/** A refused admission as the client sees it: 401 (or 403 for an audience) for a bad token, else 403. */
function refusal(ctx: RequestContext, admission: Admission): LocalReply | undefined {
  if (admission.status === 401 || (admission.status === 403 && !admission.decision)) {
    const authn = admission.authn;
    const error = authn.status === "invalid" ? authn.error : admission.reason;
    const q = ctx.path.indexOf("?");
    return unauthenticated(admission.status, error, `http://${ctx.host}${q >= 0 ? ctx.path.slice(0, q) : ctx.path}`);
  }
  if (admission.status === 403) return accessDenied(`rbac_access_denied: ${admission.reason}`);
  return undefined;
}

/**
 * RequestAuthentication then AuthorizationPolicy: 401 for a bad token, 403 when denied.
 *
 * Before either, the client's headers that claim what only the mesh may say are dropped: those a
 * verified token fills (outputPayloadToHeader, outputClaimToHeaders: a client without a token, or whose
 * token lacks the claim, could set them itself) and x-forwarded-client-cert, which becomes ours
 * (Envoy's `By=<this waypoint>;URI=<the client's verified identity>`). Policies see the request so cleaned.
 */
export const admit: Step = async (ctx, { state, keys, tokens, now }) => {
  const waypoint = state.waypoint;
  if (!waypoint) return notServing(`the Gateway ${state.gateway} is no longer in the configuration`);
  const d = ctx.tunnel.destination;
  const dest = policyDestination(ctx.endpoint, d.service);
  const reserved = jwtOutputHeaders(state.index);
  const tokenHeaders = new Set<string>();
  if (reserved.size) {
    // A header that carries a token to verify is checked, not dropped (a forged token fails verification).
    for (const r of jwtRulesFor(state.index, waypoint, dest)) {
      for (const h of r.fromHeaders ?? []) tokenHeaders.add(h.name.toLowerCase());
      // No location given: the token is looked for in Authorization (and access_token).
      if (!r.fromHeaders?.length && !r.fromParams?.length && !r.fromCookies?.length) tokenHeaders.add("authorization");
    }
  }
  const clean: HeaderMap = {};
  for (const name in ctx.headers) {
    if (name === XFCC || (reserved.has(name) && !tokenHeaders.has(name))) continue;
    clean[name] = ctx.headers[name]!;
  }
  clean[XFCC] = [`By=${waypoint.identity};URI=${ctx.tunnel.peerIdentity}`];
  ctx.headers = clean;
  const admission = await admitRequest(
    state.index,
    waypoint,
    dest,
    {
      source: { principal: ctx.tunnel.peerIdentity, ip: ctx.tunnel.sourceIp },
      destination: { ip: ctx.endpoint?.ip, port: ctx.endpoint?.port ?? d.port },
      http: { method: ctx.method, path: ctx.path, host: ctx.host, headers: clean },
    },
    keys,
    now?.(),
    tokens,
  );
  ctx.admission = admission;
  const refused = refusal(ctx, admission);
  if (refused) return refused;
  admitted.set(ctx, { headers: clean, allowed: new Set([admissionKey(ctx.endpoint?.workload.uid, d.service, ctx.endpoint?.port ?? d.port)]) });
  if (admission.stripHeaders.length || Object.keys(admission.addHeaders).length) {
    const h: HeaderMap = { ...clean };
    for (const name of admission.stripHeaders) delete h[name];
    for (const [name, value] of Object.entries(admission.addHeaders)) h[name] = [value];
    ctx.headers = h;
  }
  return undefined;
};

/**
 * Before a request admitted for one workload is sent to `endpoint` of `service` (its route's backend,
 * a retry's next endpoint): the same request, with the same token, must be admitted for that workload
 * too, else 403 `RBAC: access denied` (401 for a token its rules refuse). Its ztunnel takes whatever
 * this waypoint sends and enforces nothing, so this is the only place its policies are applied.
 *
 * A backend served by another waypoint (its Service's, else its workload's binding) is refused: that
 * waypoint's policies are the ones that apply to it and only it enforces them (fail closed; the route
 * should name a backend this waypoint serves, or the client should call that Service itself).
 */
export async function admitEndpoint(
  ctx: RequestContext,
  { state, keys, tokens, now }: StepInputs,
  endpoint: Endpoint,
  service?: Service,
): Promise<LocalReply | undefined> {
  const d = ctx.tunnel.destination;
  const svc = service ?? d.service;
  const key = admissionKey(endpoint.workload.uid, svc, endpoint.port);
  const before = admitted.get(ctx);
  if (before?.allowed.has(key)) return undefined;
  const waypoint = state.waypoint;
  const fields = { source: ctx.tunnel.peerIdentity, workload: `${endpoint.workload.namespace}/${endpoint.workload.name}`, trace_id: ctx.tunnel.traceId };
  if (!waypoint) return notServing(`the Gateway ${state.gateway} is no longer in the configuration`);
  if (!before) {
    // Never reached without admit; refusing keeps it so if the steps are ever rearranged.
    return accessDenied(`rbac_access_denied: ${endpoint.workload.namespace}/${endpoint.workload.name} was never admitted`);
  }
  const binding = svc !== d.service ? svc?.waypoint ?? endpoint.workload.waypoint : undefined;
  if (binding && binding.gateway !== state.gateway) {
    const reason = `backend ${svc!.namespace}/${svc!.name} is served by waypoint ${binding.gateway}, whose policies this waypoint does not enforce (fail closed)`;
    log.info("request refused for its backend", { ...fields, reason });
    return accessDenied(`rbac_access_denied: ${reason}`);
  }
  const admission = await admitRequest(
    state.index,
    waypoint,
    policyDestination(endpoint, svc),
    {
      source: { principal: ctx.tunnel.peerIdentity, ip: ctx.tunnel.sourceIp },
      destination: { ip: endpoint.ip, port: endpoint.port },
      http: { method: ctx.method, path: ctx.path, host: ctx.host, headers: before.headers },
    },
    keys,
    now?.(),
    tokens,
  );
  const refused = refusal(ctx, admission);
  if (refused) {
    log.info("request refused for its backend", { ...fields, reason: admission.reason });
    return refused;
  }
  before.allowed.add(key);
  return undefined;
}

/** A redirect's response headers: the route's ResponseHeaderModifiers applied to none. */
function locationHeaders(mods: HttpHeaderModifier[]): [string, string][] {
  let h: HeaderMap = {};
  for (const m of mods) h = applyHeaderModifier(h, m);
  const out: [string, string][] = [];
  for (const [k, vs] of Object.entries(h)) for (const v of vs) out.push([k, v]);
  return out;
}

/** HTTPRoute: forward (with the rewritten request), redirect, or 404/500. Sets ctx.plan. */
export const route: Step = async (ctx, inputs) => {
  const { state } = inputs;
  const d = ctx.tunnel.destination;
  if (!d.service) {
    ctx.plan = {
      port: d.port,
      endpoint: ctx.endpoint,
      host: ctx.host,
      path: ctx.path,
      headers: ctx.headers,
      responseHeaderModifiers: [],
      mirrors: [],
    };
    return undefined;
  }
  const index = state.index;
  // An egress destination's routes name its ServiceEntry; restated as routes of its Service (./egress.ts).
  const external = d.external ? d.service : undefined;
  const services = (ns: string, n: string) => (external && ns === external.namespace && n === external.name ? external : index.serviceByName(ns, n));
  const rd = routeRequest(
    {
      routes: external ? externalRoutes(index, external, d.port) : index.model.httpRoutes,
      service: d.service,
      port: d.port,
      request: { method: ctx.method, path: ctx.path, host: ctx.host, headers: ctx.headers },
      services,
      referenceGrants: index.model.referenceGrants ?? [],
    },
    state.routes(d.service, d.port),
  );
  if (rd.route) ctx.routeName = `${rd.route.namespace}/${rd.route.name}`;
  if (rd.kind === "error") return rd.status === 404 ? noRoute(rd.reason) : routeError(rd.status, rd.reason);
  if (rd.kind === "redirect") {
    return redirect(rd.status, rd.location, locationHeaders(rd.responseHeaderModifiers), `redirect to ${rd.location}`);
  }
  const svc = services(rd.backend.namespace, rd.backend.name);
  if (!svc) return routeError(500, `backend ${rd.backend.namespace}/${rd.backend.name} is not a known Service`);
  let headers = rd.requestHeaders;
  let host = rd.host;
  const hostField = headers["host"];
  if (hostField) {
    // A filter set Host: it is the authority sent (HTTP/1.1 has one Host).
    host = hostField[hostField.length - 1]!;
    headers = { ...headers };
    delete headers["host"];
  }
  const same = svc === d.service && rd.backend.port === d.port;
  // Another backend: its endpoint is chosen now, and admitted before anything is sent to it.
  const endpoint = same ? ctx.endpoint : state.pickEndpoint(svc, rd.backend.port);
  if (endpoint && !same) {
    const refused = await admitEndpoint(ctx, inputs, endpoint, svc);
    if (refused) return refused;
  }
  const plan: ForwardPlan = {
    service: svc,
    port: rd.backend.port,
    endpoint,
    host,
    path: rd.path,
    headers,
    responseHeaderModifiers: rd.responseHeaderModifiers,
    mirrors: rd.mirrors,
  };
  if (rd.timeoutMs !== undefined) plan.timeoutMs = rd.timeoutMs;
  if (rd.backendTimeoutMs !== undefined) plan.backendTimeoutMs = rd.backendTimeoutMs;
  if (rd.retry) plan.retry = rd.retry;
  ctx.plan = plan;
  return undefined;
};

/** The steps every request goes through before forwarding. */
export const STEPS: readonly Step[] = [chooseEndpoint, admit, route];

/** Runs the steps in order; the first LocalReply ends the request. */
export async function decide(ctx: RequestContext, inputs: StepInputs): Promise<LocalReply | undefined> {
  for (const step of STEPS) {
    const r = await step(ctx, inputs);
    if (r) return r;
  }
  return undefined;
}
