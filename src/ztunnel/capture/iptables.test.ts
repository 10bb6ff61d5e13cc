/**
 * The capture rules installed for real, inside network namespaces this test creates: a node with one
 * pod routed through it and a peer (another node, or a VM for host mode). Listeners on the ztunnel
 * ports report which port a connection reached and its original destination.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { addRoute, createNetns, createVeth, deleteNetns, execInNetns, ipIn, setSysctl } from "../../platform/mod.ts";
import {
  applyRules,
  captureRules,
  DEFAULT_CAPTURE_PORTS,
  netnsRunner,
  readChain,
  removeRules,
  verifyRules,
  type RuleSet,
} from "./mod.ts";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log("capture/iptables.test.ts: skipped, needs root for network namespaces and iptables");

const tag = `zc${(process.pid % 10000).toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const NODE = `${tag}-node`;
const POD = `${tag}-pod`;
const PEER = `${tag}-peer`;
const POD_IP = "10.244.1.10";
const PEER_IP = "192.168.77.2";
const NODE_UPLINK = "192.168.77.1";
const probe = join(import.meta.dir, "_probe.ts");
const servers: { kill(): void }[] = [];

async function serve(ns: string, ports: number[]): Promise<void> {
  const p = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, probe, "serve", ports.join(",")], {
    stdout: "pipe",
    stderr: "inherit",
  });
  servers.push(p);
  const reader = p.stdout.getReader();
  const deadline = Date.now() + 10_000;
  let out = "";
  while (!out.includes("ready")) {
    if (Date.now() > deadline) throw new Error(`probe in ${ns} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`probe in ${ns} exited`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

/** Connects from `ns` (optionally as another uid/gid) and returns the probe's answer, or "ERR ...". */
function dial(ns: string, host: string, port: number, as?: { uid: number; gid: number }): { port?: number; remote?: string; orig?: string | null; err?: string } {
  const py = `
import socket, sys
try:
    s = socket.create_connection((${JSON.stringify(host)}, ${port}), timeout=3)
    data = b""
    while True:
        d = s.recv(4096)
        if not d: break
        data += d
    print(data.decode().strip())
except Exception as e:
    print("ERR " + type(e).__name__)
`;
  const who = as ? ["setpriv", `--reuid=${as.uid}`, `--regid=${as.gid}`, "--clear-groups"] : [];
  const out = execInNetns(ns, [...who, "/usr/bin/python3", "-c", py], { timeoutMs: 10_000 }).trim();
  if (out.startsWith("ERR")) return { err: out };
  return JSON.parse(out);
}

const run = netnsRunner(NODE);
const ports = DEFAULT_CAPTURE_PORTS;
const nodeSet = (ips: string[]): RuleSet[] =>
  captureRules({ mode: "node", ports, workloads: ips.map((address) => ({ address, ports: [] })) });

