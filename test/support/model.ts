/**
 * Builders of a mesh for tests, in both forms the code reads: model objects (MeshModel, Workload,
 * Service, Waypoint) for the pure parts, and Kubernetes YAML documents for whatever parses
 * configuration (the control role, `mesh check`, the lab). Defaults are those of a small ambient mesh
 * in the trust domain cluster.local; a test states only what it is about.
 */
import { emptyModel, type MeshModel, type Service, type Waypoint, type Workload } from "../../src/model/mod.ts";

const TD = "cluster.local";
const identityOf = (namespace: string, serviceAccount: string) => `spiffe://${TD}/ns/${namespace}/sa/${serviceAccount}`;

/** A Pod's workload at `ip` (or addresses) on `node`; its service account is its name, its labels {app: name}, unless `extra` says otherwise. */
export function workload(name: string, namespace: string, ip: string | string[], node = "node-a", extra: Partial<Workload> = {}): Workload {
  const serviceAccount = extra.serviceAccount ?? name;
  return {
    uid: `Pod/${namespace}/${name}`,
    kind: "Pod",
    name,
    namespace,
    serviceAccount,
    identity: identityOf(namespace, serviceAccount),
    node,
    addresses: typeof ip === "string" ? [ip] : ip,
    labels: { app: name },
    ambient: true,
    ports: [],
    ready: true,
    ...extra,
  };
}

/** A Service at `vip` whose endpoints are `endpoints`, each on the ports' target ports. */
export function service(
  name: string,
  namespace: string,
  vip: string,
  ports: { name?: string; port: number; targetPort: number }[],
  endpoints: Workload[],
  extra: Partial<Service> = {},
): Service {
  return {
    name,
    namespace,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    vip,
    ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: p.targetPort, protocol: "TCP" as const })),
    endpoints: endpoints.map((w) => ({ workloadUid: w.uid, ports: Object.fromEntries(ports.map((p) => [p.port, p.targetPort])) })),
    labels: {},
    ...extra,
  };
}

/** A waypoint (Gateway of class istio-waypoint) listening at `address` (or addresses); its service account is its name. */
export function waypoint(name: string, namespace: string, address: string | string[], extra: Partial<Waypoint> = {}): Waypoint {
  return {
    name,
    namespace,
    identity: identityOf(namespace, name),
    serviceAccount: name,
    addresses: typeof address === "string" ? [address] : address,
    waypointFor: "service",
    port: 15008,
    ...extra,
  };
}

/** A model of `parts`; without namespaces, those of the workloads, each enrolled in ambient. */
export function meshModel(parts: Partial<MeshModel>): MeshModel {
  const m = emptyModel();
  Object.assign(m, parts);
  if (!parts.namespaces) {
    const names = new Set((parts.workloads ?? []).map((w) => w.namespace));
    m.namespaces = [...names].map((name) => ({ name, labels: { "istio.io/dataplane-mode": "ambient" }, ambient: true }));
  }
  return m;
}

// ---- the same as YAML documents ----

const labelLines = (labels: Record<string, string>, indent: string) =>
  Object.entries(labels).map(([k, v]) => `${indent}${k}: ${JSON.stringify(v)}\n`).join("");

/** Documents as one multi-document YAML file. */
export function yamlFile(...docs: string[]): string {
  return docs.filter(Boolean).join("\n---\n") + "\n";
}

/** A Namespace, enrolled in ambient unless `labels` says otherwise. */
export function namespaceYaml(name: string, labels: Record<string, string> = { "istio.io/dataplane-mode": "ambient" }): string {
  const lines = Object.keys(labels).length ? `\n  labels:\n${labelLines(labels, "    ").trimEnd()}` : "";
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}${lines}`;
}

export function serviceAccountYaml(name: string, namespace = "shop"): string {
  return `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${name}\n  namespace: ${namespace}`;
}

export interface PodYaml {
  name: string;
  namespace?: string;
  ip: string;
  node?: string;
  /** Default: the pod's name. */
  serviceAccount?: string;
  /** Added to app: <name>. */
  labels?: Record<string, string>;
  /** Declared container ports. */
  containerPorts?: number[];
}

/** A running Pod with one container; labels app: <name> and `labels`. */
export function podYaml(p: PodYaml): string {
  const ports = p.containerPorts?.length ? `    ports:\n${p.containerPorts.map((n) => `    - containerPort: ${n}\n`).join("")}` : "";
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${p.name}\n  namespace: ${p.namespace ?? "shop"}\n  labels:\n${labelLines({ app: p.name, ...p.labels }, "    ")}` +
    `spec:\n  nodeName: ${p.node ?? "node-a"}\n  serviceAccountName: ${p.serviceAccount ?? p.name}\n  containers:\n  - name: c\n${ports}status:\n  podIP: ${p.ip}`;
}

export interface ServiceYaml {
  name: string;
  namespace?: string;
  clusterIP: string;
  selector: Record<string, string>;
  ports: { name: string; port: number; targetPort: number }[];
  labels?: Record<string, string>;
}

export function serviceYaml(s: ServiceYaml): string {
  const labels = s.labels && Object.keys(s.labels).length ? `  labels:\n${labelLines(s.labels, "    ")}` : "";
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${s.name}\n  namespace: ${s.namespace ?? "shop"}\n${labels}` +
    `spec:\n  clusterIP: ${s.clusterIP}\n  selector:\n${labelLines(s.selector, "    ")}  ports:\n` +
    s.ports.map((p) => `  - name: ${p.name}\n    port: ${p.port}\n    targetPort: ${p.targetPort}`).join("\n");
}

export interface WaypointYaml {
  name: string;
  namespace?: string;
  /** spec.addresses (none: the Gateway has no address). */
  addresses: string[];
  /** The HBONE listener's port (default 15008). */
  port?: number;
  /** The istio.io/waypoint-for label (none: Istio's default, service). */
  for?: Waypoint["waypointFor"];
}

/** A waypoint: a Gateway of class istio-waypoint with one HBONE listener. */
export function waypointYaml(w: WaypointYaml): string {
  const labels = w.for ? `  labels:\n    istio.io/waypoint-for: ${w.for}\n` : "";
  const addresses = w.addresses.length ? `\n  addresses:\n${w.addresses.map((a) => `  - type: IPAddress\n    value: ${a}`).join("\n")}` : "";
  return `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: ${w.name}\n  namespace: ${w.namespace ?? "shop"}\n${labels}` +
    `spec:\n  gatewayClassName: istio-waypoint\n  listeners:\n  - name: mesh\n    port: ${w.port ?? 15008}\n    protocol: HBONE${addresses}`;
}

/** The mesh-wide settings (MeshConfig "mesh"), e.g. { certificateTTL: "1m", rotationFraction: 0.15 }. */
export function meshConfigYaml(spec: Record<string, string | number>): string {
  return `apiVersion: mesh.dev/v1alpha1\nkind: MeshConfig\nmetadata:\n  name: mesh\nspec:\n` +
    Object.entries(spec).map(([k, v]) => `  ${k}: ${v}`).join("\n");
}
