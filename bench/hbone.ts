/**
 * `npm run bench -- hbone [--rounds R] [--seconds S] [--conns N] [--rtt N] [--only a,b] [--format text|json]`
 *
 * One TCP tunnel pair on loopback (client half + server half, each its own process), five ways:
 *   hbone      ours: src/hbone (HTTP/2 CONNECT over mTLS on Bun TLS sockets, one pooled connection)
 *   node-h2    the same on Bun's node:http2 (one shared session)
 *   haproxy    two HAProxy 2.6 processes, mTLS between them (TLS 1.3, one thread each)
 *   bun-tls    a plain mTLS tunnel on Bun TLS sockets (a TLS connection per tunnel, no HTTP/2)
 *   direct     no proxy
 * Per path: single-stream throughput (iperf3, S seconds), 1-byte round trip p50/p99 (N round trips),
 * new tunnels per second (connect, 1 byte there and back, close; 8 workers, 1 s), each the median of
 * R rounds that visit the paths in turn; CPU seconds of both halves per GB; RSS of both halves idle
 * and with N open tunnels (KB per tunnel). Prints a table with ratios and the issue's goals.
 */
import { type Subprocess, spawn } from "bun";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCa } from "../src/hbone/_test_certs.ts";
import { fixedPort, waitForPort } from "../test/support/mod.ts";

const HERE = import.meta.dir;
const TOOLS = join(HERE, "_hbone_tools.ts");
const PROXY = join(HERE, "_hbone_proxy.ts");
const BUN = process.execPath;
const HOST = "127.0.0.1";
const PATHS = ["hbone", "node-h2", "haproxy", "bun-tls", "direct"] as const;
type PathName = (typeof PATHS)[number];

interface Opts {
  rounds: number;
  seconds: number;
  conns: number;
  rtt: number;
  only: PathName[];
  format: "text" | "json";
}

interface Result {
  gbps?: number;
  /** CPU seconds of both halves per GB carried (steady under machine load, unlike Gbit/s). */
  cpu_s_per_gb?: number;
  p50_us?: number;
  p99_us?: number;
  tunnels_per_s?: number;
  rss_idle_mb?: number;
  kb_per_tunnel?: number;
  error?: string;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { rounds: 3, seconds: 2, conns: 1000, rtt: 1000, only: [...PATHS], format: "text" };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = args[++i];
    if (a === "--seconds") o.seconds = Number(v);
    else if (a === "--rounds") o.rounds = Number(v);
    else if (a === "--conns") o.conns = Number(v);
    else if (a === "--rtt") o.rtt = Number(v);
    else if (a === "--format") o.format = v === "json" ? "json" : "text";
    else if (a === "--only") o.only = v.split(",").filter((x): x is PathName => (PATHS as readonly string[]).includes(x));
    else throw new Error(`Unknown option "${a}": use --rounds, --seconds, --conns, --rtt, --only, --format`);
  }
  return o;
}

const verbose = true;
function progress(msg: string): void {
  if (verbose) process.stderr.write(`  ${msg}\n`);
}



const procs = new Set<Subprocess>();

function start(argv: string[]): Subprocess<"pipe", "pipe", "pipe"> {
  const p = spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  procs.add(p);
  return p;
}

async function waitLine(p: Subprocess<"pipe", "pipe", "pipe">, text: string, timeoutMs = 20_000): Promise<void> {
  const reader = p.stdout.getReader();
  let out = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!out.includes(text)) {
      const r = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null)]);
      if (r === null) throw new Error(`timed out waiting for "${text}"`);
      if (r.done) throw new Error(`process exited: ${await new Response(p.stderr).text()}`);
      out += new TextDecoder().decode(r.value);
    }
  } finally {
    reader.releaseLock();
  }
}

function stop(p: Subprocess): void {
  p.kill();
  procs.delete(p);
}

