/**
 * Where one AuthorizationPolicy that applies to a destination is enforced. `mesh check` (config lint), the
 * placement the proxies run (policy) and therefore `mesh explain`/`describe` all ask this one function, so
 * they cannot disagree about a policy that has no proxy able to enforce it.
 *
 * - A waypoint serves the destination: the waypoint enforces the policy, whatever its scope and attributes.
 * - No waypoint serves it (none bound, the bound one does not exist, or it is not reachable yet):
 *   - dry-run and AUDIT policies never change a decision: ignored;
 *   - a targetRefs policy was written for a waypoint (it names a Service or a Gateway, which only a
 *     waypoint sees); the destination ztunnel cannot tell which Service a client addressed, so it cannot
 *     apply the policy as written. Dropping it would leave an ALLOW meant to restrict the Service open:
 *     the ztunnel of every workload behind the Service denies every connection instead (fail closed);
 *   - a policy with L7 attributes: the ztunnel sees no HTTP, fail closed as well (ALLOW and DENY alike);
 *   - any other policy is L4 and the destination ztunnel enforces it.
 * Istio instead ignores unserved targetRefs policies and strips L7 rules at the ztunnel, which silently
 * changes what the author wrote.
 */
import type { AuthorizationPolicy } from "./types.ts";

export type PolicyEnforcement =
  | { at: "waypoint" }
  | { at: "ztunnel" }
  | { at: "ignored" }
  | { at: "fail-closed"; because: "l7" | "targetRefs" };

export function policyEnforcement(
  policy: Pick<AuthorizationPolicy, "action" | "dryRun" | "hasL7" | "scope">,
  servedByWaypoint: boolean,
): PolicyEnforcement {
  if (servedByWaypoint) return { at: "waypoint" };
  if (policy.dryRun || policy.action === "AUDIT") return { at: "ignored" };
  if (policy.scope.kind === "targetRefs") return { at: "fail-closed", because: "targetRefs" };
  if (policy.hasL7) return { at: "fail-closed", because: "l7" };
  return { at: "ztunnel" };
}
