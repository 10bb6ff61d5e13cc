/**
 * What authorization sees of one connection or request, and what it answers. Plain data so `mesh
 * explain`, the ztunnel and the waypoint build it the same way.
 */

/** The authenticated end user (from RequestAuthentication), as Istio's request.auth.* attributes. */
export interface RequestAuth {
  /** "<iss>/<sub>" */
  principal?: string;
  /** The verified JWT payload. */
  claims?: Record<string, unknown>;
  /** The token's `aud` (a string claim becomes a one-element list). */
  audiences?: string[];
  /** The token's `azp`. */
  presenter?: string;
  /** Extra claims split on spaces for matching (the rule's spaceDelimitedClaims); "scope" and "permission" always are. */
  spaceDelimitedClaims?: string[];
}

export interface AuthzRequest {
  source: {
    /** The peer address of the connection. */
    ip?: string;
    /**
     * The peer's mTLS identity, "spiffe://<td>/ns/<ns>/sa/<sa>"; absent for plaintext. At a waypoint this is
     * the ORIGINAL client's identity. source.namespace, serviceAccounts and trustDomains derive from it.
     */
    principal?: string;
    /** remote.ip / remoteIpBlocks: the original client address (X-Forwarded-For); defaults to `ip`. */
    remoteIp?: string;
    /**
     * The socket peer's own address when `ip` is the client's address a waypoint forwarded: what the
     * destination ztunnel checks against the waypoint's addresses. Defaults to `ip`.
     */
    peerIp?: string;
  };
  destination: {
    /** The destination workload address (after service resolution). */
    ip?: string;
    /** The destination workload port (targetPort), what `operation.ports` and destination.port compare. */
    port: number;
  };
  /** Present when the enforcement point sees HTTP (the waypoint). Absent: an L4 connection. */
  http?: {
    method: string;
    /** The request target as received (query string allowed; it is normalized before matching). */
    path: string;
    /** :authority / Host */
    host: string;
    /** Lower-case header names. */
    headers: Record<string, string | string[]>;
  };
  /** Request authentication result; absent (at L7) means no token was presented. */
  auth?: RequestAuth;
  /** connection.sni, when the connection carried one. */
  sni?: string;
}

export type PolicyAction = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

export interface AuthzDecision {
  allowed: boolean;
  /** "namespace/name" of the policy that decided, if one did. */
  policy?: string;
  action?: PolicyAction;
  /** Index of the matching rule within that policy. */
  ruleIndex?: number;
  /** Human-readable: which policy and rule decided, or why none did. */
  reason: string;
  /** AUDIT policies that matched ("ns/name"). */
  audited?: string[];
  /** Dry-run policies that matched, with what they would have done ("ALLOW ns/name"). */
  dryRun?: string[];
  /** Things an operator should know: unknown condition keys, unsupported actions, attributes unavailable here. */
  warnings?: string[];
}

/** "ns/name" */
export function policyKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}
