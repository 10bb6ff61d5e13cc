/**
 * `npm run bench -- waypoint [--duration S] [--connections N] [--rounds N] [--keep]` (5 rounds by default)
 *
 * The waypoint against HAProxy's jwt_verify, in one lab, in one run. Both L7 proxies do the same work per
 * request: terminate mTLS from a client-side tunnel, verify an RS256 JWT (Istio's demo token: signature,
 * issuer, expiry), authorize (POST to /anything* only, for that issuer's principals), route by path to
 * the app, strip the token, and originate mTLS to a server-side tunnel in front of the app. Load: wrk
 * from a pod, fixed concurrency, 1 KB POST bodies, keep-alive connections.
 *
 *   waypoint path: client pod -> ztunnel (node-a) -> HBONE -> waypoint -> HBONE -> ztunnel (node-b) -> httpbin
 *   HAProxy path:  client pod -> HAProxy TCP tunnel (node-a) -> mTLS -> HAProxy L7 (node-b) -> mTLS ->
 *                  HAProxy TCP tunnel (node-b) -> httpbin pod
 *
 * Reported per L7 proxy (the waypoint; the L7 HAProxy, not its tunnels): requests/s, p50/p99 latency
 * (wrk), the process's own CPU (utime+stime from /proc over the run), requests/s per CPU-second, vCPU
 * per 1000 rps, and RSS at the end of the run; then the median over the rounds of each round's
 * waypoint/HAProxy ratio of requests per CPU-second, the load average, and the goals.
 *
 * First, without the lab (no root needed, `--codec-only` stops there): the HTTP/1.1 server layer alone,
 * ours (src/waypoint/http1) against Bun's node:http Server fed a Duplex (`server.emit("connection")`,
 * docs/bun.md 5), both on in-memory streams: CPU microseconds per keep-alive request with a 1 KB body.
 */
import { createPublicKey } from "node:crypto";
import http from "node:http";
import { Duplex } from "node:stream";
import { Http1Downstream } from "../src/waypoint/mod.ts";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { CertificateAuthority, createCsr } from "../src/identity/mod.ts";
import { join, resolve } from "node:path";
import { waypointYaml } from "../test/support/mod.ts";

const ROOT = resolve(import.meta.dir, "..");
const MESH = join(ROOT, "dist", "mesh");
const JWT = join(ROOT, "src", "waypoint", "testdata", "jwt");

interface Opts {
  duration: number;
  connections: number;
  rounds: number;
  keep: boolean;
  codecOnly: boolean;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { duration: 10, connections: 32, rounds: 5, keep: false, codecOnly: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--keep") o.keep = true;
    else if (a === "--codec-only") o.codecOnly = true;
    else if (a === "--duration") o.duration = Number(args[++i]);
    else if (a === "--connections") o.connections = Number(args[++i]);
    else if (a === "--rounds") o.rounds = Number(args[++i]);
    else throw new Error(`Unknown option ${a}: use --duration S, --connections N, --rounds N, --keep, --codec-only`);
  }
  return o;
}

// ---- the HTTP/1.1 server layer alone ---------------------------------------------------------------

