/**
 * Which AuthorizationPolicy attributes need L7 (HTTP) processing. The ztunnel sees connections, not
 * requests: it can check source identity, namespace, IP and destination port, nothing else. A rule that
 * names methods, paths, hosts, request principals (JWT), remote IPs (X-Forwarded-For) or request.*
 * conditions can only be enforced by a waypoint. (The classification itself is src/model/attributes.ts, shared with the engine.)
 */
import type { PolicyRule } from "../model/mod.ts";
import { conditionKeyKind, L7_OPERATION_FIELDS as L7_OPERATION, L7_SOURCE_FIELDS as L7_SOURCE } from "../model/mod.ts";

export { conditionKeyKind };

export interface L7Attribute {
  /** e.g. "methods", "requestPrincipals", "request.auth.claims[iss]" */
  name: string;
  /** Path from the policy's `spec` to the attribute's key. */
  path: (string | number)[];
}

const set = (v: unknown) => Array.isArray(v) && v.length > 0;

/** Every L7 attribute in the rules, in document order (rule by rule: from, to, when). */
export function l7Attributes(rules: readonly PolicyRule[]): L7Attribute[] {
  const out: L7Attribute[] = [];
  rules.forEach((rule, r) => {
    rule.from?.forEach((f, i) => {
      for (const k of L7_SOURCE) if (set(f.source?.[k])) out.push({ name: k, path: ["rules", r, "from", i, "source", k] });
    });
    rule.to?.forEach((t, i) => {
      for (const k of L7_OPERATION) if (set(t.operation?.[k])) out.push({ name: k, path: ["rules", r, "to", i, "operation", k] });
    });
    rule.when?.forEach((c, i) => {
      // Any request.* key is about the HTTP request, known or not: only a waypoint could evaluate it.
      if (conditionKeyKind(c.key) === "l7" || c.key.startsWith("request.")) out.push({ name: c.key, path: ["rules", r, "when", i, "key"] });
    });
  });
  return out;
}

/** True when any rule needs a waypoint. */
export function hasL7(rules: readonly PolicyRule[]): boolean {
  return l7Attributes(rules).length > 0;
}
