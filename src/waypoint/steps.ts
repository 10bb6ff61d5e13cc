/**
 * The request path before forwarding, one small step each, in the order `mesh explain` follows
 * (src/explain): pick the endpoint of the addressed Service, authenticate the token and authorize the
 * request for that endpoint (src/policy admitRequest), then route (src/route routeRequest). A step either
 * lets the request go on (undefined) or answers it (a LocalReply).
 */
import type { HttpHeaderModifier } from "../model/mod.ts";
import type { HeaderMap } from "../route/mod.ts";
import { applyHeaderModifier, routeRequest } from "../route/mod.ts";
import { admitRequest, type KeyResolver, type VerifiedTokens } from "../policy/mod.ts";
import type { ForwardPlan, LocalReply, RequestContext } from "./context.ts";
import { accessDenied, noRoute, redirect, routeError, unauthenticated } from "./local_reply.ts";
import type { WaypointState } from "./state.ts";

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
  if (d.service) ctx.endpoint = state.pickEndpoint(d.service, d.port);
  else if (d.workload) ctx.endpoint = { workload: d.workload, ip: d.ip, port: d.port };
  return undefined;
};

/** RequestAuthentication then AuthorizationPolicy: 401 for a bad token, 403 when denied. */
export const admit: Step = async (ctx, { state, keys, tokens, now }) => {
  const waypoint = state.waypoint!;
  const d = ctx.tunnel.destination;
  const admission = await admitRequest(
    state.index,
    waypoint,
    { workload: ctx.endpoint?.workload, service: d.service },
    {
      source: { principal: ctx.tunnel.peerIdentity, ip: ctx.tunnel.sourceIp },
      destination: { ip: ctx.endpoint?.ip, port: ctx.endpoint?.port ?? d.port },
      http: { method: ctx.method, path: ctx.path, host: ctx.host, headers: ctx.headers },
    },
    keys,
    now?.(),
    tokens,
  );
  ctx.admission = admission;
  if (admission.status === 401 || (admission.status === 403 && !admission.decision)) {
    const authn = admission.authn;
    const error = authn.status === "invalid" ? authn.error : admission.reason;
    const q = ctx.path.indexOf("?");
    return unauthenticated(admission.status, error, `http://${ctx.host}${q >= 0 ? ctx.path.slice(0, q) : ctx.path}`);
  }
  if (admission.status === 403) return accessDenied(`rbac_access_denied: ${admission.reason}`);
  if (admission.stripHeaders.length || Object.keys(admission.addHeaders).length) {
    const h: HeaderMap = { ...ctx.headers };
    for (const name of admission.stripHeaders) delete h[name];
    for (const [name, value] of Object.entries(admission.addHeaders)) h[name] = [value];
    ctx.headers = h;
  }
  return undefined;
};

/** A redirect's response headers: the route's ResponseHeaderModifiers applied to none. */
function locationHeaders(mods: HttpHeaderModifier[]): [string, string][] {
  let h: HeaderMap = {};
  for (const m of mods) h = applyHeaderModifier(h, m);
  const out: [string, string][] = [];
  for (const [k, vs] of Object.entries(h)) for (const v of vs) out.push([k, v]);
  return out;
}

/** HTTPRoute: forward (with the rewritten request), redirect, or 404/500. Sets ctx.plan. */
export const route: Step = (ctx, { state }) => {
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
  const rd = routeRequest(
    {
      routes: index.model.httpRoutes,
      service: d.service,
      port: d.port,
      request: { method: ctx.method, path: ctx.path, host: ctx.host, headers: ctx.headers },
      services: (ns, n) => index.serviceByName(ns, n),
      referenceGrants: index.model.referenceGrants ?? [],
    },
    state.routes(d.service, d.port),
  );
  if (rd.route) ctx.routeName = `${rd.route.namespace}/${rd.route.name}`;
  if (rd.kind === "error") return rd.status === 404 ? noRoute(rd.reason) : routeError(rd.status, rd.reason);
  if (rd.kind === "redirect") {
    return redirect(rd.status, rd.location, locationHeaders(rd.responseHeaderModifiers), `redirect to ${rd.location}`);
  }
  const svc = index.serviceByName(rd.backend.namespace, rd.backend.name);
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
  const plan: ForwardPlan = {
    service: svc,
    port: rd.backend.port,
    endpoint: same ? ctx.endpoint : undefined,
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
