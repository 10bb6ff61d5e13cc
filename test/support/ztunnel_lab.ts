/**
 * Shared by the ztunnel's end-to-end tests and its benchmark: a lab built from
 * test/testdata/ztunnel-lab.yaml, and ways to act inside it directly (ip netns exec), to read a node's
 * metrics and rules, to capture packets on a node's links, and to start or kill its ztunnel (any lab's).
 */
import { readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { adminSecretDirs } from "../../src/admin/mod.ts";
import { MESH, mesh, pidAlive, removeZtunnelRecord, ROOT, ztunnelRecord } from "./lab.ts";
import { waitFor } from "./wait.ts";

export const ZTUNNEL_FIXTURE = join(ROOT, "test", "testdata", "ztunnel-lab.yaml");

export interface LabProcess {
  id: string;
  netns: string;
  argv: string[];
  pid: number;
  log: string;
}

export interface LabInfo {
  prefix: string;
  stateDir: string;
  nodes: { name: string; netns: string; address: string }[];
  endpoints: { key: string; netns: string; node: string; ip: string; link: string }[];
  processes: LabProcess[];
}

export function labInfo(prefix: string): LabInfo {
  const s = JSON.parse(readFileSync(`/run/mesh-lab/${prefix}/state.json`, "utf8"));
  return { prefix, stateDir: s.stateDir, nodes: s.nodes, endpoints: s.endpoints, processes: s.processes };
}

export function podNetns(info: LabInfo, key: string): string {
  const e = info.endpoints.find((x) => x.key === key);
  if (!e) throw new Error(`no pod ${key} in the lab`);
  return e.netns;
}

export function nodeOf(info: LabInfo, name: string): { name: string; netns: string; address: string } {
  const n = info.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name} in the lab`);
  return n;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command inside a namespace with a hard timeout. */
export async function inNs(netns: string, argv: string[], timeoutMs = 20_000): Promise<Result> {
  const p = Bun.spawn(["ip", "netns", "exec", netns, ...argv], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** curl from a namespace: HTTP status ("000" when no answer), body, and curl's exit code. */
export async function curl(netns: string, url: string, headers: Record<string, string> = {}, timeoutS = 3): Promise<{ status: string; body: string; exit: number }> {
  const h = Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const r = await inNs(netns, ["curl", "-s", "-m", String(timeoutS), "-o", "-", "-w", "\n%{http_code}", ...h, url], (timeoutS + 5) * 1000);
  const i = r.stdout.lastIndexOf("\n");
  return { status: r.stdout.slice(i + 1).trim() || "000", body: r.stdout.slice(0, i), exit: r.code };
}

/** Sum of a metric's series whose labels include all of `labels`, from a node's /metrics. */
export async function metricValue(nodeNetns: string, name: string, labels: Record<string, string>): Promise<number> {
  const r = await inNs(nodeNetns, ["curl", "-s", "-m", "3", "http://127.0.0.1:15020/metrics"]);
  let total = 0;
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(" ").pop());
  }
  return total;
}

/** The node's nat rules as `iptables -S` prints them. */
export async function natRules(nodeNetns: string): Promise<string> {
  return (await inNs(nodeNetns, ["iptables", "-w", "-t", "nat", "-S"])).stdout;
}

/** Links of a namespace other than loopback. */
export async function links(netns: string): Promise<string[]> {
  const r = await inNs(netns, ["ip", "-json", "link", "show"]);
  return (JSON.parse(r.stdout || "[]") as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== "lo");
}

/** tcpdump on every link of some namespaces; `stop()` returns each capture file by "netns/link". */
export async function capture(namespaces: string[], dir: string): Promise<{ stop(): Promise<Map<string, string>> }> {
  const procs: { key: string; file: string; p: ReturnType<typeof Bun.spawn> }[] = [];
  for (const ns of namespaces) {
    for (const link of await links(ns)) {
      const file = join(dir, `${ns}_${link}.pcap`);
      const p = Bun.spawn(["ip", "netns", "exec", ns, "tcpdump", "--immediate-mode", "-i", link, "-U", "-s", "0", "-w", file, "tcp"], {
        stdout: "ignore",
        stderr: "pipe",
      });
      procs.push({ key: `${ns}/${link}`, file, p });
    }
  }
  // tcpdump says "listening on" once its socket is open.
  await Promise.all(procs.map(async ({ p, key }) => {
    const reader = (p.stderr as ReadableStream<Uint8Array>).getReader();
    let text = "";
    const deadline = Date.now() + 10_000;
    while (!text.includes("listening on")) {
      if (Date.now() > deadline) throw new Error(`tcpdump on ${key} did not start: ${text}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`tcpdump on ${key} exited: ${text}`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
  }));
  return {
    async stop() {
      await Bun.sleep(200);
      for (const { p } of procs) p.kill("SIGINT");
      await Promise.all(procs.map(({ p }) => Promise.race([p.exited, Bun.sleep(5000).then(() => p.kill("SIGKILL"))])));
      return new Map(procs.map(({ key, file }) => [key, file]));
    },
  };
}

