/**
 * Which AuthorizationPolicy attributes exist at L4 (the ztunnel sees only the connection) and which need
 * L7 (HTTP, end-user authentication). Follows istio pilot ambient/authorization.go: at L4 only
 * principals, namespaces, serviceAccounts, ipBlocks (and their not- forms), ports, and the conditions
 * source.ip, source.namespace, source.principal, destination.ip, destination.port. trustDomains and
 * source.trustDomain derive from the peer identity, so they are L4 too. One classification for the
 * linter (src/config) and the engine (src/policy), so `mesh check` and the proxies never disagree.
 */

export const L7_SOURCE_FIELDS = [
  "requestPrincipals",
  "notRequestPrincipals",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;

export const L7_OPERATION_FIELDS = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const;

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

export type ConditionKeyKind = "l4" | "l7" | "unknown";

/** Classify a `when` key. Unknown keys (typos, experimental.* filters we don't implement) are "unknown". */
export function conditionKeyKind(key: string): ConditionKeyKind {
  if (L4_CONDITION_KEYS.has(key)) return "l4";
  if (L7_CONDITION_KEYS.has(key)) return "l7";
  if (/^request\.headers\[[^\]]+\]$/.test(key)) return "l7";
  if (/^request\.auth\.claims(\[[^\]]+\])+$/.test(key)) return "l7";
  return "unknown";
}
