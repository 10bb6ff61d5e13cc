/**
 * routeRequest: one request in, one RouteDecision out. Pure: the caller supplies the routes, the Service
 * lookup and the random source, and performs the decision (forward, redirect or error) itself.
 *
 * Order of work for a matched rule (Gateway API): the rule's filters in list order, then the backend is
 * chosen by weight, then that backendRef's own filters in list order. A RequestRedirect answers the
 * client and needs no backend. A rule without backendRefs, a chosen backend that is invalid, or a filter
 * this engine cannot apply all give 500; a filter is never skipped.
 */
import type { HttpHeaderModifier, HttpRoute, HttpRouteFilter, Service } from "../model/mod.ts";
import { routesForService } from "./attach.ts";
import { pickWeighted, resolveBackend } from "./backend.ts";
import { timeoutMs } from "./duration.ts";
import { applyHeaderModifier, normalizeHeaders } from "./headers.ts";
import { hostnameOf, matchableRequest, matchRequest } from "./match.ts";
import { candidatesForHost, orderCandidates, type RouteCandidate } from "./precedence.ts";
import { retryPolicy } from "./retry.ts";
import { modifyPath, redirectLocation } from "./rewrite.ts";
import type {
  AppliedFilter,
  HeaderMap,
  MatchedRoute,
  MirrorTarget,
  RouteDecision,
  RouteInput,
} from "./types.ts";

/** The routes of one Service port, pre-ordered: build once per configuration, reuse for every request. */
export interface CompiledRoutes {
  service: { namespace: string; name: string };
  port: number;
  sourceNamespace?: string;
  routes: HttpRoute[];
  candidates: RouteCandidate[];
}

/**
 * Selects and orders the routes for `service` port `port` (see routesForService), so that routeRequest
 * does no sorting per request.
 */
export function compileRoutes(
  routes: HttpRoute[],
  service: Service,
  port: number,
  options: { sourceNamespace?: string } = {},
): CompiledRoutes {
  const attached = routesForService(routes, service, port, options);
  return {
    service: { namespace: service.namespace, name: service.name },
    port,
    sourceNamespace: options.sourceNamespace,
    routes: attached,
    candidates: orderCandidates(attached),
  };
}

/**
 * Decides what happens to one request addressed to `input.service` on `input.port`.
 *
 * - No HTTPRoute attached to that Service port: forward unchanged to the Service (`via: "default"`).
 * - Routes attached, no rule matches: 404 (`via: "none"`).
 * - A rule matches: its filters and backend decide (`via: "route"`): forward, redirect, or 500.
 *
 * `compiled`, when given (from compileRoutes for the same Service, port and caller namespace), replaces
 * `input.routes`.
 *
 * @example
 * const d = routeRequest({ routes, service, port: 8000, services: (ns, n) => index.serviceByName(ns, n),
 *   request: { method: "GET", path: "/get", host: "product-api:8000", headers: {} } });
 * if (d.kind === "forward") console.log(d.backend.name, d.path);
 */
export function routeRequest(input: RouteInput, compiled?: CompiledRoutes): RouteDecision {
  const table = compiled ?? compileRoutes(input.routes, input.service, input.port, {
    sourceNamespace: input.sourceNamespace,
  });
  const headers = normalizeHeaders(input.request.headers);
  if (table.routes.length === 0) {
    return {
      kind: "forward",
      via: "default",
      filters: [],
      backend: { namespace: input.service.namespace, name: input.service.name, port: input.port },
      host: input.request.host,
      path: input.request.path,
      requestHeaders: headers,
      responseHeaderModifiers: [],
      mirrors: [],
    };
  }
  const req = matchableRequest(input.request, headers);
  const hit = candidatesForHost(table.candidates, req.hostname).find((c) => matchRequest(c.match, req));
  if (!hit) {
    return {
      kind: "error",
      via: "none",
      filters: [],
      status: 404,
      reason: `no rule of the HTTPRoutes attached to ${input.service.namespace}/${input.service.name}:${input.port} ` +
        `(${table.routes.map((r) => `${r.namespace}/${r.name}`).join(", ")}) matches ${input.request.method} ${input.request.path}`,
    };
  }
  return decideRule(hit, input, req.path, req.query, headers);
}

interface RuleState {
  headers: HeaderMap;
  host: string;
  path: string;
  responseMods: HttpHeaderModifier[];
  mirrors: MirrorTarget[];
  redirect?: { status: number; location: string };
  filters: AppliedFilter[];
}

