/**
 * Workload identity for the mesh: SPIFFE IDs, the CA (self-signed root or Istio plug-in intermediate, root
 * rotation), X.509-SVID validation, bootstrap tokens for control-plane callers, node authorization, and the
 * certificate client that ztunnels and waypoints use to keep their SVIDs fresh.
 *
 * Runtime: Bun (node:crypto, node:fs, WebCrypto). The pure SPIFFE helpers are also exported to Deno
 * through the top-level mod.ts.
 */
export { formatIdentity, isSpiffeId, parseSpiffeId, peerSpiffeId, principalOf, trySpiffeId, type SpiffeId } from "../model/mod.ts";
export * from "./caller.ts";
export * from "./authorize.ts";
export * from "./ca.ts";
export * from "./csr.ts";
export * from "./validate.ts";
export * from "./token.ts";
export * from "./cert_client.ts";
