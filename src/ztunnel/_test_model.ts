/** Small MeshModel builders for the ztunnel's tests (private to this folder). */
import { emptyModel, type MeshModel, type Service, type Workload } from "../model/mod.ts";
import { pod } from "../model/_test_model.ts";

export { pod };

export function service(
  name: string,
  ns: string,
  vip: string,
  ports: { port: number; targetPort: number }[],
  endpoints: Workload[],
  extra: Partial<Service> = {},
): Service {
  return {
    name,
    namespace: ns,
    hostname: `${name}.${ns}.svc.cluster.local`,
    vip,
    ports: ports.map((p) => ({ port: p.port, targetPort: p.targetPort, protocol: "TCP" as const })),
    endpoints: endpoints.map((w) => ({
      workloadUid: w.uid,
      ports: Object.fromEntries(ports.map((p) => [p.port, p.targetPort])),
    })),
    labels: {},
    ...extra,
  };
}

export function model(parts: Partial<MeshModel>): MeshModel {
  const m = emptyModel();
  Object.assign(m, parts);
  if (!parts.namespaces) {
    const names = new Set((parts.workloads ?? []).map((w) => w.namespace));
    m.namespaces = [...names].map((name) => ({
      name,
      labels: { "istio.io/dataplane-mode": "ambient" },
      ambient: true,
    }));
  }
  return m;
}
