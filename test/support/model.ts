/**
 * Builders of a mesh for tests, in both forms the code reads: model objects (MeshModel, Workload,
 * Service, Waypoint, ServiceEntry) for the pure parts, and Kubernetes YAML documents for whatever parses
 * configuration (the control role, `mesh check`, the lab). Defaults are those of a small ambient mesh
 * in the trust domain cluster.local; a test states only what it is about.
 */
import {
  type ClientTls,
  emptyModel,
  type MeshModel,
  type Service,
  type ServiceEntry,
  type ServiceEntryPort,
  type Waypoint,
  type Workload,
} from "../../src/model/mod.ts";

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

/** A ServiceEntry outside the mesh for `hosts`, resolved by DNS, on port 80 (HTTP), with no VIPs unless `extra` gives them. */
export function serviceEntry(name: string, namespace: string, hosts: string[], extra: Partial<ServiceEntry> = {}): ServiceEntry {
  return {
    name,
    namespace,
    hosts,
    addresses: [],
    vips: [],
    ports: [{ number: 80, protocol: "HTTP" }],
    resolution: "DNS",
    location: "MESH_EXTERNAL",
    endpoints: [],
    labels: {},
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

/** A value in YAML flow style as people write it ({number: 80, name: http}); a string that could read as another type is quoted. */
function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(", ")}]`;
  if (value && typeof value === "object") {
    const fields = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${fields.map(([k, v]) => `${k}: ${flow(v)}`).join(", ")}}`;
  }
  const plain = typeof value === "string" && /^[A-Za-z][\w./-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(value);
  return plain ? String(value) : JSON.stringify(value);
}

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

export interface ServiceEntryYaml {
  name: string;
  namespace?: string;
  hosts: string[];
  /** spec.addresses (none: mesh allocates one VIP per host). */
  addresses?: string[];
  ports: (Omit<ServiceEntryPort, "protocol"> & { protocol?: string })[];
  /** spec.resolution as written (none: Istio's default, NONE). */
  resolution?: "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";
  endpoints?: { address: string; labels?: Record<string, string> }[];
  /** The egress waypoint (Gateway name) its istio.io/use-waypoint label names. */
  waypoint?: string;
}

/** A ServiceEntry (networking.istio.io/v1), in flow style as short entries are usually written. */
export function serviceEntryYaml(e: ServiceEntryYaml): string {
  const labels = e.waypoint ? `, labels: {istio.io/use-waypoint: ${e.waypoint}}` : "";
  const field = (name: string, value: unknown) => (value === undefined ? "" : `\n  ${name}: ${flow(value)}`);
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${e.name}, namespace: ${e.namespace ?? "shop"}${labels}}\nspec:` +
    field("hosts", e.hosts) + field("addresses", e.addresses) + field("ports", e.ports) +
    (e.resolution ? `\n  resolution: ${e.resolution}` : "") + field("endpoints", e.endpoints);
}

export interface DestinationRuleYaml {
  name: string;
  namespace?: string;
  host: string;
  /** trafficPolicy.tls */
  tls?: ClientTls;
  /** trafficPolicy.portLevelSettings: port number -> its tls. */
  portTls?: Record<number, ClientTls>;
}

/** A DestinationRule (networking.istio.io/v1) with the TLS settings mesh reads. */
export function destinationRuleYaml(r: DestinationRuleYaml): string {
  const portLevelSettings = r.portTls ? Object.entries(r.portTls).map(([port, tls]) => ({ port: { number: Number(port) }, tls })) : undefined;
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${r.name}, namespace: ${r.namespace ?? "shop"}}\n` +
    `spec: ${flow({ host: r.host, trafficPolicy: { tls: r.tls, portLevelSettings } })}`;
}

/** The targetRef or parentRef of a ServiceEntry. */
const serviceEntryRef = (name: string) => `{kind: ServiceEntry, group: networking.istio.io, name: ${name}}`;

/** An AuthorizationPolicy attached to the ServiceEntry `serviceEntry` (its egress waypoint enforces it) that allows only `methods`. */
export function serviceEntryPolicyYaml(p: { name: string; namespace?: string; serviceEntry: string; methods: string[] }): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${p.name}, namespace: ${p.namespace ?? "shop"}}\nspec:\n` +
    `  targetRefs: [${serviceEntryRef(p.serviceEntry)}]\n  rules: [{to: [{operation: {methods: ${flow(p.methods)}}}]}]`;
}

/** An HTTPRoute whose parent is the ServiceEntry `serviceEntry`, setting the header `set` on every request. */
export function serviceEntryRouteYaml(r: { name: string; namespace?: string; serviceEntry: string; set: { name: string; value: string } }): string {
  return `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${r.name}, namespace: ${r.namespace ?? "shop"}}\nspec:\n` +
    `  parentRefs: [${serviceEntryRef(r.serviceEntry)}]\n` +
    `  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [${flow(r.set)}]}}]}]`;
}
