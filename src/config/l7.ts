/**
 * Which AuthorizationPolicy attributes need L7 (HTTP) processing. The ztunnel sees connections, not
 * requests: it can check source identity, namespace, IP and destination port, nothing else. A rule that
 * names methods, paths, hosts, request principals (JWT), remote IPs (X-Forwarded-For) or request.*
 * conditions can only be enforced by a waypoint. (The same classification as src/policy/attributes.ts,
 * which evaluates them; config cannot import policy, so both follow Istio's ambient translation.)
 */
import type { PolicyRule } from "../model/types.ts";

const L7_SOURCE = ["requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"] as const;
const L7_OPERATION = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const;

/** Condition keys a ztunnel evaluates (trust domain derives from the peer identity). */
const L4_CONDITION_KEYS = new Set([
  "source.ip",
  "source.namespace",
  "source.principal",
  "source.trustDomain",
  "destination.ip",
  "destination.port",
]);
const L7_CONDITION_KEYS = new Set([
  "remote.ip",
  "connection.sni",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
]);

/** "l4", "l7", or "unknown" for a key no enforcement point understands (it fails closed everywhere). */
export function conditionKeyKind(key: string): "l4" | "l7" | "unknown" {
  if (L4_CONDITION_KEYS.has(key)) return "l4";
  if (L7_CONDITION_KEYS.has(key)) return "l7";
  if (/^request\.headers\[[^\]]+\]$/.test(key)) return "l7";
  if (/^request\.auth\.claims(\[[^\]]+\])+$/.test(key)) return "l7";
  return "unknown";
}

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
