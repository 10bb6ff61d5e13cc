/**
 * HTTPRoute retry (Gateway API HTTPRouteRetry): `attempts` is the number of retries after the first try,
 * `codes` the response codes retried, `backoff` the minimum wait between tries. Connection failures and
 * per-try (backendRequest) timeouts are always retried, as Envoy does for Istio; codes are retried only
 * when listed. The spec leaves defaults to the implementation: attempts default to 2 (Istio's), codes to none.
 */
import type { HttpRouteRule } from "../model/mod.ts";
import { parseGatewayDuration } from "./duration.ts";
import type { RetryPolicy } from "./types.ts";

const DEFAULT_ATTEMPTS = 2;

/** The retry policy of a rule, or undefined when the rule has none. */
export function retryPolicy(retry: HttpRouteRule["retry"]): RetryPolicy | undefined {
  if (!retry) return undefined;
  const policy: RetryPolicy = { attempts: Math.max(0, retry.attempts ?? DEFAULT_ATTEMPTS), codes: [...(retry.codes ?? [])] };
  const backoff = retry.backoff === undefined ? undefined : parseGatewayDuration(retry.backoff);
  if (backoff !== undefined && backoff > 0) policy.backoffMs = backoff;
  return policy;
}

/** How one try ended. */
export type TryOutcome = { status: number } | { connectionError: true } | { backendTimeout: true };

/**
 * Should the proxy try again after `retriesDone` retries ended with `outcome`? (The whole-request
 * timeout, if any, still bounds the sum of tries and backoffs; that clock is the proxy's.)
 *
 * @example
 * shouldRetry({ attempts: 2, codes: [503] }, 0, { status: 503 }) // true
 * shouldRetry({ attempts: 2, codes: [503] }, 2, { status: 503 }) // false: retries used up
 */
export function shouldRetry(policy: RetryPolicy | undefined, retriesDone: number, outcome: TryOutcome): boolean {
  if (!policy || retriesDone >= policy.attempts) return false;
  if ("connectionError" in outcome || "backendTimeout" in outcome) return true;
  return policy.codes.includes(outcome.status);
}
