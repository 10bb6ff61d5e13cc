/**
 * `npm run bench -- ztunnel [--rounds N] [--seconds S] [--conns N] [--scale-pods N] [--scale-only 1]` (root:
 * it builds labs; 5 rounds by default; --scale-only 1 measures only the large configuration below, no lab)
 *
 * Pod to pod across two lab nodes (product-viewer on node-a -> product-api on node-b, pod IP), three
 * ways in one run:
 *   mesh      the ztunnels (--redirect node): capture, HBONE mTLS between the nodes
 *   no mesh   the same lab with --no-mesh: plain routing (the floor)
 *   haproxy   --no-mesh plus an HAProxy 2.6 mTLS tunnel between the nodes (TLS 1.3, client certificates,
 *             one thread each): the client dials node-a's HAProxy, which dials node-b's over mTLS
 * Measured per path (median of --rounds; the two labs run side by side and every round measures the
 * three paths back to back, because this machine is shared and its load changes): single-stream
 * throughput (iperf3) and the proxies' CPU seconds per GB, 1-byte round trip p50/p99, new connections
 * per second, vCPU per 1000 requests/s of 1 KB HTTP (wrk, 16 keep-alive connections; the proxies' CPU
 * time over the run, both nodes), and the proxies' RSS at rest and its growth per open connection (both
 * nodes together). Prints the load average before and after, the table of medians, the median over the
 * rounds of each round's mesh/HAProxy ratio (the two were measured seconds apart, under the same load),
 * and the goals of the data plane issue.
 *
 * First, without a lab: the RSS of one ztunnel holding a large configuration (--scale-pods, default
 * 10 000 Pods over 500 nodes, 1 000 Services, 400 AuthorizationPolicies: the control benchmark's mesh).
 * A control role serves it on loopback and the ztunnel of node-0 (no capture) connects, gets its
 * certificates and the whole configuration, and turns ready; its RSS is read 2 s later.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createCsr } from "../src/identity/mod.ts";
import { CertificateAuthority } from "../src/identity/mod.ts";
import {
  ensureBuilt,
  fixedPort,
  forceDown,
  labInfo,
  type LabInfo,
  MESH,
  mesh,
  podNetns,
  uniquePrefix,
  ZTUNNEL_FIXTURE,
} from "../test/support/mod.ts";
import { namespaceFile } from "./control.ts";

const TOOLS = join(import.meta.dir, "_ztunnel_tools.ts");
const API_IP = "10.244.2.10";
const PORTS = { iperf: 5201, echo: 7000, http: 8080 };
const TICK = 100; // USER_HZ

interface Opts {
  rounds: number;
  seconds: number;
  conns: number;
  "scale-pods": number;
  "scale-only": number;
}

interface PathResult {
  gbps: number;
  /** The proxies' CPU seconds per GB moved (both nodes), robust to other load on the machine. */
  cpuSecPerGb?: number;
  p50: number;
  p99: number;
  cps: number;
  rps: number;
  vcpuPer1k?: number;
  rssIdleMb?: number;
  anonIdleMb?: number;
  kbPerConn?: number;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { rounds: 5, seconds: 5, conns: 4000, "scale-pods": 10_000, "scale-only": 0 };
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]!.replace(/^--/, "") as keyof Opts;
    if (!(k in o)) throw new Error(`Unknown option ${args[i]}: use --rounds, --seconds, --conns, --scale-pods, --scale-only`);
    o[k] = Number(args[i + 1]);
  }
  return o;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function run(netns: string, argv: string[], timeoutMs = 120_000): string {
  const r = Bun.spawnSync(["ip", "netns", "exec", netns, ...argv], { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} in ${netns} failed: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

/** Starts a long-running process in a namespace; resolves once it printed `readyText` (if given). */
async function start(netns: string, argv: string[], readyText?: string): Promise<ReturnType<typeof Bun.spawn>> {
  const p = Bun.spawn(["ip", "netns", "exec", netns, ...argv], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  if (readyText) {
    const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
    let out = "";
    const deadline = Date.now() + 30_000;
    while (!out.includes(readyText)) {
      if (Date.now() > deadline) throw new Error(`${argv.join(" ")} did not print "${readyText}"`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`${argv.join(" ")} exited: ${await new Response(p.stderr as ReadableStream).text()}`);
      out += new TextDecoder().decode(value);
    }
    reader.releaseLock();
  } else {
    await Bun.sleep(300);
  }
  return p;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssKb(pid: number, field = "VmRSS"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) : 0;
}

/** The servers in the destination pod: iperf3, echo, 1 KB HTTP. */
async function startServers(apiNs: string): Promise<ReturnType<typeof Bun.spawn>[]> {
  return [
    await start(apiNs, ["iperf3", "-s", "-p", String(PORTS.iperf)]),
    await start(apiNs, [process.execPath, TOOLS, "echo", String(PORTS.echo)], "ready"),
    await start(apiNs, [process.execPath, TOOLS, "http", String(PORTS.http)], "ready"),
  ];
}

/** One way from the viewer to the servers: where the client dials, and which processes are the proxies. */
interface Path {
  name: string;
  viewerNs: string;
  host: string;
  ports: typeof PORTS;
  proxies: number[];
}

interface Samples {
  gbps: number[];
  cpuPerGb: number[];
  p50: number[];
  p99: number[];
  cps: number[];
  rps: number[];
  vcpu: number[];
}

const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + cpuTicks(p), 0) / TICK;

/** One round of every measurement on one path (the caller interleaves the paths, round by round). */
function measureRound(p: Path, s: Samples, o: Opts, round: number): void {
  let c0 = cpuOf(p.proxies);
  const ip = JSON.parse(run(p.viewerNs, ["iperf3", "-c", p.host, "-p", String(p.ports.iperf), "-t", String(o.seconds), "-J"]));
  const bytes = ip.end.sum_received.bytes as number;
  s.gbps.push(ip.end.sum_received.bits_per_second / 1e9);
  if (p.proxies.length) s.cpuPerGb.push((cpuOf(p.proxies) - c0) / (bytes / 1e9));
  const rt = JSON.parse(run(p.viewerNs, [process.execPath, TOOLS, "rtt", p.host, String(p.ports.echo), "5000"]));
  s.p50.push(rt.p50_us);
  s.p99.push(rt.p99_us);
  const cr = JSON.parse(run(p.viewerNs, [process.execPath, TOOLS, "connrate", p.host, String(p.ports.echo), String(Math.min(3, o.seconds)), "16"]));
  s.cps.push(cr.cps);
  c0 = cpuOf(p.proxies);
  const t0 = performance.now();
  const wrk = run(p.viewerNs, ["wrk", "-t1", "-c16", `-d${o.seconds}s`, `http://${p.host}:${p.ports.http}/`]);
  const wall = (performance.now() - t0) / 1000;
  const reqs = Number(wrk.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0);
  s.rps.push(reqs);
  if (p.proxies.length) s.vcpu.push((cpuOf(p.proxies) - c0) / wall / (reqs / 1000));
  console.log(`  ${p.name} round ${round}: ${s.gbps.at(-1)!.toFixed(2)} Gbit/s` +
    (p.proxies.length ? ` (${s.cpuPerGb.at(-1)!.toFixed(2)} CPU-s/GB)` : "") +
    `, rtt p50 ${s.p50.at(-1)} us p99 ${s.p99.at(-1)} us, ${s.cps.at(-1)} conn/s, ${Math.round(reqs)} req/s` +
    (p.proxies.length ? `, ${s.vcpu.at(-1)!.toFixed(3)} vCPU per 1000 req/s` : "") + ` (load ${loadavg()[0]!.toFixed(2)})`);
}

/**
 * The proxies' memory: RSS at rest, and its growth per connection held open through them. A first
 * batch (a quarter of the count) warms the heap up, so the per-connection figure is the steady-state
 * cost rather than the first growth of a fresh process.
 */
async function measureMemory(p: Path, o: Opts): Promise<{ rssIdleMb: number; anonIdleMb: number; kbPerConn: number }> {
  const rss = () => p.proxies.reduce((s, pid) => s + rssKb(pid), 0);
  const idle = rss();
  // The private part: the rest of RSS is pages of the executable, shared by every process of the binary.
  const anon = p.proxies.reduce((s, pid) => s + rssKb(pid, "RssAnon"), 0);
  const hold = (n: number) => start(p.viewerNs, [process.execPath, TOOLS, "hold", p.host, String(p.ports.echo), String(n)], "held");
  const warm = await hold(Math.ceil(o.conns / 4));
  await Bun.sleep(1000);
  const before = rss();
  const holder = await hold(o.conns);
  await Bun.sleep(1000);
  const after = rss();
  for (const h of [warm, holder]) {
    (h.stdin as import("bun").FileSink).end();
    await Promise.race([h.exited, Bun.sleep(10_000)]);
    h.kill();
  }
  return { rssIdleMb: idle / 1024, anonIdleMb: anon / 1024, kbPerConn: (after - before) / o.conns };
}

async function labUp(prefix: string, noMesh: boolean): Promise<LabInfo> {
  const r = await mesh(["lab", "up", ZTUNNEL_FIXTURE, "--prefix", prefix, ...(noMesh ? ["--no-mesh"] : []), "--timeout", "60"], 180_000);
  if (r.code !== 0) throw new Error(`lab up failed: ${r.stdout}${r.stderr}`);
  return labInfo(prefix);
}

/** HAProxy mTLS tunnel: node-a accepts plain TCP and dials node-b over mTLS; node-b forwards to the pod. */
async function startHaproxy(info: LabInfo, dir: string): Promise<{ procs: ReturnType<typeof Bun.spawn>[]; ports: typeof PORTS }> {
  const ca = await CertificateAuthority.open(join(dir, "ca"));
  const issue = async (id: string) => {
    const { csrPem, keyPem } = await createCsr(id);
    const c = await ca.signCsr(csrPem, { identity: id });
    return c.chainPem + keyPem;
  };
  writeFileSync(join(dir, "root.pem"), ca.trustBundlePem);
  writeFileSync(join(dir, "client.pem"), await issue("spiffe://cluster.local/ns/shop/sa/product-viewer"));
  writeFileSync(join(dir, "server.pem"), await issue("spiffe://cluster.local/ns/shop/sa/product-api"));
  const a = info.nodes.find((n) => n.name === "node-a")!;
  const b = info.nodes.find((n) => n.name === "node-b")!;
  const head = `global\n  nbthread 1\n  ssl-default-bind-options ssl-min-ver TLSv1.3\n  ssl-default-server-options ssl-min-ver TLSv1.3\n` +
    `defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 5m\n  timeout server 5m\n`;
  let cfgA = head, cfgB = head;
  const ports = { iperf: 25201, echo: 27000, http: 28080 };
  for (const [k, podPort] of Object.entries(PORTS)) {
    const front = ports[k as keyof typeof PORTS];
    const tunnel = front + 10000;
    cfgA += `listen ${k}\n  bind ${a.address}:${front}\n  server b ${b.address}:${tunnel} ssl crt ${dir}/client.pem ca-file ${dir}/root.pem verify required\n`;
    cfgB += `listen ${k}\n  bind ${b.address}:${tunnel} ssl crt ${dir}/server.pem ca-file ${dir}/root.pem verify required\n  server pod ${API_IP}:${podPort}\n`;
  }
  writeFileSync(join(dir, "a.cfg"), cfgA);
  writeFileSync(join(dir, "b.cfg"), cfgB);
  const procs = [
    await start(b.netns, ["haproxy", "-db", "-f", join(dir, "b.cfg")]),
    await start(a.netns, ["haproxy", "-db", "-f", join(dir, "a.cfg")]),
  ];
  return { procs, ports };
}

/** RSS (MB) of a ztunnel holding the configuration of `pods` Pods (see the top of this file). */
async function measureScale(pods: number, dir: string): Promise<{ rssMb: number; anonMb: number; readyMs: number }> {
  const cfg = join(dir, "scale-config");
  const data = join(dir, "scale-data");
  mkdirSync(cfg, { recursive: true });
  const files = 100;
  const perNs = Math.ceil(pods / files);
  for (let ns = 0; ns < files; ns++) writeFileSync(join(cfg, `ns-${String(ns).padStart(3, "0")}.yaml`), namespaceFile(ns, perNs, ns * perNs, 500));
  const port = async () => `127.0.0.1:${fixedPort()}`;
  const listen = await port();
  const loopback = async () => ["--metrics-addr", await port(), "--admin-addr", await port()];
  const controlReady = await port();
  const control = Bun.spawn([MESH, "run", "--role", "control", "--config", cfg, "--data-dir", data, "--listen", listen, "--ready-addr", controlReady, ...(await loopback()), "--log-level", "warn"], { stdout: "ignore", stderr: "inherit" });
  const procs = [control];
  const waitReady = async (addr: string, p: ReturnType<typeof Bun.spawn>, what: string) => {
    for (const deadline = Date.now() + 180_000; ; await Bun.sleep(200)) {
      if (await fetch(`http://${addr}/healthz/ready`).then((r) => r.ok, () => false)) return;
      if (Date.now() > deadline || p.exitCode !== null) throw new Error(`${what} did not become ready`);
    }
  };
  try {
    await waitReady(controlReady, control, "the control role");
    const t = Bun.spawnSync([MESH, "token", "create", "--data-dir", data, "--node", "node-0"], { stdout: "pipe", stderr: "pipe" });
    if (t.exitCode !== 0) throw new Error(`token create failed: ${t.stderr.toString()}`);
    const token = t.stdout.toString().trim();
    writeFileSync(join(dir, "scale.token"), token);
    const ready = await port();
    const t0 = performance.now();
    const z = Bun.spawn([MESH, "run", "--role", "ztunnel", "--node", "node-0", "--control-plane", listen, "--ca-cert", join(data, "root-cert.pem"),
      "--token-file", join(dir, "scale.token"), "--redirect", "none", "--hbone-addr", await port(), "--outbound-addr", await port(),
      "--inbound-addr", await port(), "--ready-addr", ready, ...(await loopback()), "--log-level", "warn"], { stdout: "ignore", stderr: "inherit" });
    procs.push(z);
    await waitReady(ready, z, "the ztunnel");
    const readyMs = performance.now() - t0;
    await Bun.sleep(2000);
    return { rssMb: rssKb(z.pid) / 1024, anonMb: rssKb(z.pid, "RssAnon") / 1024, readyMs };
  } finally {
    // The ztunnel first: it would log the loss of its control plane.
    for (const p of procs.reverse()) {
      p.kill();
      await p.exited;
    }
  }
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined ? "-" : n.toFixed(digits);
}

export async function main(args: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.log("bench ztunnel: needs root (it builds labs in network namespaces); skipped");
    return 0;
  }
  const o = parseOpts(args);
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "mesh-bench-ztunnel-"));
  const results: Record<string, PathResult> = {};
  const plain = uniquePrefix("zbn");
  const meshed = uniquePrefix("zbm");
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  const load0 = loadavg()[0]!;
  let samples!: Map<string, Samples>;
  let scale: Awaited<ReturnType<typeof measureScale>> | undefined;
  try {
    if (o["scale-pods"] > 0) {
      scale = await measureScale(o["scale-pods"], dir);
      console.log(`one ztunnel holding ${o["scale-pods"]} Pods: RSS ${scale.rssMb.toFixed(1)} MB (private ${scale.anonMb.toFixed(1)} MB), ready in ${Math.round(scale.readyMs)} ms`);
    }
    if (o["scale-only"]) return 0;
    // Both labs at once (separate namespaces), so every round measures the three paths back to back
    // under the same conditions: this machine is shared, and its load changes from minute to minute.
    const [pInfo, mInfo] = await Promise.all([labUp(plain, true), labUp(meshed, false)]);
    for (const info of [pInfo, mInfo]) {
      for (const ns of [...info.nodes.map((n) => n.netns), ...info.endpoints.map((e) => e.netns)]) {
        // Thousands of short connections per second would otherwise run out of ports in TIME_WAIT.
        run(ns, ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
      }
      procs.push(...(await startServers(podNetns(info, "shop/product-api"))));
    }
    const hap = await startHaproxy(pInfo, dir);
    procs.push(...hap.procs);
    const paths: Path[] = [
      { name: "no mesh", viewerNs: podNetns(pInfo, "shop/product-viewer"), host: API_IP, ports: PORTS, proxies: [] },
      {
        name: "haproxy mTLS",
        viewerNs: podNetns(pInfo, "shop/product-viewer"),
        host: pInfo.nodes.find((n) => n.name === "node-a")!.address,
        ports: hap.ports,
        proxies: hap.procs.map((p) => p.pid),
      },
      {
        name: "mesh",
        viewerNs: podNetns(mInfo, "shop/product-viewer"),
        host: API_IP,
        ports: PORTS,
        proxies: ["node-a", "node-b"].map((n) => mInfo.processes.find((p) => p.id === `ztunnel/${n}`)!.pid),
      },
    ];
    const memory = new Map<string, { rssIdleMb: number; anonIdleMb: number; kbPerConn: number }>();
    for (const p of paths) if (p.proxies.length) memory.set(p.name, await measureMemory(p, o));
    samples = new Map(paths.map((p) => [p.name, { gbps: [], cpuPerGb: [], p50: [], p99: [], cps: [], rps: [], vcpu: [] } as Samples]));
    for (let r = 1; r <= o.rounds; r++) for (const p of paths) measureRound(p, samples.get(p.name)!, o, r);
    for (const p of paths) {
      const s = samples.get(p.name)!;
      results[p.name] = {
        gbps: median(s.gbps),
        cpuSecPerGb: s.cpuPerGb.length ? median(s.cpuPerGb) : undefined,
        p50: median(s.p50),
        p99: median(s.p99),
        cps: median(s.cps),
        rps: median(s.rps),
        vcpuPer1k: s.vcpu.length ? median(s.vcpu) : undefined,
        ...memory.get(p.name),
      };
    }
  } finally {
    for (const p of procs) p.kill();
    await forceDown(plain).catch(() => {});
    await forceDown(meshed).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }

  const rows = Object.entries(results);
  if (!results["mesh"] || !results["haproxy mTLS"]) return 1;
  console.log("\n| path | Gbit/s (1 stream) | proxy CPU-s per GB | RTT p50 us | RTT p99 us | new conn/s | 1 KB HTTP req/s | vCPU per 1000 req/s | proxy RSS idle MB (2 nodes) | KB per open conn (2 nodes) |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const [name, r] of rows) {
    console.log(`| ${name} | ${fmt(r.gbps, 2)} | ${fmt(r.cpuSecPerGb, 2)} | ${r.p50} | ${r.p99} | ${r.cps} | ${Math.round(r.rps)} | ${fmt(r.vcpuPer1k, 3)} | ${fmt(r.rssIdleMb)} | ${fmt(r.kbPerConn, 2)} |`);
  }
  const m = results["mesh"]!, h = results["haproxy mTLS"]!;
  const sm = samples.get("mesh")!, sh = samples.get("haproxy mTLS")!;
  // Each round's ratio, then the median: a round's two paths ran back to back under the same load.
  const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const r = {
    gbps: ratio(sm.gbps, sh.gbps),
    cpuPerGb: ratio(sm.cpuPerGb, sh.cpuPerGb),
    p50: ratio(sm.p50, sh.p50),
    p99: ratio(sm.p99, sh.p99),
    cps: ratio(sm.cps, sh.cps),
    vcpu: ratio(sm.vcpu, sh.vcpu),
  };
  console.log(`\nmesh / HAProxy, median of the ${o.rounds} per-round ratios: throughput ${r.gbps.toFixed(2)}x, CPU-s per GB ${r.cpuPerGb.toFixed(2)}x, ` +
    `RTT p50 ${r.p50.toFixed(2)}x, p99 ${r.p99.toFixed(2)}x, new conn/s ${r.cps.toFixed(2)}x, vCPU per 1000 req/s ${r.vcpu.toFixed(2)}x`);
  console.log(`load average (1 min) ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)} on ${navigator.hardwareConcurrency} CPUs`);
  const perNodeRss = (m.rssIdleMb ?? 0) / 2;
  const goals: [string, boolean, string][] = [
    ["throughput >= 1.3x HAProxy's", r.gbps >= 1.3, `${r.gbps.toFixed(2)}x`],
    ["RTT p50 <= HAProxy's", r.p50 <= 1, `${r.p50.toFixed(2)}x (${m.p50} vs ${h.p50} us)`],
    ["RTT p99 <= 1.2x HAProxy's", r.p99 <= 1.2, `${r.p99.toFixed(2)}x (${m.p99} vs ${h.p99} us)`],
    ["new connections/s >= 4x HAProxy's", r.cps >= 4, `${r.cps.toFixed(2)}x`],
    ["<= 0.06 vCPU per 1000 req/s (both ztunnels)", (m.vcpuPer1k ?? 1) <= 0.06, fmt(m.vcpuPer1k, 3)],
    ["idle RSS <= 45 MB per ztunnel", perNodeRss <= 45, `${perNodeRss.toFixed(1)} MB (private ${((m.anonIdleMb ?? 0) / 2).toFixed(1)} MB; HAProxy RSS ${((h.rssIdleMb ?? 0) / 2).toFixed(1)} MB)`],
    ["<= 4 KB per connection per ztunnel", (m.kbPerConn ?? 99) / 2 <= 4, `${fmt((m.kbPerConn ?? 0) / 2, 2)} KB`],
    ...(scale ? [[`<= 80 MB holding ${o["scale-pods"]} Pods`, scale.rssMb <= 80, `${scale.rssMb.toFixed(1)} MB`] as [string, boolean, string]] : []),
  ];
  console.log("\nGoals (data plane issue, second pass):");
  for (const [what, ok, val] of goals) console.log(`  ${ok ? "met    " : "NOT MET"}  ${what}: ${val}`);
  return 0;
}
