/**
 * `npm run bench -- control [--workloads N] [--clients N] [--rounds N] [--files N]`
 *
 * The control plane under a big mesh: a configuration directory with 10 000 workloads (one file per
 * namespace), 500 simulated ztunnels (one per node) holding config streams, then one change at a time to
 * one file. Measures, per round, the time from saving the file until each proxy ACKed the new version
 * (p50, p99, max over the proxies), and the control plane's RSS. The control plane runs as its own
 * process (`mesh run --role control`), so its RSS is its own.
 *
 * The simulated proxies speak the real protocol over real mTLS (bootstrap with a token, client
 * certificate, HTTP/2 stream, NDJSON frames, ACKs). They parse every delta in full; of a snapshot (the
 * initial sync) they read the header only, to keep the benchmark process light.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBootstrapToken } from "../src/identity/mod.ts";
import { BootstrapResponseSchema, callJson, FrameReader, openSession, parseWith, PATHS } from "../src/xds/mod.ts";
import { fixedPort } from "../test/support/mod.ts";

interface Opts {
  workloads: number;
  clients: number;
  rounds: number;
  files: number;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { workloads: 10_000, clients: 500, rounds: 5, files: 100 };
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]!.replace(/^--/, "") as keyof Opts;
    if (!(k in o)) throw new Error(`Unknown option ${args[i]}: use --workloads, --clients, --rounds, --files`);
    o[k] = Number(args[i + 1]);
  }
  return o;
}

/** One namespace file: its pods (spread over the nodes), a Service per 10 pods, and policies. */
export function namespaceFile(ns: number, podsPerNs: number, firstPod: number, nodes: number, marker = ""): string {
  const name = `ns-${String(ns).padStart(3, "0")}`;
  const docs: string[] = [
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    istio.io/dataplane-mode: ambient`,
  ];
  for (let s = 0; s < 10; s++) docs.push(`apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-${s}\n  namespace: ${name}`);
  for (let p = 0; p < podsPerNs; p++) {
    const i = firstPod + p;
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const extra = marker && p === 0 ? `\n    bench-round: "${marker}"` : "";
    docs.push(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-${p}\n  namespace: ${name}\n  labels:\n    app: app-${p % 10}\n    tier: t${p % 3}${extra}\n` +
        `spec:\n  nodeName: node-${i % nodes}\n  serviceAccountName: sa-${p % 10}\n  containers:\n  - name: c\n    ports:\n    - containerPort: 8080\nstatus:\n  podIP: ${ip}`,
    );
  }
  for (let s = 0; s < 10; s++) {
    const vip = `10.96.${ns}.${s + 1}`;
    docs.push(
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-${s}\n  namespace: ${name}\nspec:\n  clusterIP: ${vip}\n  selector:\n    app: app-${s}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080`,
    );
  }
  docs.push(
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ns-allow\n  namespace: ${name}\nspec:\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        namespaces: ["${name}"]`,
  );
  for (let s = 0; s < 3; s++) {
    docs.push(
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny-t${s}\n  namespace: ${name}\nspec:\n  selector:\n    matchLabels:\n      tier: t${s}\n  action: DENY\n  rules:\n  - from:\n    - source:\n        notNamespaces: ["${name}"]\n    to:\n    - operation:\n        ports: ["9${s}00"]`,
    );
  }
  return docs.join("\n---\n") + "\n";
}

function writeAtomic(path: string, text: string): void {
  const tmp = join(path, "..", `.tmp-${Math.random().toString(36).slice(2)}`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}


/** A ztunnel as the control plane sees it: bootstrap, stream, ACK. */
class SimProxy {
  version = -1;
  /** performance.now() when each version was ACKed. */
  acks = new Map<number, number>();
  /** performance.now() when the first chunk of each stream read arrived after an idle period. */
  arrivals: number[] = [];
  #session?: http2.ClientHttp2Session;
  #waiters: { min: number; resolve: () => void }[] = [];
  constructor(readonly node: string) {}

  async connect(address: string, ca: string, token: string): Promise<void> {
    const boot = await openSession(address, { ca });
    const r = await callJson(boot, "POST", PATHS.bootstrap, {}, { authorization: `Bearer ${token}` });
    boot.destroy();
    const b = parseWith(BootstrapResponseSchema, r.body);
    if (r.status !== 200 || !b.ok) throw new Error(`bootstrap of ${this.node} failed: HTTP ${r.status}`);
    this.#session = await openSession(address, { ca, cert: b.value.chainPem, key: b.value.keyPem }, 30_000);
    const stream = this.#session.request({ ":method": "POST", ":path": PATHS.stream }, { endStream: false });
    const reader = new FrameReader();
    stream.on("data", (d: Buffer) => {
      this.arrivals.push(performance.now());
      for (const f of reader.push(d)) {
        let version: number;
        if (f.startsWith('{"type":"snapshot"')) {
          version = Number(/"version":(\d+)/.exec(f.slice(0, 100))![1]);
        } else {
          const m = JSON.parse(f) as { type: string; version: number; base: number };
          if (m.type !== "delta" || m.base !== this.version) throw new Error(`${this.node}: unexpected ${m.type} on ${this.version}`);
          version = m.version;
        }
        this.version = version;
        stream.write(JSON.stringify({ type: "ack", version }) + "\n");
        this.acks.set(version, performance.now());
        this.#waiters = this.#waiters.filter((w) => (version >= w.min ? (w.resolve(), false) : true));
      }
    });
    stream.on("error", () => {});
    stream.write(JSON.stringify({ type: "hello", build: "bench" }) + "\n");
  }

  /** Resolves when a version >= min is ACKed; returns the ACK time. */
  waitFor(min: number): Promise<number> {
    return new Promise((resolve) => {
      const done = () => resolve([...this.acks].find(([v]) => v >= min)![1]);
      if (this.version >= min) return done();
      this.#waiters.push({ min, resolve: done });
    });
  }

  close(): void {
    this.#session?.destroy();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

async function scrape(port: number, name: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name));
}

export async function main(args: string[]): Promise<number> {
  const o = parseOpts(args);
  const dir = mkdtempSync(join(tmpdir(), "mesh-bench-control-"));
  const cfg = join(dir, "config");
  const dataDir = join(dir, "data");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(cfg);
  const podsPerNs = Math.ceil(o.workloads / o.files);
  const t0 = performance.now();
  for (let ns = 0; ns < o.files; ns++) writeFileSync(join(cfg, `ns-${String(ns).padStart(3, "0")}.yaml`), namespaceFile(ns, podsPerNs, ns * podsPerNs, o.clients));
  console.log(`config: ${o.files} files, ${podsPerNs * o.files} workloads on ${o.clients} nodes, ${o.files * 10} services, ${o.files * 4} policies (${Math.round(performance.now() - t0)} ms to write)`);

  const [listen, metricsPort, readyPort] = [fixedPort(), fixedPort(), fixedPort()];
  const root = join(import.meta.dir, "..");
  const bin = process.execPath;
  const prof = process.env.BENCH_CONTROL_CPU_PROF ? ["--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_CONTROL_CPU_PROF}`] : [];
  const child = spawn(bin, [
    ...prof,
    join(root, "src/cli/main.ts"), "run", "--role", "control", "--config", cfg, "--data-dir", dataDir,
    "--listen", `127.0.0.1:${listen}`, "--metrics-addr", `127.0.0.1:${metricsPort}`, "--ready-addr", `127.0.0.1:${readyPort}`,
    "--admin-addr", "127.0.0.1:0", "--log-level", process.env.BENCH_CONTROL_LOG_LEVEL ?? "warn",
  ], { stdio: ["ignore", "inherit", "inherit"] });
  const address = `127.0.0.1:${listen}`;
  const proxies: SimProxy[] = [];
  try {
    const startT = performance.now();
    await withTimeout((async () => {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${readyPort}/healthz/ready`).then((r) => r.ok, () => false);
        if (ok) return;
        if (child.exitCode !== null) throw new Error(`control plane exited with ${child.exitCode}`);
        await Bun.sleep(100);
      }
    })(), 120_000, "control plane ready");
    console.log(`control plane ready in ${Math.round(performance.now() - startT)} ms; RSS ${rssMb(child.pid!).rss.toFixed(0)} MB`);

    const ca = readFileSync(join(dataDir, "root-cert.pem"), "utf8");
    const syncT = performance.now();
    let next = 0;
    let connected = 0;
    const connectOne = async () => {
      while (next < o.clients) {
        const i = next++;
        const p = new SimProxy(`node-${i}`);
        proxies.push(p);
        await p.connect(address, ca, await createBootstrapToken(dataDir, { node: p.node, ttlSeconds: 3600 }));
        if (++connected % 100 === 0) process.stdout.write(`  ${connected}/${o.clients} proxies connected\n`);
      }
    };
    await withTimeout(Promise.all(Array.from({ length: 16 }, connectOne)), 300_000, "proxies connect");
    await withTimeout(Promise.all(proxies.map((p) => p.waitFor(0))), 600_000, "initial snapshots");
    const v0 = Math.max(...proxies.map((p) => p.version));
    await withTimeout(Promise.all(proxies.map((p) => p.waitFor(v0))), 120_000, "all on the same version");
    const mem0 = rssMb(child.pid!);
    console.log(`${o.clients} proxies synced to version ${v0} in ${Math.round(performance.now() - syncT)} ms; control plane RSS ${mem0.rss.toFixed(0)} MB (peak ${mem0.hwm.toFixed(0)} MB)`);

    const rows: { round: number; p50: number; p99: number; max: number }[] = [];
    const all: number[] = [];
    let version = v0;
    for (let r = 1; r <= o.rounds; r++) {
      await Bun.sleep(300);
      const ns = (r * 37) % o.files;
      const text = namespaceFile(ns, podsPerNs, ns * podsPerNs, o.clients, `r${r}`);
      const changedAt = performance.now();
      writeAtomic(join(cfg, `ns-${String(ns).padStart(3, "0")}.yaml`), text);
      const times = await withTimeout(Promise.all(proxies.map((p) => p.waitFor(version + 1))), 60_000, `round ${r} ACKs`);
      version = Math.max(...proxies.map((p) => p.version));
      const lat = times.map((t) => t - changedAt).sort((a, b) => a - b);
      const arr = proxies.map((p) => p.arrivals.find((t) => t >= changedAt)! - changedAt).sort((a, b) => a - b);
      console.log(`    first byte at the proxies: p50 ${pct(arr, 50).toFixed(0)} ms, min ${arr[0]!.toFixed(0)}, max ${arr.at(-1)!.toFixed(0)}`);
      all.push(...lat);
      rows.push({ round: r, p50: pct(lat, 50), p99: pct(lat, 99), max: lat.at(-1)! });
      console.log(`  round ${r}: change to ns-${ns} -> version ${version}: p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms, max ${lat.at(-1)!.toFixed(0)} ms`);
    }
    all.sort((a, b) => a - b);
    const mem = rssMb(child.pid!);
    const hist = await scrape(metricsPort, 'mesh_control_push_duration_seconds_sum{scope="change"}');
    const count = await scrape(metricsPort, 'mesh_control_push_duration_seconds_count{scope="change"}');
    console.log("");
    console.log("| workloads | proxies | rounds | p50 (ms) | p99 (ms) | max (ms) | control RSS (MB) | RSS peak (MB) |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    console.log(`| ${podsPerNs * o.files} | ${o.clients} | ${o.rounds} | ${pct(all, 50).toFixed(0)} | ${pct(all, 99).toFixed(0)} | ${all.at(-1)!.toFixed(0)} | ${mem.rss.toFixed(0)} | ${mem.hwm.toFixed(0)} |`);
    console.log(`control plane's own histogram (change -> all answered): ${hist[0]?.split(" ")[1] ?? "?"} s over ${count[0]?.split(" ")[1] ?? "?"} changes`);
    const pass = pct(all, 99) < 1000 && mem.hwm < 500;
    console.log(`goal p99 < 1000 ms and RSS < 500 MB: ${pass ? "met" : "NOT met"}`);
    return pass ? 0 : 1;
  } finally {
    for (const p of proxies) p.close();
    child.kill("SIGTERM");
    await Promise.race([new Promise((r) => child.once("exit", r)), Bun.sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