/** Packets of a capture that match a tcpdump filter. */
export function countPackets(file: string, filter: string): number {
  const r = Bun.spawnSync(["tcpdump", "-nn", "-r", file, filter], { stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString().split("\n").filter((l) => l.trim()).length;
}

/** Starts a ztunnel process in a node's namespace (the lab's command line with changes); output to `log`. */
export function spawnZtunnel(netns: string, args: string[], log: string): { pid: number; kill(sig?: NodeJS.Signals | number): void; exited: Promise<number> } {
  // The roles log to stderr.
  const p = Bun.spawn(["ip", "netns", "exec", netns, MESH, "run", "--role", "ztunnel", ...args], { stdout: "ignore", stderr: Bun.file(log) });
  return { pid: p.pid, kill: (sig = "SIGTERM") => p.kill(sig), exited: p.exited };
}

/** The lab's ztunnel command line for a node, without the program and `run --role ztunnel`. */
export function ztunnelArgs(info: LabInfo, node: string): string[] {
  const p = info.processes.find((x) => x.id === `ztunnel/${node}`);
  if (!p) throw new Error(`no ztunnel/${node} in the lab`);
  const i = p.argv.indexOf("ztunnel");
  return p.argv.slice(i + 1);
}

export async function waitReady(nodeNetns: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(`ztunnel in ${nodeNetns} ready`, () => {
    const r = Bun.spawnSync(["ip", "netns", "exec", nodeNetns, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:15021/healthz/ready"]);
    return r.stdout.toString() === "200";
  }, timeoutMs);
}

export async function labApply(prefix: string, file: string): Promise<void> {
  const r = await mesh(["lab", "apply", "--prefix", prefix, file], 60_000);
  if (r.code !== 0) throw new Error(`lab apply failed: ${r.stdout}${r.stderr}`);
}

/** The file of the secret the admin server on 15000 keeps for a namespace (/run/mesh/admin/<netns inode>-15000.secret). */
function adminSecretFile(netnsInode: number): string {
  return join(adminSecretDirs()[0]!, `${netnsInode}-15000.secret`);
}

/**
 * GET on a proxy's admin API (localhost:15000 inside its namespace), with the secret its admin server
 * keeps. Undefined when it cannot be read or answered.
 */
export async function adminGet(netns: string, path: string): Promise<unknown> {
  let secret = "";
  try {
    secret = readFileSync(adminSecretFile(statSync(`/run/netns/${netns}`).ino), "utf8").trim();
  } catch {
    return undefined;
  }
  const r = await inNs(netns, ["curl", "-s", "-m", "2", "-H", `authorization: Bearer ${secret}`, `http://127.0.0.1:15000${path}`]);
  try {
    return JSON.parse(r.stdout);
  } catch {
    return undefined;
  }
}

/** Open file descriptors of a process (sockets included). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What a ztunnel killed with SIGKILL leaves behind, both named after its node's namespace. */
export interface KilledZtunnel {
  pid: number;
  /** The inode of its node's network namespace. */
  netnsInode: number;
  /** Its instance record (/run/mesh/ztunnel/<netns inode>-<node>/<pid>). */
  record: string;
  /** Its admin secret. */
  secret: string;
}

/**
 * Kills a lab's ztunnel on `node` with SIGKILL, so it cannot clean up after itself, and waits until it
 * is gone. What it leaves is the test's to check; removeKilledZtunnel (in afterAll) takes it away.
 */
export async function killLabZtunnel(info: LabInfo, node: string): Promise<KilledZtunnel> {
  const p = info.processes.find((x) => x.id === `ztunnel/${node}`);
  if (!p) throw new Error(`no ztunnel/${node} in the lab`);
  const netnsInode = statSync(`/run/netns/${p.netns}`).ino;
  const killed = { pid: p.pid, netnsInode, record: ztunnelRecord(netnsInode, node, p.pid), secret: adminSecretFile(netnsInode) };
  process.kill(p.pid, "SIGKILL");
  await waitFor(`ztunnel/${node} gone`, () => !pidAlive(p.pid), 10_000);
  return killed;
}

/** Removes what a killed ztunnel left (undefined: none was killed). */
export function removeKilledZtunnel(killed: KilledZtunnel | undefined): void {
  if (!killed) return;
  rmSync(killed.secret, { force: true });
  removeZtunnelRecord(killed.record);
}