type Listener = (a?: unknown) => void;
/** One end of an in-memory byte pipe (delivery on a microtask, as a socket's data arrives later). */
class MemoryEnd {
  peer!: MemoryEnd;
  closed = false;
  #on: Record<string, Listener[]> = { data: [], end: [], drain: [], close: [] };
  /** The consumer the HTTP/1.1 server binds (the end it serves); the client end uses listeners. */
  #events: { data(c: Uint8Array): void } | undefined;
  write(c: Uint8Array): boolean {
    const p = this.peer;
    queueMicrotask(() => {
      p.#events?.data(c);
      for (const f of p.#on.data!) f(c);
    });
    return true;
  }
  bind(events: { data(c: Uint8Array): void }) {
    this.#events = events;
  }
  end() {}
  pause() {}
  resume() {}
  reset() {
    this.closed = true;
  }
  on(e: string, f: Listener) {
    this.#on[e]!.push(f);
    return this;
  }
  off(e: string, f: Listener) {
    const l = this.#on[e]!;
    l.splice(l.indexOf(f), 1);
    return this;
  }
}

function memoryPair(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const CODEC_REQUEST = Buffer.from(
  `POST /anything HTTP/1.1\r\nhost: api:8000\r\nuser-agent: wrk\r\nauthorization: Bearer ${"x".repeat(600)}\r\n` +
    `content-type: application/octet-stream\r\ncontent-length: 1024\r\n\r\n${"y".repeat(1024)}`,
);
const CODEC_BODY = Buffer.from('{"ok":true}');

/** Sends `n` keep-alive requests one after another; CPU microseconds per request. */
async function driveCodec(client: MemoryEnd, n: number): Promise<number> {
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  let buf = "";
  client.on("data", (c) => {
    buf += Buffer.from(c as Uint8Array).toString("latin1");
    let i;
    while ((i = buf.indexOf('{"ok":true}')) >= 0) {
      buf = buf.slice(i + 11);
      if (++done === n) finish();
      else client.write(CODEC_REQUEST);
    }
  });
  const c0 = process.cpuUsage();
  client.write(CODEC_REQUEST);
  await all;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function codecComparison(): Promise<void> {
  const ours = () => {
    const [client, server] = memoryPair();
    new Http1Downstream(server as never, (req, res) => {
      req.body.discard();
      res.writeHead(200, "OK", [["content-type", "application/json"]], { kind: "length", length: CODEC_BODY.length });
      res.end(CODEC_BODY);
    }, { maxHeadBytes: 60_000, idleTimeoutMs: 60_000, headTimeoutMs: 60_000, recordLimit: () => 0 });
    return client;
  };
  const nodeServer = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": CODEC_BODY.length });
      res.end(CODEC_BODY);
    });
  });
  const viaNodeHttp = () => {
    const [client, server] = memoryPair();
    const d = new Duplex({
      read() {},
      write(c, _e, cb) {
        server.write(c);
        cb();
      },
    });
    server.on("data", (c) => d.push(Buffer.from(c as Uint8Array)));
    Object.assign(d, { remoteAddress: "127.0.0.1", setTimeout: () => d, setNoDelay: () => d, setKeepAlive: () => d });
    nodeServer.emit("connection", d);
    return client;
  };
  const rows: [string, number][] = [];
  for (const [name, make] of [["src/waypoint/http1 (ours)", ours], ["node:http Server on a Duplex", viaNodeHttp]] as const) {
    await driveCodec(make(), 5_000); // warm-up
    const runs = [await driveCodec(make(), 20_000), await driveCodec(make(), 20_000), await driveCodec(make(), 20_000)];
    rows.push([name, runs.sort((a, b) => a - b)[1]!]);
  }
  console.log("HTTP/1.1 server layer alone (in memory, keep-alive, 1 KB POST; median of 3 x 20 000 requests):\n");
  console.log("| server | CPU us per request |\n| --- | --- |");
  for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(1)} |`);
  console.log("");
}

function run(argv: string[], timeoutMs = 120_000): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

/**
 * The HAProxy baseline: three processes, so the L7 one does what the waypoint does between two HBONE
 * legs. A TCP tunnel on node-a wraps the client's connection in mTLS (what the client's ztunnel does);
 * the L7 HAProxy terminates mTLS, checks the token, and re-originates mTLS to a tunnel on node-b, which
 * hands plain TCP to the app (what the destination's ztunnel does). Every hop verifies the peer's
 * certificate against the mesh's root.
 */
async function haproxyConfigs(dir: string, pubPem: string): Promise<void> {
  const ca = await CertificateAuthority.open(join(dir, "ca"));
  const issue = async (name: string, id: string) => {
    const { csrPem, keyPem } = await createCsr(id);
    const c = await ca.signCsr(csrPem, { identity: id });
    writeFileSync(join(dir, name), c.chainPem + keyPem);
  };
  writeFileSync(join(dir, "root.pem"), ca.trustBundlePem);
  await issue("client.pem", "spiffe://cluster.local/ns/plain/sa/plain-client");
  await issue("l7.pem", "spiffe://cluster.local/ns/plain/sa/haproxy");
  await issue("app.pem", "spiffe://cluster.local/ns/plain/sa/plain-app");
  writeFileSync(join(dir, "demo-pub.pem"), pubPem);
  const tls = (crt: string) => `ssl crt ${join(dir, crt)} ca-file ${join(dir, "root.pem")} verify required`;
  const head = `global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
