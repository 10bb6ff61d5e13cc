/**
 * mesh's kind for `mesh lab`: a machine outside the cluster, on the lab's network, reached by name through
 * the lab's DNS server (not a pod, not in the mesh). The mesh itself ignores it; the lab builds it.
 *
 *   apiVersion: mesh.dev/v1alpha1
 *   kind: ExternalHost
 *   metadata: { name: partner-api }
 *   spec:
 *     address: 192.0.2.10              # its address on the lab network (IPv4)
 *     hostnames: [api.partner.example] # what the lab's DNS server answers for it (default: its name)
 *     command: [mesh, httpbin, --port, "80"]
 *     ports: [80]                      # the lab waits until they listen
 */
import * as v from "valibot";
import { ignored, ipAddress, labels, nonEmpty, port } from "./common.ts";

export const externalHostSchema = v.strictObject({
  apiVersion: v.string(),
  kind: v.string(),
  metadata: v.strictObject({
    name: nonEmpty,
    namespace: v.optional(v.string()),
    labels: v.optional(labels),
    annotations: v.optional(labels),
  }),
  spec: v.strictObject({
    address: ipAddress,
    hostnames: v.optional(v.array(nonEmpty)),
    command: v.optional(v.array(v.string())),
    ports: v.optional(v.array(port)),
  }),
  status: ignored,
});
