/**
 * Who is calling the control plane: a ztunnel (by node name), a waypoint (by its Gateway) or an operator
 * (admin). A caller is proven by a bootstrap token (./token.ts) or by a control-plane client certificate
 * (CertificateAuthority.issueClientCertificate) whose single URI SAN has one of these forms:
 *
 *   spiffe://<trustDomain>/mesh/node/<node>
 *   spiffe://<trustDomain>/mesh/gateway/<namespace>/<name>
 *   spiffe://<trustDomain>/mesh/admin
 *
 * The /mesh/ prefix can never collide with a workload identity (/ns/<ns>/sa/<sa>).
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import { pathError, trustDomainError, trySpiffeId } from "../model/mod.ts";

/** A control-plane caller. */
export type Caller =
  | { kind: "node"; node: string }
  | { kind: "gateway"; namespace: string; name: string }
  | { kind: "admin" };

/** "node/worker-a", "gateway/shop/inventory-waypoint", "admin": for log lines and error messages. */
export function describeCaller(c: Caller): string {
  switch (c.kind) {
    case "node":
      return `node/${c.node}`;
    case "gateway":
      return `gateway/${c.namespace}/${c.name}`;
    case "admin":
      return "admin";
  }
}

/**
 * The SPIFFE URI that names a caller in its control-plane client certificate.
 * @throws MeshError (MESH_IDENTITY_INVALID) if a name cannot be a SPIFFE path segment.
 * @example callerIdentity("cluster.local", { kind: "node", node: "worker-a" }) // "spiffe://cluster.local/mesh/node/worker-a"
 */
export function callerIdentity(trustDomain: string, c: Caller): string {
  const tdErr = trustDomainError(trustDomain);
  if (tdErr) throw new MeshError(ErrorCode.IdentityInvalid, `Invalid trust domain "${trustDomain}": ${tdErr}`);
  const path = c.kind === "node" ? `/mesh/node/${c.node}` : c.kind === "gateway" ? `/mesh/gateway/${c.namespace}/${c.name}` : "/mesh/admin";
  const pErr = pathError(path);
  if (pErr || (c.kind === "node" && c.node.includes("/"))) {
    throw new MeshError(ErrorCode.IdentityInvalid, `Cannot name ${describeCaller(c)} in a certificate: ${pErr ?? "a node name cannot contain '/'"}`);
  }
  return `spiffe://${trustDomain}${path}`;
}

/**
 * The caller named by a control-plane client certificate's SPIFFE URI, or undefined when the URI is not a
 * caller identity of `trustDomain` (a workload SVID, another trust domain, anything else).
 */
export function callerFromIdentity(uri: string, trustDomain: string): Caller | undefined {
  const id = trySpiffeId(uri);
  if ("error" in id || id.trustDomain !== trustDomain) return undefined;
  const p = id.path.split("/");
  if (p[1] !== "mesh") return undefined;
  if (p.length === 4 && p[2] === "node") return { kind: "node", node: p[3]! };
  if (p.length === 5 && p[2] === "gateway") return { kind: "gateway", namespace: p[3]!, name: p[4]! };
  if (p.length === 3 && p[2] === "admin") return { kind: "admin" };
  return undefined;
}

/**
 * Parses "NAMESPACE/NAME" (the --gateway flag) into a gateway caller.
 * @throws MeshError (MESH_USAGE) when it is not of that form.
 */
export function parseGatewayRef(ref: string): { kind: "gateway"; namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(ref);
  if (!m) {
    throw new MeshError(ErrorCode.Usage, `Invalid gateway "${ref}": expected NAMESPACE/NAME, e.g. shop/inventory-waypoint`);
  }
  return { kind: "gateway", namespace: m[1]!, name: m[3]! };
}