async function runJson(argv: string[]): Promise<Record<string, number>> {
  const p = spawn(argv, { stdout: "pipe", stderr: "pipe" });
  procs.add(p);
  const out = await new Response(p.stdout).text();
  await p.exited;
  procs.delete(p);
  const line = out.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${argv.slice(0, 3).join(" ")}: ${out.slice(0, 300)} ${await new Response(p.stderr).text()}`);
  }
}

function rssKb(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : 0;
}

interface Ports {
  iperf: number;
  echo: number;
}

interface RunningPath {
  /** Where clients connect for the iperf3 target and the echo target. */
  entry: Ports;
  pids: number[];
  procs: Subprocess[];
  /** The processes are Bun (collect garbage on SIGUSR2). */
  gc: boolean;
}

async function startPath(name: PathName, dir: string, targets: Ports): Promise<RunningPath> {
  if (name === "direct") return { entry: targets, pids: [], procs: [], gc: false };
  const entry = { iperf: fixedPort(), echo: fixedPort() };
  const mid = { iperf: fixedPort(), echo: fixedPort() };
  const ready = async (argv: string[]) => {
    const p = start(argv);
    await waitLine(p, "ready");
    return p;
  };
  let ps: Subprocess[];
  if (name === "hbone" || name === "node-h2") {
    const kind = name === "hbone" ? "ours" : "h2node";
    const server = await ready([BUN, PROXY, `${kind}-server`, dir, String(mid.iperf)]);
    const client = await ready([BUN, PROXY, `${kind}-client`, dir, String(mid.iperf), `${entry.iperf}:${targets.iperf}`, `${entry.echo}:${targets.echo}`]);
    ps = [server, client];
  } else if (name === "bun-tls") {
    const server = await ready([BUN, PROXY, "tls-server", dir, `${mid.iperf}:${targets.iperf}`, `${mid.echo}:${targets.echo}`]);
    const client = await ready([BUN, PROXY, "tls-client", dir, `${entry.iperf}:${mid.iperf}`, `${entry.echo}:${mid.echo}`]);
    ps = [server, client];
  } else {
    const common = "global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n";
    const tlsOpts = `ssl-min-ver TLSv1.3 alpn h2 ca-file ${dir}/ca.pem verify required`;
    const server = common + (["iperf", "echo"] as const).map((k) =>
      `frontend f_${k}\n  bind ${HOST}:${mid[k]} ssl crt ${dir}/server-bundle.pem ${tlsOpts}\n  default_backend b_${k}\nbackend b_${k}\n  server t ${HOST}:${targets[k]}\n`
    ).join("");
    const client = common + (["iperf", "echo"] as const).map((k) =>
      `frontend f_${k}\n  bind ${HOST}:${entry[k]}\n  default_backend b_${k}\nbackend b_${k}\n  server s ${HOST}:${mid[k]} ssl crt ${dir}/client-bundle.pem ${tlsOpts}\n`
    ).join("");
    writeFileSync(join(dir, "haproxy-server.cfg"), server);
    writeFileSync(join(dir, "haproxy-client.cfg"), client);
    ps = [start(["haproxy", "-db", "-f", join(dir, "haproxy-server.cfg")]), start(["haproxy", "-db", "-f", join(dir, "haproxy-client.cfg")])];
    await waitForPort(mid.echo);
    await waitForPort(entry.echo);
  }
  return { entry, pids: ps.map((p) => p.pid), procs: ps, gc: name !== "haproxy" };
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined);

/** CPU time (user + system) of a process so far, in seconds. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

async function iperf(port: number, seconds: number): Promise<{ gbps: number; bytes: number }> {
  const ip = spawn(["iperf3", "-c", HOST, "-p", String(port), "-t", String(seconds), "-J"], { stdout: "pipe", stderr: "pipe" });
  procs.add(ip);
  const out = await new Response(ip.stdout).text();
  await ip.exited;
  procs.delete(ip);
  const j = JSON.parse(out);
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes };
}

/** Memory of one path: idle, then per open tunnel (a warm-up round of N tunnels, then the measured one). */
async function measureMemory(name: PathName, path: RunningPath, o: Opts, r: Result): Promise<void> {
  const rss = () => path.pids.reduce((n, pid) => n + rssKb(pid), 0);
  const settle = async () => {
    // Bun processes collect garbage on SIGUSR2 (see _hbone_proxy.ts); HAProxy has no GC to wait for.
    if (path.gc) for (const pid of path.pids) process.kill(pid, "SIGUSR2");
    await Bun.sleep(400);
  };
  const holdTunnels = async () => {
    const holder = start([BUN, TOOLS, "hold", String(path.entry.echo), String(o.conns)]);
    await waitLine(holder, `held ${o.conns}`, 60_000);
    return async () => {
      holder.stdin.end();
      await holder.exited;
      procs.delete(holder);
      await Bun.sleep(300);
    };
  };
  await settle();
  r.rss_idle_mb = rss() / 1024;
  progress(`${name}: holding ${o.conns} tunnels (a warm-up round, then the measured one)`);
  // The first burst leaves allocator high-water behind in every runtime; the second one is measured.
  await (await holdTunnels())();
  await settle();
  const before = rss();
  const release = await holdTunnels();
  await settle();
  r.kb_per_tunnel = (rss() - before) / o.conns;
  await release();
}

/**
 * Every path is started first; then each measurement runs in rounds that visit the paths in turn, and
 * the median of the rounds is kept, so that a change in the machine's load hits all paths alike.
 */
async function measureAll(o: Opts, dir: string, targets: Ports): Promise<Partial<Record<PathName, Result>>> {
  const results: Partial<Record<PathName, Result>> = {};
  const running = new Map<PathName, RunningPath>();
  const samples = new Map<PathName, { gbps: number[]; p50: number[]; p99: number[]; cps: number[]; cpu: number; bytes: number }>();
  const guard = async (name: PathName, f: () => Promise<void>) => {
    const r = results[name]!;
    if (r.error) return;
    try {
      await f();
    } catch (e) {
      r.error = (e as Error).message.slice(0, 300);
    }
  };
  try {
    for (const name of o.only) {
      results[name] = {};
      samples.set(name, { gbps: [], p50: [], p99: [], cps: [], cpu: 0, bytes: 0 });
      progress(`${name}: starting`);
      await guard(name, async () => {
        const p = await startPath(name, dir, targets);
        running.set(name, p);
        // One tunnel end to end (and the pooled HTTP/2 connection of the HTTP/2 pairs).
        await runJson([BUN, TOOLS, "rtt", String(p.entry.echo), "50"]);
      });
    }
    for (const name of o.only) {
      const p = running.get(name);
      if (p && p.pids.length) await guard(name, () => measureMemory(name, p, o, results[name]!));
    }
    for (let round = 1; round <= o.rounds; round++) {
      progress(`throughput, round ${round} of ${o.rounds} (${o.seconds} s per path)`);
      for (const name of o.only) {
        const p = running.get(name);
        if (!p) continue;
        await guard(name, async () => {
          const cpu = () => p.pids.reduce((n, pid) => n + cpuSeconds(pid), 0);
          const before = cpu();
          const r = await iperf(p.entry.iperf, o.seconds);
          const smp = samples.get(name)!;
          smp.gbps.push(r.gbps);
          smp.cpu += cpu() - before;
          smp.bytes += r.bytes;
        });
      }
    }
    for (let round = 1; round <= o.rounds; round++) {
      progress(`1-byte round trips and new tunnels, round ${round} of ${o.rounds}`);
      for (const name of o.only) {
        const p = running.get(name);
        if (!p) continue;
        await guard(name, async () => {
          const lat = await runJson([BUN, TOOLS, "rtt", String(p.entry.echo), String(o.rtt)]);
          samples.get(name)!.p50.push(lat.p50_us);
          samples.get(name)!.p99.push(lat.p99_us);
          const cr = await runJson([BUN, TOOLS, "connrate", String(p.entry.echo), "1", "8"]);
          samples.get(name)!.cps.push(cr.cps);
        });
      }
    }
  } finally {
    for (const p of running.values()) for (const x of p.procs) stop(x);
  }
  for (const name of o.only) {
    const r = results[name]!;
    const s = samples.get(name)!;
    r.gbps = median(s.gbps);
    r.p50_us = median(s.p50);
    r.p99_us = median(s.p99);
    r.tunnels_per_s = median(s.cps);
    if (running.get(name)?.pids.length && s.bytes > 0) r.cpu_s_per_gb = s.cpu / (s.bytes / 1e9);
  }
  return results;
}

function fmt(v: number | undefined, digits = 1): string {
  return v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits);
}

export async function main(args: string[]): Promise<number> {
  const o = parseOpts(args);
  const dir = mkdtempSync(join(tmpdir(), "hbone-bench-"));
  const results: Partial<Record<PathName, Result>> = {};
  const loadBefore = loadavg()[0];
  try {
    progress("certificates and targets");
    const ca = await makeTestCa("bench-root");
    const srv = await ca.issue("spiffe://cluster.local/ns/bench/sa/server");
    const cli = await ca.issue("spiffe://cluster.local/ns/bench/sa/client");
    writeFileSync(join(dir, "ca.pem"), ca.ca);
    writeFileSync(join(dir, "server.pem"), srv.cert);
    writeFileSync(join(dir, "server-key.pem"), srv.key);
    writeFileSync(join(dir, "client.pem"), cli.cert);
    writeFileSync(join(dir, "client-key.pem"), cli.key);
    writeFileSync(join(dir, "server-bundle.pem"), srv.cert + srv.key);
    writeFileSync(join(dir, "client-bundle.pem"), cli.cert + cli.key);
    const targets = { iperf: fixedPort(), echo: fixedPort() };
    start(["iperf3", "-s", "-B", HOST, "-p", String(targets.iperf)]);
    const echo = start([BUN, TOOLS, "echo", String(targets.echo)]);
    await waitLine(echo, "ready");
    await waitForPort(targets.iperf);
    Object.assign(results, await measureAll(o, dir, targets));
  } finally {
    for (const p of procs) p.kill();
    procs.clear();
    rmSync(dir, { recursive: true, force: true });
  }

  const ours = results.hbone;
  const hap = results.haproxy;
  const tls = results["bun-tls"];
  const ratio = (a?: number, b?: number) => (a && b ? a / b : undefined);
  const goals = {
    throughput_vs_haproxy: { value: ratio(ours?.gbps, hap?.gbps), goal: 1.3 },
    throughput_vs_bun_tls: { value: ratio(ours?.gbps, tls?.gbps), goal: 0.85 },
    kb_per_tunnel: { value: ours?.kb_per_tunnel, goal: 4 },
  };
  const command = `npm run bench -- hbone ${args.join(" ")}`.trim();
  const load = { before: loadBefore, after: loadavg()[0], cpus: navigator.hardwareConcurrency };
  if (o.format === "json") {
    console.log(JSON.stringify({ command, options: o, load, results, goals }, null, 2));
  } else {
    const rows = [["path", "Gbit/s", "x ours", "x haproxy", "x bun-tls", "CPU s/GB", "p50 us", "p99 us", "tunnels/s", "RSS idle MB", "KB/tunnel"]];
    for (const name of o.only) {
      const r = results[name]!;
      if (r.error) {
        rows.push([name, `error: ${r.error}`]);
        continue;
      }
      rows.push([
        name,
        fmt(r.gbps, 2),
        fmt(ratio(r.gbps, ours?.gbps), 2),
        fmt(ratio(r.gbps, hap?.gbps), 2),
        fmt(ratio(r.gbps, tls?.gbps), 2),
        fmt(r.cpu_s_per_gb, 2),
        fmt(r.p50_us, 0),
        fmt(r.p99_us, 0),
        fmt(r.tunnels_per_s, 0),
        fmt(r.rss_idle_mb, 1),
        fmt(r.kb_per_tunnel, 2),
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
    console.log(`\n${command}   (load average ${load.before.toFixed(1)} -> ${load.after.toFixed(1)} on ${load.cpus} CPUs)`);
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : (c ?? "").padStart(widths[i]))).join("  "));
    const mark = (ok: boolean | undefined) => (ok === undefined ? "n/a" : ok ? "met" : "NOT met");
    console.log(`\ngoals (hbone):`);
    console.log(`  throughput >= 1.3x haproxy: ${fmt(goals.throughput_vs_haproxy.value, 2)}x  ${mark(goals.throughput_vs_haproxy.value === undefined ? undefined : goals.throughput_vs_haproxy.value >= 1.3)}`);
    console.log(`  throughput >= 0.85x bun-tls: ${fmt(goals.throughput_vs_bun_tls.value, 2)}x  ${mark(goals.throughput_vs_bun_tls.value === undefined ? undefined : goals.throughput_vs_bun_tls.value >= 0.85)}`);
    console.log(`  <= 4 KB per open tunnel: ${fmt(goals.kb_per_tunnel.value, 2)} KB  ${mark(goals.kb_per_tunnel.value === undefined ? undefined : goals.kb_per_tunnel.value <= 4)}`);
  }
  return Object.values(results).some((r) => r?.error) ? 1 : 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