`;
  writeFileSync(join(dir, "tunnel-a.cfg"), `${head}listen tunnel
  mode tcp
  bind 10.244.1.12:8080
  server l7 10.244.2.12:8443 ${tls("client.pem")}
`);
  writeFileSync(join(dir, "tunnel-b.cfg"), `${head}listen tunnel
  mode tcp
  bind 10.244.2.13:8443 ${tls("app.pem")}
  server app 10.244.2.11:80
`);
  writeFileSync(
    join(dir, "haproxy.cfg"),
    `${head}  mode http
  option http-keep-alive
frontend fe
  bind 10.244.2.12:8443 ${tls("l7.pem")}
  # Authentication: an RS256 token of testing@secure.istio.io, signature verified, not expired.
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${join(dir, "demo-pub.pem")}") -m int 1 }
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request deny deny_status 401 unless { var(txn.iss) -m str testing@secure.istio.io }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  # Authorization: POST to /anything* only.
  http-request deny deny_status 403 unless METH_POST { path_beg /anything }
  http-request del-header authorization
  # Routing by path.
  use_backend app if { path_beg /anything }
  default_backend app
backend app
  http-reuse always
  server app 10.244.2.13:8443 ${tls("l7.pem")}
`,
  );
}

function config(dir: string): string {
  const jwks = JSON.stringify(JSON.parse(readFileSync(join(JWT, "demo-jwks.json"), "utf8")));
  const pod = (name: string, ns: string, node: string, ip: string, command: string[], ports: number[]) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app: ${name}
spec:
  nodeName: ${node}
  serviceAccountName: default
  containers:
  - name: c
    command: ${JSON.stringify(command)}
    ports: ${JSON.stringify(ports.map((p) => ({ containerPort: p })))}
status:
  podIP: ${ip}`;
  return [
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n  labels:\n    istio.io/dataplane-mode: ambient`,
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain`,
    `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: bench`,
    `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: plain`,
    pod("client", "bench", "node-a", "10.244.1.10", ["sleep", "infinity"], []),
    pod("app", "bench", "node-b", "10.244.2.10", ["mesh", "httpbin", "--port", "80"], [80]),
    pod("plain-client", "plain", "node-a", "10.244.1.11", ["sleep", "infinity"], []),
    pod("plain-app", "plain", "node-b", "10.244.2.11", ["mesh", "httpbin", "--port", "80"], [80]),
    pod("haproxy-tunnel-a", "plain", "node-a", "10.244.1.12", ["/usr/sbin/haproxy", "-db", "-f", join(dir, "tunnel-a.cfg")], [8080]),
    pod("haproxy", "plain", "node-b", "10.244.2.12", ["/usr/sbin/haproxy", "-db", "-f", join(dir, "haproxy.cfg")], [8443]),
    pod("haproxy-tunnel-b", "plain", "node-b", "10.244.2.13", ["/usr/sbin/haproxy", "-db", "-f", join(dir, "tunnel-b.cfg")], [8443]),
    `apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: bench
  labels:
    istio.io/use-waypoint: waypoint
spec:
  clusterIP: 10.96.0.20
  selector:
    app: app
  ports:
  - name: http
    port: 8000
    targetPort: 80`,
    waypointYaml({ name: "waypoint", namespace: "bench", addresses: ["10.244.2.20"] }),
    `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: bench
spec:
  selector:
    matchLabels:
      app: app
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '${jwks}'`,
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: post-anything
  namespace: bench
spec:
  selector:
    matchLabels:
      app: app
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/*"]
    to:
    - operation:
        methods: ["POST"]
        paths: ["/anything*"]`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: api
  namespace: bench
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: api
    port: 8000
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /anything
    backendRefs:
    - name: api
      port: 8000`,
  ].join("\n---\n") + "\n";
}

/** utime+stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ = 100)
}

function rssMb(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(out.match(re)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = out.match(new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`));
    return m ? ms(m[1]!, m[2]!) : NaN;
  };
  const errs = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct("50"),
    p99: pct("99"),
    errors: errs ? errs.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
    requests: num(/(\d+) requests in/),
  };
}

interface Row {
  name: string;
  wrk: WrkResult;
  cpu: number;
  rss: number;
  idleRss: number;
}

export async function main(args: string[]): Promise<number> {
  const o = parseOpts(args);
  await codecComparison();
  if (o.codecOnly) return 0;
  if (process.getuid?.() !== 0) {
    console.log("bench waypoint needs root (it runs in the lab): sudo npm run bench -- waypoint");
    return 1;
  }
  if (!existsSync(MESH)) {
    const b = Bun.spawnSync([process.execPath, "run", "build"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
    if (b.exitCode !== 0) return 1;
  }
  const prefix = `wb${(process.pid % 10000).toString(36)}`;
  const P = ["--prefix", prefix];
  const dir = mkdtempSync(join(tmpdir(), "mesh-bench-waypoint-"));
  const token = readFileSync(join(JWT, "demo.jwt"), "utf8").trim();
  const jwk = (JSON.parse(readFileSync(join(JWT, "demo-jwks.json"), "utf8")) as { keys: object[] }).keys[0]!;
  const pubPem = createPublicKey({ key: jwk as never, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
  const lua = join(dir, "post.lua");
  writeFileSync(lua, `wrk.method = "POST"\nwrk.body = string.rep("x", 1024)\nwrk.headers["Authorization"] = "Bearer ${token}"\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  const file = join(dir, "bench.yaml");
  await haproxyConfigs(dir, pubPem);
  writeFileSync(file, config(dir));
  try {
    console.log(`lab up (prefix ${prefix}) ...`);
    const up = run([MESH, "lab", "up", file, ...P, "--timeout", "60"], 150_000);
    if (up.code !== 0) {
      console.log(up.out + up.err);
      return 1;
    }
    const state = JSON.parse(readFileSync(`/run/mesh-lab/${prefix}/state.json`, "utf8")) as { processes: { id: string; pid: number }[] };
    const pidOf = (id: string) => state.processes.find((p) => p.id === id)!.pid;
    const targets = [
      { name: "waypoint (mesh)", pid: pidOf("waypoint/bench/waypoint"), pod: "bench/client", url: "http://10.96.0.20:8000/anything/bench" },
      { name: "HAProxy 2.6 jwt_verify, mTLS both legs", pid: pidOf("pod/plain/haproxy"), pod: "plain/plain-client", url: "http://10.244.1.12:8080/anything/bench" },
    ];
    // Sanity: both answer 200 with the token, and refuse without it.
    for (const t of targets) {
      const ok = run([MESH, "lab", "exec", ...P, t.pod, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x", "-H", `Authorization: Bearer ${token}`, t.url]);
      const no = run([MESH, "lab", "exec", ...P, t.pod, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x", t.url]);
      const bad = run([MESH, "lab", "exec", ...P, t.pod, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x", "-H", `Authorization: Bearer ${token.slice(0, -2)}xx`, t.url]);
      console.log(`${t.name}: with token ${ok.out}, without ${no.out}, tampered ${bad.out}`);
      if (ok.out !== "200" || bad.out !== "401" || no.out === "200") {
        console.log("the two proxies do not enforce the same check: stopping");
        return 1;
      }
    }
    const rows: Row[] = [];
    const load0 = loadavg()[0]!;
    const idle = new Map(targets.map((t) => [t.name, rssMb(t.pid)]));
    for (let round = 0; round < o.rounds; round++) {
      for (const t of targets) {
        // Warm-up: connections, pools, JIT.
        run([MESH, "lab", "exec", ...P, t.pod, "--", "wrk", "-t1", `-c${o.connections}`, "-d2s", "-s", lua, t.url], 60_000);
        const cpu0 = cpuSeconds(t.pid);
        const t0 = performance.now();
        const w = run([MESH, "lab", "exec", ...P, t.pod, "--", "wrk", "-t1", `-c${o.connections}`, `-d${o.duration}s`, "--latency", "-s", lua, t.url], (o.duration + 60) * 1000);
        const elapsed = (performance.now() - t0) / 1000;
        const cpu = (cpuSeconds(t.pid) - cpu0) / elapsed;
        const wrk = parseWrk(w.out);
        rows.push({ name: t.name, wrk, cpu, rss: rssMb(t.pid), idleRss: idle.get(t.name)! });
        console.log(`round ${round + 1} ${t.name}: ${wrk.rps.toFixed(0)} rps, p50 ${wrk.p50.toFixed(2)} ms, p99 ${wrk.p99.toFixed(2)} ms, cpu ${cpu.toFixed(2)} cores, rss ${rssMb(t.pid).toFixed(0)} MB, load ${loadavg()[0]!.toFixed(2)}${wrk.non2xx || wrk.errors ? `, NON-2xx ${wrk.non2xx} errors ${wrk.errors}` : ""}`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\n| L7 proxy | req/s | p50 ms | p99 ms | proxy CPU (cores) | req/s per CPU-second | vCPU per 1000 rps | RSS MB (idle) | RSS MB per 1000 rps |`);
    console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
    for (const t of targets) {
      const rs = rows.filter((r) => r.name === t.name);
      const rps = median(rs.map((r) => r.wrk.rps));
      const cpu = median(rs.map((r) => r.cpu));
      // Ratios per round, then their median (rounds differ in machine load).
      const perCore = median(rs.map((r) => r.wrk.rps / r.cpu));
      const perK = median(rs.map((r) => r.cpu / (r.wrk.rps / 1000)));
      const rssPerK = median(rs.map((r) => r.rss / (r.wrk.rps / 1000)));
      console.log(
        `| ${t.name} | ${rps.toFixed(0)} | ${median(rs.map((r) => r.wrk.p50)).toFixed(2)} | ${median(rs.map((r) => r.wrk.p99)).toFixed(2)} | ${cpu.toFixed(2)} | ${perCore.toFixed(0)} | ${perK.toFixed(3)} | ${median(rs.map((r) => r.rss)).toFixed(0)} (${rs[0]!.idleRss.toFixed(0)}) | ${rssPerK.toFixed(0)} |`,
      );
    }
    console.log(`\n${o.connections} connections, wrk -t1, ${o.duration} s per run, median of ${o.rounds} round(s); 1 KB POST bodies with the JWT; 2 vCPUs shared by everything.`);
    // Each round's ratio, then the median: a round measures the two proxies back to back.
    const [w, h] = targets.map((t) => rows.filter((r) => r.name === t.name));
    const perCpu = (r: Row) => r.wrk.rps / r.cpu;
    const ratio = median(w!.map((r, i) => perCpu(r) / perCpu(h![i]!)));
    const vcpu = median(w!.map((r) => r.cpu / (r.wrk.rps / 1000)));
    const rssPerK = median(w!.map((r) => r.rss / (r.wrk.rps / 1000)));
    console.log(`waypoint / HAProxy requests per CPU-second, median of the ${o.rounds} per-round ratios: ${ratio.toFixed(2)}x; ` +
      `req/s ${median(w!.map((r, i) => r.wrk.rps / h![i]!.wrk.rps)).toFixed(2)}x, p50 ${median(w!.map((r, i) => r.wrk.p50 / h![i]!.wrk.p50)).toFixed(2)}x`);
    console.log(`load average (1 min) ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)} on ${navigator.hardwareConcurrency} CPUs`);
    console.log("\nGoals (data plane issue, second pass):");
    for (const [what, ok, val] of [
      [">= 1.0x HAProxy's requests per CPU-second", ratio >= 1, `${ratio.toFixed(2)}x`],
      ["<= 0.25 vCPU per 1000 rps", vcpu <= 0.25, vcpu.toFixed(3)],
      ["<= 60 MB RSS per 1000 rps", rssPerK <= 60, `${rssPerK.toFixed(0)} MB`],
    ] as const) console.log(`  ${ok ? "met    " : "NOT MET"}  ${what}: ${val}`);
    return 0;
  } finally {
    if (!o.keep) run([MESH, "lab", "down", ...P], 60_000);
    else console.log(`lab left up: ${MESH} lab down --prefix ${prefix}`);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
