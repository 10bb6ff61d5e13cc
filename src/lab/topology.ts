/**
 * Builds and removes the lab's network: namespaces, veth links, addresses and routes. Every namespace
 * is recorded in the state before it is created, so a crash leaves nothing that `down` does not know.
 *
 *   pod/waypoint ns            node ns                                fabric ns
 *   eth0 podIP/32   <veth>  p<k> 169.254.1.1/32                    n<j> 10.99.0.1/32
 *   default via 169.254.1.1     route podIP/32 dev p<k>           route 10.99.0.(10+j)/32 dev n<j>
 *                               fabric 10.99.0.(10+j)/32 <veth>    route podIP/32 via 10.99.0.(10+j)
 *                               default via 10.99.0.1              control 10.99.0.1/32 <veth> control ns 10.99.0.2/32
 *
 * No bridge: a pod's only way anywhere is through its node's routing, so every packet it sends or
 * receives (same-node ones too) crosses the node's iptables, where the ztunnel's capture rules live.
 * Nothing routes 10.96.0.0/16: ClusterIPs exist only through the mesh's capture.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { removeAdminSecrets } from "../admin/mod.ts";
import {
  addRoute,
  createNetns,
  createVeth,
  deleteNetns,
  ipIn,
  killNetnsProcesses,
  netnsExists,
  runCommand,
  setSysctl,
} from "../platform/mod.ts";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { labNames, LINK } from "./names.ts";
import { ADDRESSES } from "./plan.ts";
import { type EndpointRecord, type LabState, type NamespaceKind, type NodeRecord, saveState } from "./state.ts";

const ETC_NETNS = "/etc/netns";
const ETC_NETNS_MARKER = `${ETC_NETNS}/.mesh-lab-created`;

function names(state: LabState) {
  return labNames(state.prefix);
}

/** Records, then creates, a namespace. Refuses a name that exists already (it is not ours). */
function createNamespace(state: LabState, name: string, kind: NamespaceKind, forwarding: boolean): void {
  if (netnsExists(name)) {
    throw new MeshError(
      ErrorCode.LabState,
      `Network namespace "${name}" already exists and this lab did not record it: remove it (ip netns delete ${name}) or use another --prefix`,
    );
  }
  state.namespaces.push({ name, kind });
  saveState(state);
  createNetns(name);
  if (forwarding) {
    setSysctl(name, "net.ipv4.ip_forward", "1");
    // Pods answer from addresses the node routes asymmetrically (link-local gateway): no reverse-path drop.
    setSysctl(name, "net.ipv4.conf.all.rp_filter", "0");
    setSysctl(name, "net.ipv4.conf.default.rp_filter", "0");
    // "Unreachable" for a ClusterIP without the mesh (or anything else outside the lab) must come back
    // every time, not one per second: a rate-limited ICMP turns a refusal into a timeout.
    setSysctl(name, "net.ipv4.icmp_ratelimit", "0");
  }
}

/** Writes /etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts for that namespace. */
export function writeHosts(state: LabState, netns: string, content: string, nameserver?: string): void {
  const rec = state.namespaces.find((n) => n.name === netns);
  const dir = `${ETC_NETNS}/${netns}`;
  if (rec && !rec.etcDir) {
    rec.etcDir = dir;
    saveState(state);
  }
  if (!existsSync(ETC_NETNS)) {
    mkdirSync(ETC_NETNS, { recursive: true });
    // Several labs may share /etc/netns; the marker lets the last one down remove what a lab created.
    writeFileSync(ETC_NETNS_MARKER, "created by mesh lab; removed with the last lab's namespaces\n");
  }
  mkdirSync(dir, { recursive: true });
  // Written in place (same inode): running processes see the new names, since the bind mount follows it.
  writeFileSync(`${dir}/hosts`, content);
  // The lab is offline: without a DNS server of its own (no ExternalHost), 127.0.0.1 answers nothing, so
  // a name that is not in the hosts file fails at once instead of after the host resolver's timeout.
  writeFileSync(
    `${dir}/resolv.conf`,
    nameserver
      ? `# mesh lab: its DNS server knows the external hosts\nnameserver ${nameserver}\noptions timeout:2 attempts:1\n`
      : "# mesh lab: names come from /etc/hosts\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
  );
}

export function createFabric(state: LabState): void {
  createNamespace(state, names(state).fabric, "fabric", true);
}

export function createControlNamespace(state: LabState): string {
  const n = names(state);
  createNamespace(state, n.control, "control", false);
  createVeth(
    { name: LINK.controlUplink, netns: n.control, address: `${ADDRESSES.control}/32` },
    { name: LINK.fabricControlSide, netns: n.fabric, address: `${ADDRESSES.fabric}/32` },
  );
  addRoute(n.control, `${ADDRESSES.fabric}/32`, { dev: LINK.controlUplink });
  addRoute(n.control, "default", { gateway: ADDRESSES.fabric, dev: LINK.controlUplink });
  addRoute(n.fabric, `${ADDRESSES.control}/32`, { dev: LINK.fabricControlSide });
  return n.control;
}