function decideRule(
  c: RouteCandidate,
  input: RouteInput,
  path: string,
  query: string,
  headers: HeaderMap,
): RouteDecision {
  const route: MatchedRoute = {
    namespace: c.route.namespace,
    name: c.route.name,
    ruleIndex: c.ruleIndex,
    matchIndex: c.matchIndex,
    match: c.match,
  };
  if (c.rule.name !== undefined) route.ruleName = c.rule.name;
  if (c.route.source) route.source = c.route.source;
  const random = input.random ?? Math.random;
  const st: RuleState = { headers, host: input.request.host, path, responseMods: [], mirrors: [], filters: [] };
  const fail = (reason: string): RouteDecision => ({
    kind: "error",
    via: "route",
    route,
    filters: st.filters,
    status: 500,
    reason,
  });
  const redirectOrUndefined = (): RouteDecision | undefined =>
    st.redirect
      ? {
        kind: "redirect",
        via: "route",
        route,
        filters: st.filters,
        status: st.redirect.status,
        location: st.redirect.location,
        responseHeaderModifiers: st.responseMods,
      }
      : undefined;

  const ctx: FilterContext = { c, input, query, random };
  const ruleErr = applyFilters(c.rule.filters, "rule", st, ctx);
  if (ruleErr) return fail(ruleErr);
  const ruleRedirect = redirectOrUndefined();
  if (ruleRedirect) return ruleRedirect;

  const refs = c.rule.backendRefs;
  if (refs.length === 0) return fail(`rule ${c.ruleIndex} of ${c.route.namespace}/${c.route.name} has no backendRefs`);
  const idx = pickWeighted(refs, random);
  if (idx < 0) return fail(`every backendRef of rule ${c.ruleIndex} of ${c.route.namespace}/${c.route.name} has weight 0`);
  const ref = refs[idx]!;
  const resolved = resolveBackend(ref, c.route.namespace, input.services, input.referenceGrants ?? [], input.service);
  if (!resolved.ok) return fail(resolved.reason);

  const backendErr = applyFilters(ref.filters ?? [], "backend", st, ctx);
  if (backendErr) return fail(backendErr);
  const backendRedirect = redirectOrUndefined();
  if (backendRedirect) return backendRedirect;

  // An HTTP/1 Host header in the set must agree with a rewritten host.
  if (st.headers["host"] && st.host !== input.request.host) st.headers = { ...st.headers, host: [st.host] };
  const decision: RouteDecision = {
    kind: "forward",
    via: "route",
    route,
    filters: st.filters,
    backend: resolved.target,
    host: st.host,
    path: st.path + (query === "" ? "" : `?${query}`),
    requestHeaders: st.headers,
    responseHeaderModifiers: st.responseMods,
    mirrors: st.mirrors,
  };
  const total = timeoutMs(c.rule.timeouts?.request);
  const perTry = timeoutMs(c.rule.timeouts?.backendRequest);
  if (total !== undefined) decision.timeoutMs = total;
  if (perTry !== undefined) decision.backendTimeoutMs = perTry;
  const retry = retryPolicy(c.rule.retry);
  if (retry) decision.retry = retry;
  return decision;
}

interface FilterContext {
  c: RouteCandidate;
  input: RouteInput;
  query: string;
  random: () => number;
}

/** Applies filters in order; returns an error reason, or undefined. */
function applyFilters(
  filters: HttpRouteFilter[],
  level: "rule" | "backend",
  st: RuleState,
  ctx: FilterContext,
): string | undefined {
  for (const f of filters) {
    st.filters.push({ type: f.type, level, filter: f });
    switch (f.type) {
      case "RequestHeaderModifier":
        st.headers = applyHeaderModifier(st.headers, f.requestHeaderModifier);
        break;
      case "ResponseHeaderModifier":
        st.responseMods.push(f.responseHeaderModifier);
        break;
      case "URLRewrite": {
        const rw = f.urlRewrite;
        if (rw.hostname !== undefined) st.host = rw.hostname;
        if (rw.path) {
          const r = modifyPath(st.path, rw.path, ctx.c.match.path!);
          if ("error" in r) return `URLRewrite: ${r.error}`;
          st.path = r.path;
        }
        break;
      }
      case "RequestRedirect": {
        const rr = f.requestRedirect;
        let newPath: string | undefined;
        if (rr.path) {
          const r = modifyPath(st.path, rr.path, ctx.c.match.path!);
          if ("error" in r) return `RequestRedirect: ${r.error}`;
          newPath = r.path;
        }
        const location = redirectLocation(
          {
            scheme: ctx.input.request.scheme ?? "http",
            hostname: hostnameOf(ctx.input.request.host),
            listenerPort: ctx.input.port,
            path: st.path,
            query: ctx.query,
          },
          { scheme: rr.scheme, hostname: rr.hostname, port: rr.port, path: newPath },
        );
        st.redirect = { status: rr.statusCode ?? 302, location };
        break;
      }
      case "RequestMirror": {
        const m = f.requestMirror;
        const resolved = resolveBackend(
          m.backendRef,
          ctx.c.route.namespace,
          ctx.input.services,
          ctx.input.referenceGrants ?? [],
          ctx.input.service,
        );
        const percent = mirrorPercent(m);
        // An unusable mirror backend only loses the copy; the request itself is unaffected.
        if (!resolved.ok || percent <= 0) break;
        if (percent >= 100 || ctx.random() * 100 < percent) st.mirrors.push({ ...resolved.target, percent });
        break;
      }
      default:
        return `filter type "${(f as { type: string }).type}" is not supported by this mesh; refusing rather than skipping it`;
    }
  }
  return undefined;
}

function mirrorPercent(m: { percent?: number; fraction?: { numerator: number; denominator?: number } }): number {
  if (m.percent !== undefined) return m.percent;
  if (m.fraction) {
    const d = m.fraction.denominator ?? 100;
    return d > 0 ? (m.fraction.numerator / d) * 100 : 0;
  }
  return 100;
}
