/**
 * The answers the waypoint gives itself, worded as Istio's Envoy waypoint words them so clients and
 * runbooks see familiar text: `RBAC: access denied` (403), the jwt_authn error with a WWW-Authenticate
 * challenge (401), `no healthy upstream` (503), `upstream request timeout` (504). For gRPC clients the
 * same answers are trailers-only responses with the matching grpc-status (as Envoy maps them).
 */
import type { LocalReply } from "./context.ts";

export function accessDenied(details: string): LocalReply {
  return { status: 403, body: "RBAC: access denied", flags: "-", details };
}

/** A token that failed RequestAuthentication: 401 (403 for a disallowed audience, as Envoy). */
export function unauthenticated(status: 401 | 403, error: string, realm: string): LocalReply {
  return {
    status,
    body: error,
    headers: [["www-authenticate", `Bearer realm="${realm.replace(/["\\\r\n]/g, "")}", error="invalid_token"`]],
    flags: "-",
    details: `jwt_authn_access_denied{${error}}`,
  };
}

export function noRoute(details: string): LocalReply {
  return { status: 404, body: "", flags: "NR", details };
}

export function routeError(status: number, details: string): LocalReply {
  return { status, body: "", flags: "-", details };
}

export function redirect(status: number, location: string, headers: [string, string][], details: string): LocalReply {
  return { status, body: "", headers: [["location", location], ...headers], flags: "-", details };
}

/** The waypoint cannot decide (its Gateway left the configuration): nothing is forwarded. */
export function notServing(details: string): LocalReply {
  return { status: 503, body: "no healthy upstream", flags: "UH", details };
}

export function noHealthyUpstream(details: string): LocalReply {
  return { status: 503, body: "no healthy upstream", flags: "UH", details };
}

/** The connection to the endpoint failed or was refused (its ztunnel answered 401/503, or a reset). */
export function upstreamFailure(flags: string, details: string): LocalReply {
  return { status: 503, body: "upstream connect error or disconnect/reset before headers", flags, details };
}

export function upstreamTimeout(details: string): LocalReply {
  return { status: 504, body: "upstream request timeout", flags: "UT", details };
}

export function badUpstreamResponse(details: string): LocalReply {
  return { status: 502, body: "upstream sent an invalid response", flags: "UPE", details };
}

/** grpc-status for an HTTP status of a local reply (Envoy's mapping, grpc/doc/http-grpc-status-mapping). */
export function grpcStatusOf(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}
