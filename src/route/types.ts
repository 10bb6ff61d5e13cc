/**
 * Inputs and outputs of the HTTP route engine. Plain JSON-serializable data, so `mesh explain` can print a
 * decision as-is and the waypoint can act on it without knowing how it was reached.
 */
import type {
  HttpHeaderModifier,
  HttpRoute,
  HttpRouteFilter,
  HttpRouteMatch,
  ReferenceGrant,
  Service,
  SourceRef,
} from "../model/mod.ts";

/** Header names lower-cased; each value of a repeated header kept, in order. */
export type HeaderMap = Record<string, string[]>;

/** One HTTP request as the waypoint sees it, before routing. */
export interface RouteRequest {
  method: string;
  /** The request target: path with its query string ("/a/b?x=1"). */
  path: string;
  /** Host header or :authority, possibly with a port ("product-api:8000"). */
  host: string;
  /** Header names in any case; repeated headers as arrays. */
  headers: Record<string, string | string[]>;
  /** Scheme the client used, inherited by redirects without their own scheme. Default "http". */
  scheme?: string;
}

/** Everything `routeRequest` needs; no I/O happens behind any of it. */
export interface RouteInput {
  /** Every HTTPRoute known (the engine picks those attached to `service` and `port`). */
  routes: HttpRoute[];
  /** The destination Service the client addressed (its frontend: VIP or name). */
  service: Service;
  /** The Service port the client addressed. Also the "listener port" redirects fall back to. */
  port: number;
  request: RouteRequest;
  /** Service lookup for backendRefs and mirrors. */
  services: (namespace: string, name: string) => Service | undefined;
  /** ReferenceGrants that allow cross-namespace backendRefs. Absent: none. */
  referenceGrants?: ReferenceGrant[];
  /**
   * Namespace of the calling workload. GAMMA consumer routes (routes in this namespace attached to a
   * Service of another namespace) replace the producer routes for such callers. Absent: producer routes only.
   */
  sourceNamespace?: string;
  /** Uniform [0, 1) source for weighted backends and fractional mirrors. Default Math.random. */
  random?: () => number;
}

/** The route, rule and match that decided. */
export interface MatchedRoute {
  namespace: string;
  name: string;
  ruleIndex: number;
  ruleName?: string;
  matchIndex: number;
  /** The match (with defaults filled in) that selected the rule. */
  match: HttpRouteMatch;
  source?: SourceRef;
}

/** A Service port to send to. */
export interface BackendTarget {
  namespace: string;
  name: string;
  port: number;
}

/** A copy of the request to send and forget; its response is discarded. */
export interface MirrorTarget extends BackendTarget {
  /** Configured share of requests mirrored (100 when unset); this request was sampled in. */
  percent: number;
}

/** Retries of one backend request. */
export interface RetryPolicy {
  /** Retries after the first try (Gateway API `attempts`); total tries = attempts + 1. */
  attempts: number;
  /** Response codes that are retried. Connection errors and backend timeouts always are. */
  codes: number[];
  /** Minimum wait between tries. */
  backoffMs?: number;
}

/** A filter that took part in the decision, in the order applied. */
export interface AppliedFilter {
  type: HttpRouteFilter["type"];
  /** Declared on the rule, or on the chosen backendRef. */
  level: "rule" | "backend";
  filter: HttpRouteFilter;
}

interface DecisionBase {
  /**
   * route: a rule matched. default: no HTTPRoute is attached to this Service port, so the request goes
   * to the Service itself. none: routes are attached but no rule matched (404, as GAMMA requires).
   */
  via: "route" | "default" | "none";
  route?: MatchedRoute;
  filters: AppliedFilter[];
}

/** Send the request (as rewritten) to `backend`. */
export interface ForwardDecision extends DecisionBase {
  kind: "forward";
  backend: BackendTarget;
  /** Host / :authority to send. */
  host: string;
  /** Path with query to send. */
  path: string;
  /** The complete request header set after every filter. */
  requestHeaders: HeaderMap;
  /** To apply, in order, to the backend's response headers (see applyHeaderModifier). */
  responseHeaderModifiers: HttpHeaderModifier[];
  mirrors: MirrorTarget[];
  /** Whole-request deadline, retries included; absent: none. */
  timeoutMs?: number;
  /** Deadline of each try to the backend; absent: none. */
  backendTimeoutMs?: number;
  /** Absent: the rule configures no retry (the proxy may apply its default). */
  retry?: RetryPolicy;
}

/** Answer the client with a redirect; nothing is sent to a backend. */
export interface RedirectDecision extends DecisionBase {
  kind: "redirect";
  status: number;
  location: string;
  responseHeaderModifiers: HttpHeaderModifier[];
}

/** Answer the client with an error status. */
export interface ErrorDecision extends DecisionBase {
  kind: "error";
  status: 404 | 500;
  reason: string;
}

/** What the waypoint does with one request. */
export type RouteDecision = ForwardDecision | RedirectDecision | ErrorDecision;