describe.skipIf(!isRoot)("capture rules in network namespaces", () => {
  beforeAll(async () => {
    for (const ns of [NODE, POD, PEER]) createNetns(ns);
    createVeth({ name: `${tag}n`, netns: NODE, address: "10.244.1.1/32" }, { name: `${tag}p`, netns: POD, address: `${POD_IP}/32` });
    addRoute(NODE, `${POD_IP}/32`, { dev: `${tag}n` });
    addRoute(POD, "10.244.1.1/32", { dev: `${tag}p` });
    addRoute(POD, "default", { gateway: "10.244.1.1", dev: `${tag}p` });
    createVeth({ name: `${tag}u`, netns: NODE, address: `${NODE_UPLINK}/24` }, { name: `${tag}r`, netns: PEER, address: `${PEER_IP}/24` });
    addRoute(PEER, "10.244.1.0/24", { gateway: NODE_UPLINK });
    setSysctl(NODE, "net.ipv4.ip_forward", "1");
    await Promise.all([
      serve(NODE, [15001, 15006, 15008]),
      serve(POD, [80]),
      serve(PEER, [8080, 15001, 15006, 15008]),
    ]);
    // A rule and a chain that belong to someone else: they must survive everything we do.
    execInNetns(NODE, ["iptables", "-t", "nat", "-N", "OTHER-CHAIN"]);
    execInNetns(NODE, ["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "udp", "--dport", "53", "-j", "OTHER-CHAIN"]);
  });

  afterAll(() => {
    for (const s of servers) s.kill();
    for (const ns of [NODE, POD, PEER]) deleteNetns(ns);
  });

  test("node mode: TCP from the pod goes to 15001 with its original destination", () => {
    for (const set of nodeSet([POD_IP])) applyRules(run, set);
    for (const set of nodeSet([POD_IP])) expect(verifyRules(run, set)).toEqual([]);
    expect(dial(POD, PEER_IP, 8080)).toEqual({ port: 15001, remote: POD_IP, orig: `${PEER_IP}:8080` });
    // A Service VIP is routed by nothing but the mesh: still captured, original destination kept.
    expect(dial(POD, "10.96.0.20", 8000)).toEqual({ port: 15001, remote: POD_IP, orig: "10.96.0.20:8000" });
  });

  test("node mode: HBONE to the pod reaches 15008, any other port 15006", () => {
    expect(dial(PEER, POD_IP, 15008)).toEqual({ port: 15008, remote: PEER_IP, orig: `${POD_IP}:15008` });
    expect(dial(PEER, POD_IP, 80)).toEqual({ port: 15006, remote: PEER_IP, orig: `${POD_IP}:80` });
  });

  test("node mode: the ztunnel's own connections (node namespace, OUTPUT path) are not captured", () => {
    expect(dial(NODE, POD_IP, 80)).toEqual({ port: 80, remote: "10.244.1.1", orig: null });
  });

  test("installing again is idempotent: one jump, same chain", () => {
    const before = readChain(run, 4, "MESH-PREROUTING");
    for (let i = 0; i < 3; i++) for (const set of nodeSet([POD_IP])) applyRules(run, set);
    const jumps = execInNetns(NODE, ["iptables", "-t", "nat", "-S", "PREROUTING"]).split("\n").filter((l) => l.includes("MESH-PREROUTING"));
    expect(jumps.length).toBe(1);
    expect(readChain(run, 4, "MESH-PREROUTING")).toEqual(before!);
  });

  test("a changed pod set refills the chain atomically; verify reports drift", () => {
    for (const set of nodeSet([POD_IP, "10.244.1.11"])) applyRules(run, set);
    expect(readChain(run, 4, "MESH-PREROUTING")!.length).toBe(6);
    const drift = verifyRules(run, nodeSet([POD_IP])[0]!);
    expect(drift.length).toBe(1);
    expect(drift[0]).toContain("MESH-PREROUTING differs");
    for (const set of nodeSet([POD_IP])) applyRules(run, set);
    expect(verifyRules(run, nodeSet([POD_IP])[0]!)).toEqual([]);
  });

  test("removal deletes our jump and chains and nothing else; traffic then flows uncaptured", () => {
    const removed = removeRules(run);
    expect(removed).toContain("IPv4 nat PREROUTING -> MESH-PREROUTING");
    expect(removed).toContain("IPv4 nat chain MESH-PREROUTING");
    const nat = execInNetns(NODE, ["iptables", "-t", "nat", "-S"]);
    expect(nat).not.toContain("MESH-");
    expect(nat).toContain("-N OTHER-CHAIN");
    expect(nat).toContain("-A PREROUTING -p udp -m udp --dport 53 -j OTHER-CHAIN");
    expect(dial(POD, PEER_IP, 8080)).toEqual({ port: 8080, remote: POD_IP, orig: null });
    // Removing again is a no-op.
    expect(removeRules(run)).toEqual([]);
  });

  test("host mode: local processes are captured except the ztunnel's group and loopback; inbound to workload ports", () => {
    const vm = netnsRunner(PEER);
    const sets = captureRules({
      mode: "host",
      ports,
      workloads: [{ address: PEER_IP, ports: [8080] }],
      exemptGid: 1337,
    });
    for (const set of sets) applyRules(vm, set);
    for (const set of sets) expect(verifyRules(vm, set)).toEqual([]);
    // A workload process (any uid, here nobody) calling out: captured to 127.0.0.1:15001, keeping its
    // source address (the workload's), which is how the ztunnel knows whose identity to use.
    expect(dial(PEER, NODE_UPLINK, 9999, { uid: 65534, gid: 65534 })).toEqual({
      port: 15001,
      remote: PEER_IP,
      orig: `${NODE_UPLINK}:9999`,
    });
    // Root is not exempt by itself (workloads on a VM often run as root)...
    expect(dial(PEER, NODE_UPLINK, 9999).port).toBe(15001);
    // ...only the ztunnel's group is: it reaches the node's own listener, uncaptured.
    expect(dial(PEER, NODE_UPLINK, 15006, { uid: 0, gid: 1337 })).toEqual({ port: 15006, remote: PEER_IP, orig: null });
    // Loopback stays local.
    expect(dial(PEER, "127.0.0.1", 15006, { uid: 65534, gid: 65534 })).toEqual({ port: 15006, remote: "127.0.0.1", orig: null });
    // Inbound to the workload port goes to 15006; HBONE reaches 15008 directly.
    expect(dial(NODE, PEER_IP, 8080)).toEqual({ port: 15006, remote: NODE_UPLINK, orig: `${PEER_IP}:8080` });
    expect(dial(NODE, PEER_IP, 15008)).toEqual({ port: 15008, remote: NODE_UPLINK, orig: null });
    removeRules(vm);
    expect(execInNetns(PEER, ["iptables", "-t", "nat", "-S"])).not.toContain("MESH-");
    expect(dial(NODE, PEER_IP, 8080)).toEqual({ port: 8080, remote: NODE_UPLINK, orig: null });
  });
});
