/**
 * A waypoint's security decision for one HTTP request, in the order Envoy applies it: request
 * authentication (a present but invalid token answers 401, or 403 for a disallowed audience), then
 * authorization with the authenticated principal (403 when denied). The same function serves the
 * waypoint and `mesh explain`; key fetching is injected, so it does no I/O of its own.
 */
import type { JwtRule, ModelIndex, Service, ServiceEntry, Waypoint, Workload } from "../model/mod.ts";
import { requestAuthenticationsFor } from "../model/mod.ts";
import type { AuthnResult, KeyResolver, VerifiedTokens } from "./jwt.ts";
import { authenticate } from "./jwt.ts";
import type { EnforcedDecision } from "./placement.ts";
import { authorizeAtWaypoint } from "./placement.ts";
import type { AuthzRequest } from "./request.ts";

export interface Admission {
  /** 200: forward; 401: bad token; 403: denied. */
  status: 200 | 401 | 403;
  authn: AuthnResult;
  /** Absent when authentication already refused the request. */
  decision?: EnforcedDecision;
  /** Headers to remove before forwarding (token headers unless forwardOriginalToken). */
  stripHeaders: string[];
  /** Headers to add before forwarding (outputPayloadToHeader, outputClaimToHeaders). */
  addHeaders: Record<string, string>;
  /** One line for logs and explain. */
  reason: string;
}

/** The jwtRules of every RequestAuthentication that applies at this waypoint for this destination (combined, as Istio does). */
export function jwtRulesFor(
  index: ModelIndex,
  waypoint: Waypoint,
  dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry },
): JwtRule[] {
  return requestAuthenticationsFor(index, { ...dest, waypoint }).flatMap((r) => r.jwtRules);
}

/**
 * Authenticate then authorize one request at `waypoint`. `req.http` is required; `req.auth` is filled
 * from the token. `keys` resolves each rule's key set (inlineKeySet for inline jwks; a fetched set for jwksUri).
 * `verified`: an optional cache of tokens whose signature already checked out (the waypoint's).
 */
export async function admitRequest(
  index: ModelIndex,
  waypoint: Waypoint,
  dest: { workload?: Workload; service?: Service; serviceEntry?: ServiceEntry },
  req: AuthzRequest & { http: NonNullable<AuthzRequest["http"]> },
  keys: KeyResolver,
  now?: Date,
  verified?: VerifiedTokens,
): Promise<Admission> {
  const rules = jwtRulesFor(index, waypoint, dest);
  const q = req.http.path.indexOf("?");
  const query = new URLSearchParams(q >= 0 ? req.http.path.slice(q + 1).split("#")[0] : "");
  const authn = await authenticate(
    rules,
    { headers: req.http.headers, query, method: req.http.method },
    keys,
    now,
    verified,
  );
  if (authn.status === "invalid") {
    return {
      status: authn.httpStatus,
      authn,
      stripHeaders: [],
      addHeaders: {},
      reason: `request authentication failed: ${authn.error}`,
    };
  }
  const authed: AuthzRequest = { ...req, auth: authn.status === "ok" ? authn.auth : undefined };
  const decision = authorizeAtWaypoint(index, waypoint, dest, authed);
  return {
    status: decision.allowed ? 200 : 403,
    authn,
    decision,
    stripHeaders: authn.status === "ok" ? authn.stripHeaders : [],
    addHeaders: authn.status === "ok" ? authn.addHeaders : {},
    reason: decision.reason,
  };
}
