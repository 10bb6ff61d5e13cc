/**
 * Which AuthorizationPolicy attributes exist at L4 (the ztunnel sees only the connection) and which need
 * L7 (HTTP, end-user authentication). Follows istio pilot ambient/authorization.go: at L4 only
 * principals, namespaces, serviceAccounts, ipBlocks (and their not- forms), ports, and the conditions
 * source.ip, source.namespace, source.principal, destination.ip, destination.port. trustDomains and
 * source.trustDomain derive from the peer identity, so they are L4 too.
 */
import type { AuthorizationPolicy, PolicyCondition, PolicyRule } from "../model/mod.ts";

export { conditionKeyKind, type ConditionKeyKind, L7_OPERATION_FIELDS, L7_SOURCE_FIELDS } from "../model/mod.ts";
import { conditionKeyKind, L7_OPERATION_FIELDS, L7_SOURCE_FIELDS } from "../model/mod.ts";

function nonEmpty(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/** The L7 attributes a rule uses, by name (e.g. "methods", "request.headers[x-token]"). */
export function ruleL7Attributes(rule: PolicyRule): string[] {
  const out = new Set<string>();
  for (const f of rule.from ?? []) {
    for (const k of L7_SOURCE_FIELDS) if (nonEmpty(f.source?.[k])) out.add(k);
  }
  for (const t of rule.to ?? []) {
    for (const k of L7_OPERATION_FIELDS) if (nonEmpty(t.operation?.[k])) out.add(k);
  }
  for (const c of rule.when ?? []) if (conditionKeyKind(c.key) === "l7") out.add(c.key);
  return [...out];
}

/** The L7 attributes any rule of the policy uses; empty when the policy is enforceable at L4. */
export function policyL7Attributes(policy: Pick<AuthorizationPolicy, "rules">): string[] {
  const out = new Set<string>();
  for (const r of policy.rules ?? []) for (const a of ruleL7Attributes(r)) out.add(a);
  return [...out];
}

/** True when the policy needs a waypoint (it uses HTTP or end-user attributes). */
export function policyHasL7(policy: Pick<AuthorizationPolicy, "rules">): boolean {
  return policyL7Attributes(policy).length > 0;
}

/** Condition keys this engine does not know, for lint and warnings. */
export function unknownConditionKeys(policy: Pick<AuthorizationPolicy, "rules">): string[] {
  const out = new Set<string>();
  for (const r of policy.rules ?? []) {
    for (const c of (r.when ?? []) as PolicyCondition[]) if (conditionKeyKind(c.key) === "unknown") out.add(c.key);
  }
  return [...out];
}