export function createNode(state: LabState, name: string): NodeRecord {
  const n = names(state);
  const index = state.nextNodeIndex++;
  const node: NodeRecord = { name, netns: n.node(name), index, address: ADDRESSES.node(index), nextLink: 0 };
  state.nodes.push(node);
  createNamespace(state, node.netns, "node", true);
  createVeth(
    { name: LINK.nodeUplink, netns: node.netns, address: `${node.address}/32` },
    { name: LINK.fabricNodeSide(index), netns: n.fabric, address: `${ADDRESSES.fabric}/32` },
  );
  addRoute(node.netns, `${ADDRESSES.fabric}/32`, { dev: LINK.nodeUplink });
  addRoute(node.netns, "default", { gateway: ADDRESSES.fabric, dev: LINK.nodeUplink });
  addRoute(n.fabric, `${node.address}/32`, { dev: LINK.fabricNodeSide(index) });
  saveState(state);
  return node;
}

/** A pod's (or waypoint's) namespace behind its node, with its /32 routed through the node. */
export function createEndpoint(
  state: LabState,
  kind: "pod" | "waypoint",
  key: string,
  netns: string,
  nodeName: string,
  ip: string,
): EndpointRecord {
  const node = state.nodes.find((x) => x.name === nodeName);
  if (!node) throw new MeshError(ErrorCode.LabState, `Node "${nodeName}" of ${kind} ${key} does not exist in the lab`);
  const link = LINK.nodePodSide(node.nextLink++);
  const ep: EndpointRecord = { key, kind, netns, node: nodeName, ip, link };
  state.endpoints.push(ep);
  createNamespace(state, netns, kind, false);
  createVeth(
    { name: LINK.podSide, netns, address: `${ip}/32` },
    { name: link, netns: node.netns, address: `${ADDRESSES.podGateway}/32` },
  );
  addRoute(netns, `${ADDRESSES.podGateway}/32`, { dev: LINK.podSide });
  addRoute(netns, "default", { gateway: ADDRESSES.podGateway, dev: LINK.podSide });
  // The node reaches the pod from its fabric address, so a pod sees node-originated traffic (the
  // ztunnel's) coming from a routable address rather than the shared link-local gateway.
  ipIn(node.netns, ["route", "add", `${ip}/32`, "dev", link, "src", node.address]);
  addRoute(names(state).fabric, `${ip}/32`, { gateway: node.address, dev: LINK.fabricNodeSide(node.index) });
  saveState(state);
  return ep;
}

/** Removes one pod or waypoint namespace (its processes first) and the fabric's route to it. */
export async function removeEndpoint(state: LabState, key: string, kind: EndpointRecord["kind"]): Promise<void> {
  const ep = state.endpoints.find((e) => e.key === key && e.kind === kind);
  if (!ep) return;
  await removeNamespace(state, ep.netns);
  runCommand(["ip", "-n", names(state).fabric, "route", "del", `${ep.ip}/32`]);
  // An external host's link ends in the fabric; its namespace took the other end with it.
  state.endpoints = state.endpoints.filter((e) => e !== ep);
  saveState(state);
}

/** Kills what runs in a recorded namespace, deletes it and its /etc/netns directory. */
export async function removeNamespace(state: LabState, name: string): Promise<void> {
  const rec = state.namespaces.find((n) => n.name === name);
  await deleteLabNetns(name);
  const dir = rec?.etcDir ?? `${ETC_NETNS}/${name}`;
  // Only the directory named after our own (prefixed) namespace: never anything else under /etc/netns.
  if (dir === `${ETC_NETNS}/${name}` && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  state.namespaces = state.namespaces.filter((n) => n.name !== name);
  saveState(state);
}

/**
 * Kills what still runs in a namespace, removes the admin secrets named after it (a proxy killed with
 * SIGKILL leaves its own behind, in /run/mesh/admin/<netns inode>-<port>.secret), then deletes it. The
 * secrets go while the namespace still exists: no other namespace can hold its inode number yet, so only
 * this namespace's files match.
 */
export async function deleteLabNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await killNetnsProcesses(name);
  const inode = netnsInode(name);
  if (inode !== undefined) removeAdminSecrets([inode]);
  deleteNetns(name);
}

/** The kernel's id of a named namespace, as the admin secrets are named (src/admin netnsId). */
function netnsInode(name: string): string | undefined {
  try {
    return String(statSync(`/run/netns/${name}`).ino);
  } catch {
    return undefined;
  }
}

/** Removes /etc/netns if a lab created it (the marker says so) and no lab uses it any more. */
export function removeEtcNetnsIfOurs(): void {
  if (!existsSync(ETC_NETNS_MARKER)) return;
  const left = readdirSync(ETC_NETNS).filter((e) => `${ETC_NETNS}/${e}` !== ETC_NETNS_MARKER);
  if (left.length) return;
  rmSync(ETC_NETNS_MARKER);
  rmdirSync(ETC_NETNS);
}

/**
 * A namespace hanging off the fabric: an external host or the lab's DNS server. Not behind any node, so
 * nothing of the mesh captures its traffic; pods reach it through their node's default route.
 */
export function createOutsideEndpoint(state: LabState, key: string, netns: string, ip: string, fabricLink: string): EndpointRecord {
  const ep: EndpointRecord = { key, kind: "external", netns, node: "", ip, link: fabricLink };
  state.endpoints.push(ep);
  createNamespace(state, netns, "external", false);
  const fabric = names(state).fabric;
  createVeth(
    { name: LINK.podSide, netns, address: `${ip}/32` },
    { name: fabricLink, netns: fabric, address: `${ADDRESSES.fabric}/32` },
  );
  addRoute(netns, `${ADDRESSES.fabric}/32`, { dev: LINK.podSide });
  addRoute(netns, "default", { gateway: ADDRESSES.fabric, dev: LINK.podSide });
  addRoute(fabric, `${ip}/32`, { dev: fabricLink });
  saveState(state);
  return ep;
}
