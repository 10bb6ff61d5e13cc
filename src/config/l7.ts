/**
 * Which AuthorizationPolicy attributes need L7 (HTTP) processing. The ztunnel sees connections, not
 * requests: it can check source identity, namespace, IP and destination port, nothing else. A rule that
 * names methods, paths, hosts, request principals (JWT), remote IPs (X-Forwarded-For) or request.*
 * conditions can only be enforced by a waypoint.
 */
import type { PolicyRule } from "../model/types.ts";

const L7_SOURCE = ["requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"] as const;
const L7_OPERATION = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const;

/** Condition keys a ztunnel evaluates (Istio's ambient translation); every other key needs a waypoint. */
const L4_CONDITION_KEYS = new Set(["source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"]);

export interface L7Attribute {
  /** e.g. "methods", "requestPrincipals", "when request.auth.claims[iss]" */
  name: string;
  /** Path from the policy's `spec` to the attribute's key. */
  path: (string | number)[];
}

/** Every L7 attribute in the rules, in document order. */
export function l7Attributes(rules: readonly PolicyRule[]): L7Attribute[] {
  const out: L7Attribute[] = [];
  rules.forEach((rule, r) => {
    rule.from?.forEach((f, i) => {
      for (const k of L7_SOURCE) {
        if (f.source[k] !== undefined) out.push({ name: k, path: ["rules", r, "from", i, "source", k] });
      }
    });
    rule.to?.forEach((t, i) => {
      for (const k of L7_OPERATION) {
        if (t.operation[k] !== undefined) out.push({ name: k, path: ["rules", r, "to", i, "operation", k] });
      }
    });
    rule.when?.forEach((c, i) => {
      if (!L4_CONDITION_KEYS.has(c.key)) out.push({ name: `when ${c.key}`, path: ["rules", r, "when", i, "key"] });
    });
  });
  return out;
}

/** True when any rule needs a waypoint. */
export function hasL7(rules: readonly PolicyRule[]): boolean {
  return l7Attributes(rules).length > 0;
}
