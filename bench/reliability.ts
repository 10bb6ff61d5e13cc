/**
 * `npm run soak` (= `npm run bench -- reliability [--soak-seconds 120]`), as root: it builds a lab.
 *
 * Does the mesh hold traffic while it is operated? A two-node lab (test/testdata/ztunnel-lab.yaml plus a
 * waypoint, certificates of one minute) carries continuous load for the whole run: from product-viewer
 * (node-a) to product-api (node-b) directly (ztunnel to ztunnel) and to product-api-local through the waypoint, each with
 * keep-alive connections and with one connection per request. The client never retries: a request that did
 * not get its whole 2xx answer is a failed request. Phases, one after the other, each required to end with
 * zero failed requests:
 *
 *   churn        40 saves of the configuration in 20 s; the ztunnels apply new versions
 *   transfer     256 MiB through the mesh, SHA-256 compared end to end
 *   control-kill the control role killed (-9) for 15 s, then restarted: a save reaches the ztunnels again
 *   ztunnel      overlapping restart of each node's ztunnel (new one ready, then SIGTERM to the old one)
 *   waypoint     overlapping restart of the waypoint
 *   tunnels      10 000 concurrent tunnels held, each checked twice with a request
 *   hostile      idle, garbage and half-ClientHello connections on 15008: each closed within the
 *                handshake timeout (10 s, plus up to 4 s of socket-timer granularity)
 *   soak         --soak-seconds (120) of load; RSS and fd count of the proxies stay flat
 *   certificates rotations of the 1-minute certificates seen during the soak (at least 2)
 *
 * Prints one line per phase and a summary; exits 1 if any phase failed or any request failed.
 * `--phases tunnels,hostile` runs only those (the lab and the load still run). Results: bench/README.md.
 */
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  adminGet,
  ensureBuilt,
  fdCount,
  forceDown,
  labInfo,
  type LabInfo,
  mesh,
  meshConfigYaml,
  podNetns,
  uniquePrefix,
  waypointYaml,
  ZTUNNEL_FIXTURE,
} from "../test/support/mod.ts";

const TOOLS = join(import.meta.dir, "_reliability_tools.ts");
const BUN = process.execPath;
const API = { ip: "10.244.2.10", vip: "10.96.0.20", wpVip: "10.96.0.21" };
const WAYPOINT = "shop/api-waypoint";

/**
 * The lab: the ztunnel fixture, one-minute certificates, and a waypoint (behind node-b) for the Service
 * product-api-local (node-a): that path crosses the nodes twice. A workload behind a waypoint admits only
 * the waypoint, so product-api (node-b) stays without one for the direct path.
 */
const EXTRA = `
${meshConfigYaml({ certificateTTL: "1m" })}
---
${waypointYaml({ name: "api-waypoint", namespace: "shop", addresses: ["10.244.2.20"] })}
`;

/** A policy in a namespace outside the mesh that selects nothing: each save is a real change, harmless. */
const churnDoc = (i: number) => `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: churn
  namespace: legacy
spec:
  selector:
    matchLabels: {churn: "${i}"}
  action: DENY
  rules: [{}]
`;

interface Phase {
  name: string;
  ok: boolean;
  requests: number;
  failed: number;
  detail: string;
}

interface Counters {
  ok: number;
  failed: number;
  errors: Record<string, number>;
}

const PHASES = ["churn", "transfer", "control-kill", "ztunnel", "waypoint", "tunnels", "hostile", "soak"];

function opts(args: string[]): { soakSeconds: number; phases: string[] } {
  const o = { soakSeconds: 120, phases: PHASES };
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === "--soak-seconds") o.soakSeconds = Number(args[i + 1]);
    else if (args[i] === "--phases") {
      o.phases = args[i + 1]!.split(",");
      const unknown = o.phases.filter((p) => !PHASES.includes(p));
      if (unknown.length) throw new Error(`Unknown phase ${unknown.join(", ")}: use ${PHASES.join(", ")}`);
    } else throw new Error(`Unknown option ${args[i]}: use --soak-seconds N, --phases ${PHASES.join(",")}`);
  }
  return o;
}

