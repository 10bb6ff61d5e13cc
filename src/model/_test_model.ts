/** Test support: MeshModel builders for tests of any folder (a Pod in Istio's identity form). */
import type { Workload } from "./types.ts";

/** A ready ambient Pod `ns/name` at `ip` on `node`, its service account named after it unless `extra` says. */
export function pod(name: string, ns: string, ip: string, node: string, extra: Partial<Workload> = {}): Workload {
  const sa = extra.serviceAccount ?? name;
  return {
    uid: `Pod/${ns}/${name}`,
    kind: "Pod",
    name,
    namespace: ns,
    serviceAccount: sa,
    identity: `spiffe://cluster.local/ns/${ns}/sa/${sa}`,
    node,
    addresses: [ip],
    labels: { app: name },
    ambient: true,
    ports: [],
    ready: true,
    ...extra,
  };
}
