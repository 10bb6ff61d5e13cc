/**
 * What a mesh.yaml asks the lab to build: the nodes named by Pods, each Pod with its address and
 * command, each istio-waypoint Gateway with its address and the node it sits behind, and the Services'
 * ClusterIPs (for the pods' hosts files). Only the fields the lab needs are read here; the mesh itself
 * (the control role) reads the whole file with full validation. Pure: text in, plan or error out.
 */
import { parseAllDocuments } from "yaml";
import { ErrorCode, MeshError } from "../core/mod.ts";

export interface LabPod {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  /** containers[0].command + args; empty when the Pod runs nothing (a namespace to exec into) */
  command: string[];
  /** declared containerPorts: the lab waits until they listen */
  ports: number[];
}

export interface LabWaypoint {
  name: string;
  namespace: string;
  ip: string;
  /** the node whose iptables its packets cross (routed like one of that node's pods) */
  node: string;
}

export interface LabService {
  name: string;
  namespace: string;
  clusterIP?: string;
}

/** A machine outside the cluster (ExternalHost): on the lab network, not a pod, not meshed. */
export interface LabExternalHost {
  name: string;
  /** "" : cluster-scoped (keys and diffs treat it like a pod's namespace) */
  namespace: "";
  ip: string;
  /** names the lab's DNS server answers with its address */
  hostnames: string[];
  command: string[];
  ports: number[];
}

export interface LabPlan {
  /** node names in order of first appearance */
  nodes: string[];
  pods: LabPod[];
  waypoints: LabWaypoint[];
  services: LabService[];
  /** Absent in the state of a lab made before external hosts existed: none. */
  externalHosts?: LabExternalHost[];
}

/** Addresses the lab takes for itself; pods and waypoints must stay out of them. */
export const ADDRESSES = {
  fabric: "10.99.0.1",
  control: "10.99.0.2",
  /** node k (0-based, in order of creation) sits at 10.99.0.(10+k) */
  node: (k: number) => `10.99.0.${10 + k}`,
  maxNodes: 240,
  /** the lab's DNS server (dnsmasq), which knows the external hosts' names */
  dns: "10.99.0.3",
  /** every pod's default gateway: the node side of its link (one address on all of them, as Calico does) */
  podGateway: "169.254.1.1",
  /** the fabric /24 and link-local range are the lab's own */
  reserved: ["10.99.0.0/24", "169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/8"],
  controlPlanePort: 15012,
} as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const a = parseIPv4(ip), b = parseIPv4(base!);
  if (a === undefined || b === undefined) return false;
  const n = Number(bits);
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

/** Builds the lab plan from a mesh.yaml's text. `file` only labels error messages. */
export function planFromYaml(text: string, file = "mesh.yaml"): LabPlan {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return { nodes: [], pods: [], waypoints: [], services: [] };
  const problems: string[] = [];
  const pods: LabPod[] = [];
  const gateways: { name: string; namespace: string; ip?: string }[] = [];
  const services: LabService[] = [];
  const externals: LabExternalHost[] = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      const pos = e.linePos?.[0];
      throw new MeshError(ErrorCode.ConfigInvalid, `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: ${e.message.split("\n")[0]}`);
    }
    const o = doc.toJS() as unknown;
    if (!isObj(o)) continue;
    const meta = isObj(o.metadata) ? o.metadata : {};
    const name = str(meta.name) ?? "";
    const namespace = str(meta.namespace) ?? "default";
    const spec = isObj(o.spec) ? o.spec : {};
    const apiVersion = str(o.apiVersion) ?? "";
    if (o.kind === "Pod" && apiVersion === "v1") {
      pods.push(readPod(name, namespace, spec, isObj(o.status) ? o.status : {}, problems));
    } else if (o.kind === "Gateway" && apiVersion.startsWith("gateway.networking.k8s.io/")) {
      if (spec.gatewayClassName !== "istio-waypoint") continue;
      const addrs = Array.isArray(spec.addresses) ? spec.addresses : [];
      const first = addrs.map((a) => (isObj(a) ? str(a.value) : str(a))).find((a) => a !== undefined);
      gateways.push({ name, namespace, ip: first });
    } else if (o.kind === "Service" && apiVersion === "v1") {
      const vip = str(spec.clusterIP);
      services.push({ name, namespace, clusterIP: vip && vip !== "None" ? vip : undefined });
    } else if (o.kind === "ExternalHost" && apiVersion === "mesh.dev/v1alpha1") {
      externals.push(readExternal(name, spec, problems));
    }
  }
  const plan = assemble(pods, gateways, services, problems);
  for (const x of externals) {
    const other = plan.pods.find((p) => p.ip === x.ip) ?? plan.waypoints.find((w) => w.ip === x.ip) ?? externals.find((e) => e !== x && e.ip === x.ip);
    if (other) problems.push(`ExternalHost ${x.name}: address ${x.ip} is also ${"node" in other ? `${other.namespace}/${other.name}'s` : `ExternalHost ${other.name}'s`}`);
    const r = ADDRESSES.reserved.find((c) => inCidr(x.ip, c));
    if (r) problems.push(`ExternalHost ${x.name}: address ${x.ip} is in ${r}, which the lab keeps for itself`);
  }
  if (externals.length) plan.externalHosts = externals;
  if (problems.length) {
    throw new MeshError(ErrorCode.ConfigInvalid, `${file}: the lab cannot build this topology:\n  ${problems.join("\n  ")}`);
  }
  return plan;
}