/** Runs a tool in a namespace to its end (without blocking this process's timers) and returns its output. */
async function inNs(netns: string, argv: string[], timeoutMs = 120_000): Promise<string> {
  const p = Bun.spawn(["ip", "netns", "exec", netns, ...argv], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${argv.join(" ")} in ${netns} failed (${code}): ${err}${out}`);
  return out;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, f: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

/** A process of ours in a namespace, its output to a log; `exited` resolves with its exit code. */
function spawnIn(argv: string[], log: string): { pid: number; exited: Promise<number>; kill(sig?: NodeJS.Signals): void } {
  const p = Bun.spawn(argv, { stdout: Bun.file(log), stderr: Bun.file(`${log}.err`) });
  return { pid: p.pid, exited: p.exited, kill: (sig = "SIGTERM") => p.kill(sig) };
}

export async function main(args: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("bench reliability: needs root (it builds a lab: network namespaces, iptables)");
    return 1;
  }
  const o = opts(args);
  ensureBuilt();
  const tmp = mkdtempSync(join(tmpdir(), "mesh-reliability-"));
  const prefix = uniquePrefix("rel");
  const configFile = join(tmp, "mesh.yaml");
  const fixture = readFileSync(ZTUNNEL_FIXTURE, "utf8");
  const bound = fixture.replace(
    "  name: product-api-local\n  namespace: shop\nspec:\n  clusterIP",
    "  name: product-api-local\n  namespace: shop\n  labels:\n    istio.io/use-waypoint: api-waypoint\nspec:\n  clusterIP",
  );
  if (bound === fixture) throw new Error("the fixture's Service product-api-local changed: update bench/reliability.ts");
  const base = `${bound}\n---\n${EXTRA}`;
  writeFileSync(configFile, base);
  const phases: Phase[] = [];
  const ours: { pid: number; kill(sig?: NodeJS.Signals): void; exited: Promise<number> }[] = [];
  let load: ReturnType<typeof Bun.spawn> | undefined;
  let counters: Counters = { ok: 0, failed: 0, errors: {} };
  let final: Counters = counters;
  let stateDir = "";
  const t0 = Date.now();
  try {
    const up = await mesh(["lab", "up", configFile, "--prefix", prefix, "--timeout", "90"], 180_000);
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stdout}${up.stderr}`);
    const info: LabInfo = labInfo(prefix);
    stateDir = info.stateDir;
    const state = JSON.parse(readFileSync(`/run/mesh-lab/${prefix}/state.json`, "utf8")) as { configFile: string };
    const viewer = podNetns(info, "shop/product-viewer");
    const apiNs = podNetns(info, "shop/product-api");
    const legacy = podNetns(info, "legacy/legacy-client");
    const nodeNs = (n: string) => info.nodes.find((x) => x.name === n)!.netns;
    const proc = (id: string) => info.processes.find((p) => p.id === id)!;
    // The current process of each proxy (restarts replace them).
    const pids: Record<string, number> = {
      "ztunnel/node-a": proc("ztunnel/node-a").pid,
      "ztunnel/node-b": proc("ztunnel/node-b").pid,
      [`waypoint/${WAYPOINT}`]: proc(`waypoint/${WAYPOINT}`).pid,
      control: proc("control").pid,
    };

    // The sink for the transfer, then the load for the whole run.
    const sink = spawnIn(["ip", "netns", "exec", apiNs, BUN, TOOLS, "sink", "9000"], join(tmp, "sink.log"));
    ours.push(sink);
    await until("the sink", () => readFileSync(join(tmp, "sink.log"), "utf8").includes("ready"), 10_000);
    const targets = [
      `${API.vip}:8000:/get:keepalive:2`,
      `${API.vip}:8000:/get:close:2`,
      `${API.wpVip}:8000:/get:keepalive:2`,
      `${API.wpVip}:8000:/get:close:2`,
    ];
    load = Bun.spawn(["ip", "netns", "exec", viewer, BUN, TOOLS, "load", ...targets], { stdout: "pipe", stderr: "inherit" });
    void (async () => {
      const reader = (load!.stdout as ReadableStream<Uint8Array>).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        pending += new TextDecoder().decode(value);
        let i: number;
        while ((i = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, i);
          pending = pending.slice(i + 1);
          try {
            counters = JSON.parse(line);
          } catch { /* partial */ }
        }
      }
    })();
    await until("load running", () => counters.ok > 100, 30_000);
    // Certificates of one minute rotate all along; the soak (nothing restarts then) must see at least 2.
    const serials = new Set<string>();
    const soakSerials = new Set<string>();
    let inSoak = false;
    const certPoll = setInterval(async () => {
      const c = (await adminGet(nodeNs("node-a"), "/certs")) as { certificates?: { identity: string; serial?: string }[] } | undefined;
      const s = c?.certificates?.find((x) => x.identity.endsWith("/sa/product-viewer"))?.serial;
      if (!s) return;
      serials.add(s);
      if (inSoak) soakSerials.add(s);
    }, 2000);

    const version = async (node: string) =>
      ((await adminGet(nodeNs(node), "/config_dump")) as { version?: number } | undefined)?.version ?? -1;
    const save = (i: number) => {
      const tmpFile = `${state.configFile}.tmp`;
      writeFileSync(tmpFile, base + churnDoc(i));
      renameSync(tmpFile, state.configFile);
    };

    /** Runs one phase under the load: the requests and failures counted between its start and end. */
    const phase = async (name: string, body: () => Promise<{ ok: boolean; detail: string }>) => {
      if (!o.phases.includes(name)) return;
      await Bun.sleep(1000);
      const before = { ...counters, errors: { ...counters.errors } };
      const started = Date.now();
      let r: { ok: boolean; detail: string };
      try {
        r = await body();
      } catch (e) {
        r = { ok: false, detail: `error: ${(e as Error).message}` };
      }
      // Requests in flight at the end are counted here (the client's timeout is 10 s; most take ms).
      await Bun.sleep(1500);
      const requests = counters.ok + counters.failed - before.ok - before.failed;
      const failed = counters.failed - before.failed;
      const errs = Object.entries(counters.errors)
        .map(([k, v]) => [k, v - (before.errors[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${v}x ${k}`);
      const p: Phase = {
        name,
        ok: r.ok && failed === 0 && requests > 0,
        requests,
        failed,
        detail: `${r.detail}${errs.length ? `; errors: ${errs.join(", ")}` : ""} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      };
      phases.push(p);
      console.log(`${p.ok ? "PASS" : "FAIL"} ${name.padEnd(12)} requests ${String(requests).padStart(7)}  failed ${failed}  ${p.detail}`);
    };

    await phase("churn", async () => {
      const v0 = await version("node-a");
      for (let i = 1; i <= 40; i++) {
        save(i);
        await Bun.sleep(500);
      }
      await until("the last save applied", async () => (await version("node-a")) > v0, 10_000);
      const v1 = await version("node-a");
      return { ok: v1 > v0, detail: `40 saves; node-a's ztunnel went from version ${v0} to ${v1}` };
    });

    await phase("transfer", async () => {
      const out = await inNs(viewer, [BUN, TOOLS, "transfer", API.ip, "9000", String(256 * 1024 * 1024)], 180_000);
      const r = JSON.parse(out.trim().split("\n").pop()!) as { bytes: number; match: boolean; seconds: number };
      return { ok: r.match, detail: `256 MiB, SHA-256 ${r.match ? "equal" : "DIFFERENT"} at both ends, ${r.seconds.toFixed(1)} s` };
    });

    await phase("control-kill", async () => {
      const ctl = proc("control");
      process.kill(pids.control!, "SIGKILL");
      await until("control gone", () => !alive(pids.control!), 5000);
      await Bun.sleep(15_000);
      const again = spawnIn(ctl.argv, join(tmp, "control.log"));
      ours.push(again);
      pids.control = again.pid;
      await until("control ready", () => {
        const r = Bun.spawnSync(["ip", "netns", "exec", ctl.netns, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://10.99.0.2:15021/healthz/ready"]);
        return r.stdout.toString() === "200";
      }, 30_000);
      const [a0, b0] = [await version("node-a"), await version("node-b")];
      save(1000);
      await until("a save after the restart reaches both ztunnels", async () =>
        (await version("node-a")) > a0 && (await version("node-b")) > b0, 30_000);
      return { ok: true, detail: `down 15 s; after the restart a save reached both ztunnels (v${a0} -> v${await version("node-a")})` };
    });

    const restart = async (id: string, readyTimeoutMs: number) => {
      const rec = proc(id);
      const old = pids[id]!;
      const log = join(tmp, `${id.replace(/\//g, "_")}-${Date.now()}.log`);
      const next = spawnIn(rec.argv, log);
      ours.push(next);
      // The roles log to stderr.
      await until(`${id}: the new process ready`, () => readFileSync(`${log}.err`, "utf8").includes('"msg":"ready"'), readyTimeoutMs);
      process.kill(old, "SIGTERM");
      const t = Date.now();
      await until(`${id}: the old process drained and gone`, () => !alive(old), 30_000);
      pids[id] = next.pid;
      return (Date.now() - t) / 1000;
    };

    await phase("ztunnel", async () => {
      const a = await restart("ztunnel/node-a", 30_000);
      const b = await restart("ztunnel/node-b", 30_000);
      return { ok: true, detail: `node-a then node-b: new ztunnel ready beside the old one, old one drained in ${a.toFixed(1)} s and ${b.toFixed(1)} s` };
    });

    await phase("waypoint", async () => {
      const s = await restart(`waypoint/${WAYPOINT}`, 30_000);
      return { ok: true, detail: `new waypoint ready beside the old one, old one drained in ${s.toFixed(1)} s` };
    });

    await phase("tunnels", async () => {
      const fd0 = fdCount(pids["ztunnel/node-a"]!);
      let peak = fd0;
      const sampler = setInterval(() => void (peak = Math.max(peak, fdCount(pids["ztunnel/node-a"]!))), 500);
      let r: { held: number; openFailed: number; check1: number; check2: number; errors: Record<string, number> };
      try {
        const out = await inNs(viewer, [BUN, TOOLS, "hold", API.vip, "8000", "10000"], 300_000);
        r = JSON.parse(out.trim().split("\n").pop()!);
      } finally {
        clearInterval(sampler);
      }
      // The pool closes its connections 10 s after their last stream (--pool-idle-timeout).
      const t = Date.now();
      let fd1 = fdCount(pids["ztunnel/node-a"]!);
      while (fd1 > fd0 + 40 && Date.now() - t < 30_000) {
        await Bun.sleep(1000);
        fd1 = fdCount(pids["ztunnel/node-a"]!);
      }
      const ok = r.held === 10_000 && r.check1 === 10_000 && r.check2 === 10_000 && fd1 <= fd0 + 40;
      return {
        ok,
        detail: `held ${r.held} (open failed ${r.openFailed}), checked ${r.check1} then ${r.check2}${
          Object.keys(r.errors).length ? ` (${Object.entries(r.errors).map(([k, v]) => `${v}x ${k}`).join(", ")})` : ""
        }; node-a fds ${fd0} -> peak ${peak} -> ${fd1} ${((Date.now() - t) / 1000).toFixed(0)} s after`,
      };
    });

    await phase("hostile", async () => {
      // From a pod outside the mesh to an ambient pod's 15008: node-a's rules hand it to its ztunnel.
      const results = await Promise.all(["idle", "garbage", "half-hello"].map(async (kind) => {
        const out = await inNs(legacy, [BUN, TOOLS, "hostile", "10.244.1.10", "15008", kind, "30"], 60_000);
        return JSON.parse(out.trim().split("\n").pop()!) as { kind: string; n: number; closed: number; maxSeconds: number };
      }));
      // The HBONE handshake timeout is 10 s; Bun's socket timers tick every 4 s, so a close comes 10 to 14 s in.
      const ok = results.every((r) => r.closed === r.n && r.maxSeconds <= 15);
      return { ok, detail: results.map((r) => `${r.kind}: ${r.closed}/${r.n} closed, last after ${r.maxSeconds.toFixed(1)} s`).join("; ") };
    });

    // The soak: proxies' RSS and fds 15 s in (warm) and at the end; certificates rotate meanwhile.
    const watched = ["ztunnel/node-a", "ztunnel/node-b", `waypoint/${WAYPOINT}`];
    inSoak = true;
    const soakStart = counters.ok + counters.failed;
    const soakFailed0 = counters.failed;
    await phase("soak", async () => {
      await Bun.sleep(15_000);
      const first = watched.map((id) => ({ id, rss: rssMb(pids[id]!), fds: fdCount(pids[id]!) }));
      await Bun.sleep(Math.max(0, o.soakSeconds - 15) * 1000);
      const last = watched.map((id) => ({ id, rss: rssMb(pids[id]!), fds: fdCount(pids[id]!) }));
      // Flat: RSS within 20 % (or 15 MB) of its warm value, fds within 30 (the load's own connections come and go).
      const flat = first.every((f, i) => last[i]!.rss <= Math.max(f.rss * 1.2, f.rss + 15) && last[i]!.fds <= f.fds + 30);
      return {
        ok: flat,
        detail: `${o.soakSeconds} s; ` + first.map((f, i) =>
          `${f.id.split("/").pop()} RSS ${f.rss.toFixed(0)} -> ${last[i]!.rss.toFixed(0)} MB, fds ${f.fds} -> ${last[i]!.fds}`
        ).join("; "),
      };
    });
    clearInterval(certPoll);
    if (o.phases.includes("soak")) {
      const rotations = Math.max(0, soakSerials.size - 1);
      const requests = counters.ok + counters.failed - soakStart;
      const failed = counters.failed - soakFailed0;
      const p: Phase = {
        name: "certificates",
        ok: rotations >= 2 && failed === 0,
        requests,
        failed,
        detail: `TTL 1m: ${rotations} rotations of product-viewer's certificate at node-a during the soak, ${serials.size} certificates over the run`,
      };
      phases.push(p);
      console.log(`${p.ok ? "PASS" : "FAIL"} ${p.name.padEnd(12)} requests ${String(requests).padStart(7)}  failed ${failed}  ${p.detail}`);
    }
  } catch (e) {
    phases.push({ name: "setup", ok: false, requests: 0, failed: 0, detail: (e as Error).message });
    console.log(`FAIL setup: ${(e as Error).message}`);
  } finally {
    if (load) {
      load.kill("SIGTERM");
      await Promise.race([load.exited, Bun.sleep(15_000)]);
      await Bun.sleep(200);
      final = counters;
    }
    for (const p of ours) {
      p.kill("SIGTERM");
      await Promise.race([p.exited, Bun.sleep(25_000).then(() => p.kill("SIGKILL"))]);
    }
    if ((phases.some((p) => !p.ok) || final.failed) && stateDir) {
      // The proxies' logs say why; the lab and its logs go away with it.
      const keep = join(tmpdir(), `mesh-reliability-${prefix}`);
      cpSync(join(stateDir, "logs"), join(keep, "lab"), { recursive: true });
      cpSync(tmp, join(keep, "run"), { recursive: true });
      console.log(`logs kept in ${keep}`);
    }
    await forceDown(prefix);
    rmSync(tmp, { recursive: true, force: true });
  }
  const failedPhases = phases.filter((p) => !p.ok);
  // The whole run, including the moments between phases.
  const total = final.ok + final.failed;
  console.log(
    `\nreliability: ${phases.length - failedPhases.length}/${phases.length} phases passed; ${total} requests over the run, ${final.failed} failed; ${
      ((Date.now() - t0) / 1000).toFixed(0)
    } s${failedPhases.length ? `; FAILED: ${failedPhases.map((p) => p.name).join(", ")}` : ""}`,
  );
  if (final.failed) console.log(`errors: ${JSON.stringify(final.errors)}`);
  return failedPhases.length || final.failed || total === 0 ? 1 : 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
