/**
 * mesh's own kind: `apiVersion: mesh.dev/v1alpha1`, `kind: MeshConfig` (optional, at most one).
 *
 *   apiVersion: mesh.dev/v1alpha1
 *   kind: MeshConfig
 *   metadata: { name: mesh }
 *   spec:
 *     trustDomain: cluster.local        # SPIFFE trust domain
 *     rootNamespace: istio-system       # policies here without a selector apply mesh-wide
 *     certificateTTL: 24h               # workload certificate lifetime (Go-style duration)
 *     rotationFraction: 0.5             # renew when this fraction of the lifetime has passed
 *     outboundTrafficPolicy: allow      # destinations outside the mesh: allow | deny
 */
import * as v from "valibot";
import { ignored, labels, nonEmpty } from "./common.ts";

export const meshConfigSchema = v.strictObject({
  apiVersion: v.string(),
  kind: v.string(),
  metadata: v.optional(v.strictObject({
    name: v.optional(v.string()),
    namespace: v.optional(v.string()),
    labels: v.optional(labels),
    annotations: v.optional(labels),
  })),
  spec: v.optional(v.strictObject({
    trustDomain: v.optional(v.pipe(nonEmpty, v.regex(/^[a-z0-9.\-_]+$/, "Must be a trust domain: lowercase letters, digits, '.', '-', '_'"))),
    rootNamespace: v.optional(nonEmpty),
    certificateTTL: v.optional(v.string("Must be a duration such as 24h")),
    rotationFraction: v.optional(v.pipe(
      v.number(),
      v.gtValue(0, "Must be between 0 and 1 (exclusive)"),
      v.ltValue(1, "Must be between 0 and 1 (exclusive)"),
    )),
    outboundTrafficPolicy: v.optional(v.picklist(["allow", "deny"])),
  })),
  status: ignored,
});