function readPod(name: string, namespace: string, spec: Obj, status: Obj, problems: string[]): LabPod {
  const id = `Pod ${namespace}/${name}`;
  const node = str(spec.nodeName) ?? "";
  if (!node) problems.push(`${id} has no spec.nodeName: the lab puts every pod on a named node`);
  else if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(node)) problems.push(`${id}: invalid spec.nodeName "${node}"`);
  let ip = str(status.podIP);
  if (!ip && Array.isArray(status.podIPs)) {
    const first = status.podIPs[0];
    ip = isObj(first) ? str(first.ip) : undefined;
  }
  if (!ip) problems.push(`${id} has no status.podIP: give it an address (e.g. 10.244.1.10)`);
  else if (parseIPv4(ip) === undefined) problems.push(`${id}: status.podIP "${ip}" is not an IPv4 address (the lab supports IPv4 only)`);
  const containers = Array.isArray(spec.containers) ? spec.containers.filter(isObj) : [];
  const c0 = containers[0] ?? {};
  const strs = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x)) : []);
  const command = [...strs(c0.command), ...strs(c0.args)];
  const ports: number[] = [];
  for (const c of containers) {
    for (const p of Array.isArray(c.ports) ? c.ports : []) {
      if (isObj(p) && typeof p.containerPort === "number" && (p.protocol ?? "TCP") === "TCP") ports.push(p.containerPort);
    }
  }
  return { name, namespace, node, ip: ip ?? "", command, ports };
}

function readExternal(name: string, spec: Obj, problems: string[]): LabExternalHost {
  const ip = str(spec.address) ?? "";
  if (parseIPv4(ip) === undefined) problems.push(`ExternalHost ${name}: spec.address "${ip}" is not an IPv4 address`);
  const strs = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x)) : []);
  const hostnames = strs(spec.hostnames);
  const ports = Array.isArray(spec.ports) ? spec.ports.filter((p): p is number => typeof p === "number") : [];
  return { name, namespace: "", ip, hostnames: hostnames.length ? hostnames : [name], command: strs(spec.command), ports };
}

function assemble(
  pods: LabPod[],
  gateways: { name: string; namespace: string; ip?: string }[],
  services: LabService[],
  problems: string[],
): LabPlan {
  const nodes: string[] = [];
  for (const p of pods) if (p.node && !nodes.includes(p.node)) nodes.push(p.node);
  if (nodes.length > ADDRESSES.maxNodes) problems.push(`${nodes.length} nodes: the lab supports at most ${ADDRESSES.maxNodes}`);
  const owner = new Map<string, string>();
  const claim = (ip: string, who: string) => {
    if (!ip || parseIPv4(ip) === undefined) return;
    const other = owner.get(ip);
    if (other) problems.push(`${who} and ${other} share the address ${ip}`);
    else owner.set(ip, who);
    const r = ADDRESSES.reserved.find((c) => inCidr(ip, c));
    if (r) problems.push(`${who}: address ${ip} is in ${r}, which the lab keeps for itself`);
  };
  const seen = new Set<string>();
  for (const p of pods) {
    const key = `${p.namespace}/${p.name}`;
    if (seen.has(key)) problems.push(`Pod ${key} is declared twice`);
    seen.add(key);
    claim(p.ip, `Pod ${key}`);
  }
  const waypoints: LabWaypoint[] = [];
  for (const g of gateways) {
    const id = `Gateway ${g.namespace}/${g.name}`;
    if (!g.ip) {
      problems.push(`${id} (istio-waypoint) has no spec.addresses: the lab runs a waypoint at its address (add spec.addresses: [{type: IPAddress, value: 10.244.N.M}])`);
      continue;
    }
    if (parseIPv4(g.ip) === undefined) {
      problems.push(`${id}: address "${g.ip}" is not an IPv4 address`);
      continue;
    }
    claim(g.ip, id);
    // Behind the node whose pods share its /24 (its "pod CIDR"), else the first node.
    const near = pods.find((p) => p.ip && inCidr(g.ip!, `${p.ip}/24`));
    const node = near?.node || nodes[0];
    if (!node) {
      problems.push(`${id}: no node to place the waypoint behind (declare at least one Pod with spec.nodeName)`);
      continue;
    }
    waypoints.push({ name: g.name, namespace: g.namespace, ip: g.ip, node });
  }
  for (const s of services) {
    if (s.clusterIP && owner.has(s.clusterIP)) problems.push(`Service ${s.namespace}/${s.name}: ClusterIP ${s.clusterIP} is also ${owner.get(s.clusterIP)}'s address`);
  }
  return { nodes, pods, waypoints, services };
}

/** /etc/hosts for a pod or node: ClusterIP names (short names only within the same namespace). */
export function hostsFile(plan: LabPlan, self: { name: string; namespace?: string; ip?: string }): string {
  const lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"];
  if (self.ip) lines.push(`${self.ip} ${self.name}`);
  for (const s of plan.services) {
    if (!s.clusterIP) continue;
    const names = [`${s.name}.${s.namespace}.svc.cluster.local`, `${s.name}.${s.namespace}.svc`, `${s.name}.${s.namespace}`];
    if (s.namespace === self.namespace) names.push(s.name);
    lines.push(`${s.clusterIP} ${names.join(" ")}`);
  }
  return lines.join("\n") + "\n";
}
