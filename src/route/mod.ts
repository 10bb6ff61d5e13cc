/**
 * HTTP routing for waypoints: Gateway API HTTPRoutes attached to Services (GAMMA), evaluated per request
 * into a decision (forward, redirect, error) that the waypoint carries out and `mesh explain` prints.
 * Pure: no I/O, no runtime-specific API.
 */
export type {
  AppliedFilter,
  BackendTarget,
  ErrorDecision,
  ForwardDecision,
  HeaderMap,
  MatchedRoute,
  MirrorTarget,
  RedirectDecision,
  RetryPolicy,
  RouteDecision,
  RouteInput,
  RouteRequest,
} from "./types.ts";
export { type CompiledRoutes, compileRoutes, routeRequest } from "./engine.ts";
export { parentRefAttaches, routesForService, routesForServiceEntry } from "./attach.ts";
export { applyHeaderModifier, headerValue, normalizeHeaders } from "./headers.ts";
export {
  fullMatchRegex,
  hostnameMatches,
  hostnameOf,
  matchableRequest,
  type MatchableRequest,
  matchRequest,
  pathMatches,
  splitTarget,
} from "./match.ts";
export { type RouteCandidate } from "./precedence.ts";
export { modifyPath, redirectLocation, replacePrefix } from "./rewrite.ts";
export { pickWeighted, referencePermitted, type ResolvedBackend, resolveBackend } from "./backend.ts";
export { parseGatewayDuration, timeoutMs } from "./duration.ts";
export { retryPolicy, shouldRetry, type TryOutcome } from "./retry.ts";
