/**
 * The ztunnel end to end, through dist/mesh in the lab (root): two nodes with `--redirect node`,
 * a control plane, pods in and out of the mesh (test/testdata/ztunnel-lab.yaml).
 *
 * What "only on the last hop" means here: capture happens in the node's namespace (docs/design.md
 * "Capture"), so the link from the SOURCE pod to its node necessarily carries the pod's own plaintext;
 * every link beyond it (node uplinks, the fabric) must carry only HBONE (TLS on 15008), and the
 * plaintext reappears only on the link into the destination pod.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  adminGet,
  capture,
  countPackets,
  curl,
  ensureBuilt,
  fdCount,
  forceDown,
  inNs,
  isRoot,
  labApply,
  labInfo,
  type LabInfo,
  MESH,
  mesh,
  metricValue,
  natRules,
  nodeOf,
  podNetns,
  spawnZtunnel,
  uniquePrefix,
  waitFor,
  waitReady,
  ZTUNNEL_FIXTURE,
  ztunnelArgs,
} from "./support/mod.ts";

if (!isRoot) console.log("test/ztunnel.test.ts: skipped, the lab needs root (network namespaces, iptables)");

const VIEWER = "spiffe://cluster.local/ns/shop/sa/product-viewer";

/** python3 -c BURST_CLIENT N HOST PORT: N connections open at once, one request on each; "held N"; then all closed. */
const BURST_CLIENT = `
import socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
for s in socks:
    s.sendall(b"GET /get HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
for s in socks:
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        d = s.recv(65536)
        if not d: raise SystemExit("EOF")
        buf += d
print("held", len(socks), flush=True)
time.sleep(1)
for s in socks:
    s.close()
`;

/** python3 -c PARALLEL_CLIENT N HOST PORT: N new connections at once, a request each; "ok X failed Y". */
const PARALLEL_CLIENT = `
import socket, sys, threading
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ok = []
def one():
    try:
        s = socket.create_connection((host, port), timeout=15)
        s.sendall(b"GET /get HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        buf = b""
        while True:
            d = s.recv(65536)
            if not d: break
            buf += d
        if buf.startswith(b"HTTP/1.1 200") or buf.startswith(b"HTTP/1.0 200"): ok.append(1)
    except Exception as e:
        print("error", e, file=sys.stderr)
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("ok", len(ok), "failed", n - len(ok))
`;

describe.skipIf(!isRoot)("ztunnel in the lab", () => {
  const prefix = uniquePrefix("zt");
  let tmp = "";
  let info: LabInfo;
  let viewer = "";
  let legacyClient = "";
  let nodeA = { name: "", netns: "", address: "" };
  let nodeB = { name: "", netns: "", address: "" };
  const base = readFileSync(ZTUNNEL_FIXTURE, "utf8");

  beforeAll(async () => {
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), "mesh-ztunnel-e2e-"));
    const r = await mesh(["lab", "up", ZTUNNEL_FIXTURE, "--prefix", prefix, "--timeout", "60"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
    info = labInfo(prefix);
    viewer = podNetns(info, "shop/product-viewer");
    legacyClient = podNetns(info, "legacy/legacy-client");
    nodeA = nodeOf(info, "node-a");
    nodeB = nodeOf(info, "node-b");
  });

  afterAll(async () => {
    await forceDown(prefix);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Config version a node's ztunnel applied (its admin /config_dump). */
  async function version(nodeNetns: string): Promise<number> {
    // The admin API asks for its local secret, named after the node's network namespace (src/admin/auth.ts).
    const secret = readFileSync(`/run/mesh/admin/${statSync(`/run/netns/${nodeNetns}`).ino}-15000.secret`, "utf8").trim();
    const r = await inNs(nodeNetns, ["curl", "-s", "-m", "2", "-H", `authorization: Bearer ${secret}`, "http://127.0.0.1:15000/config_dump"]);
    try {
      return (JSON.parse(r.stdout) as { version?: number }).version ?? -1;
    } catch {
      return -1;
    }
  }

  /** Pushes `extra` YAML documents on top of the fixture and waits until both ztunnels applied it. */
  async function applyExtra(name: string, extra: string): Promise<void> {
    const before = [await version(nodeA.netns), await version(nodeB.netns)];
    const file = join(tmp, `${name}.yaml`);
    writeFileSync(file, extra ? `${base}\n---\n${extra}` : base);
    await labApply(prefix, file);
    await waitFor(`configuration "${name}" at both ztunnels`, async () => (await version(nodeA.netns)) > before[0]! && (await version(nodeB.netns)) > before[1]!, 15_000, { intervalMs: 100 });
  }

  test("viewer -> product-api across nodes through the Service VIP; the marker crosses no link but the pods' own; 15008 carries TLS", async () => {
    const marker = `mark-${crypto.randomUUID()}`;
    const cap = await capture([nodeA.netns, nodeB.netns], tmp);
    const r = await curl(viewer, "http://10.96.0.20:8000/headers", { "x-marker": marker });
    const files = await cap.stop();
    expect(r.status).toBe("200");
    expect(r.body).toContain(marker);
    const apiLink = info.endpoints.find((e) => e.key === "shop/product-api")!.link;
    const viewerLink = info.endpoints.find((e) => e.key === "shop/product-viewer")!.link;
    const seen = [...files].filter(([, f]) => readFileSync(f).includes(marker)).map(([k]) => k).sort();
    // The destination pod's link (last hop), and the source pod's own link (before its node captures it).
    expect(seen).toEqual([`${nodeA.netns}/${viewerLink}`, `${nodeB.netns}/${apiLink}`].sort());
    const uplinkB = files.get(`${nodeB.netns}/fabric`)!;
    // The tunnel: TLS handshake records (content type 22) then application data (23) on port 15008.
    expect(countPackets(uplinkB, "tcp dst port 15008 and (tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16)")).toBeGreaterThan(0);
    expect(countPackets(uplinkB, "tcp port 15008 and (tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x17)")).toBeGreaterThan(0);
    // And nothing but the tunnel between the nodes for this exchange: no plaintext port 80.
    expect(countPackets(uplinkB, "tcp port 80")).toBe(0);
  });

  test("viewer -> a Service VIP on its own node: served by node-a alone, nothing on its uplink", async () => {
    const marker = `mark-${crypto.randomUUID()}`;
    const cap = await capture([nodeA.netns], tmp);
    const r = await curl(viewer, "http://10.96.0.21:8000/headers", { "x-marker": marker });
    const files = await cap.stop();
    expect(r.status).toBe("200");
    expect(r.body).toContain(marker);
    expect(readFileSync(files.get(`${nodeA.netns}/fabric`)!).includes(marker)).toBe(false);
    expect(await metricValue(nodeA.netns, "istio_tcp_connections_opened_total", {
      reporter: "destination",
      destination_workload: "product-api-local",
      source_principal: VIEWER,
      connection_security_policy: "mutual_tls",
    })).toBeGreaterThanOrEqual(1);
  });

  test("destination metrics name the viewer's principal with mutual_tls; access log has both identities", async () => {
    const labels = {
      reporter: "destination",
      source_principal: VIEWER,
      source_workload: "product-viewer",
      destination_workload: "product-api",
      destination_principal: "spiffe://cluster.local/ns/shop/sa/product-api",
      destination_service: "product-api.shop.svc.cluster.local",
      connection_security_policy: "mutual_tls",
    };
    await waitFor("destination metrics", async () => (await metricValue(nodeB.netns, "istio_tcp_connections_closed_total", labels)) >= 1);
    expect(await metricValue(nodeB.netns, "istio_tcp_received_bytes_total", labels)).toBeGreaterThan(0);
    expect(await metricValue(nodeB.netns, "istio_tcp_sent_bytes_total", labels)).toBeGreaterThan(0);
    expect(await metricValue(nodeA.netns, "istio_tcp_connections_opened_total", { ...labels, reporter: "source" })).toBeGreaterThanOrEqual(1);
    const log = readFileSync(info.processes.find((p) => p.id === "ztunnel/node-b")!.log, "utf8");
    const line = log.split("\n").find((l) => l.includes('"scope":"access"') && l.includes(VIEWER));
    expect(line).toBeDefined();
    const entry = JSON.parse(line!);
    expect(entry).toMatchObject({ result: "ok", security: "mutual_tls", dst: { workload: "product-api", identity: labels.destination_principal } });
    expect(entry.bytes_sent).toBeGreaterThan(0);
  });

  const policy = (action: string, rule: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: api-l4
  namespace: shop
spec:
  selector:
    matchLabels:
      app: product-api
  action: ${action}
  rules:
${rule}`;
  const cases: { name: string; yaml: string; allowed: boolean }[] = [
    { name: "ALLOW by principal (the viewer)", yaml: policy("ALLOW", `  - from:\n    - source:\n        principals: ["cluster.local/ns/shop/sa/product-viewer"]`), allowed: true },
    { name: "ALLOW by principal (someone else)", yaml: policy("ALLOW", `  - from:\n    - source:\n        principals: ["cluster.local/ns/shop/sa/other"]`), allowed: false },
    { name: "ALLOW by namespace (shop)", yaml: policy("ALLOW", `  - from:\n    - source:\n        namespaces: ["shop"]`), allowed: true },
    { name: "DENY by namespace (shop)", yaml: policy("DENY", `  - from:\n    - source:\n        namespaces: ["shop"]`), allowed: false },
    { name: "ALLOW by ipBlocks (the viewer's address)", yaml: policy("ALLOW", `  - from:\n    - source:\n        ipBlocks: ["10.244.1.10/32"]`), allowed: true },
    { name: "DENY by ipBlocks (node-a's pods)", yaml: policy("DENY", `  - from:\n    - source:\n        ipBlocks: ["10.244.1.0/24"]`), allowed: false },
    { name: "ALLOW by port (80)", yaml: policy("ALLOW", `  - to:\n    - operation:\n        ports: ["80"]`), allowed: true },
    { name: "ALLOW by port (8080 only)", yaml: policy("ALLOW", `  - to:\n    - operation:\n        ports: ["8080"]`), allowed: false },
  ];
  for (const c of cases) {
    test(`L4 policy: ${c.name} -> ${c.allowed ? "allowed" : "refused"}`, async () => {
      await applyExtra(c.name.replace(/\W+/g, "-"), c.yaml);
      const denials = await metricValue(nodeB.netns, "istio_tcp_connections_closed_total", { reporter: "destination", response_flags: "DENY" });
      const r = await curl(viewer, "http://10.96.0.20:8000/get");
      if (c.allowed) {
        expect(r.status).toBe("200");
      } else {
        // Refused with a reset: curl gets no HTTP answer at all.
        expect(r.status).toBe("000");
        expect(await metricValue(nodeB.netns, "istio_tcp_connections_closed_total", { reporter: "destination", response_flags: "DENY" })).toBeGreaterThan(denials);
      }
    });
  }

  const peerAuth = (mode: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: shop
spec:
  mtls:
    mode: ${mode}`;

  test("PERMISSIVE admits a pod outside the mesh (plaintext, no principal)", async () => {
    await applyExtra("permissive", peerAuth("PERMISSIVE"));
    const r = await curl(legacyClient, "http://10.244.2.10:80/get");
    expect(r.status).toBe("200");
    expect(await metricValue(nodeB.netns, "istio_tcp_connections_opened_total", {
      reporter: "destination",
      source_principal: "unknown",
      destination_workload: "product-api",
      connection_security_policy: "none",
    })).toBeGreaterThanOrEqual(1);
  });

  test("STRICT refuses a pod outside the mesh; mesh clients still pass", async () => {
    await applyExtra("strict", peerAuth("STRICT"));
    expect((await curl(legacyClient, "http://10.244.2.10:80/get")).status).toBe("000");
    expect((await curl(viewer, "http://10.96.0.20:8000/get")).status).toBe("200");
  });

  test("a destination outside the mesh is passed through; refused when MeshConfig says deny", async () => {
    await applyExtra("no-policy", "");
    expect((await curl(viewer, "http://10.244.2.30:80/get")).status).toBe("200");
    // An address the mesh does not know at all: node-b's metrics port.
    expect((await curl(viewer, `http://${nodeB.address}:15020/metrics`)).status).toBe("200");
    await applyExtra("outbound-deny", `apiVersion: mesh.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  outboundTrafficPolicy: deny`);
    expect((await curl(viewer, `http://${nodeB.address}:15020/metrics`)).status).toBe("000");
    await applyExtra("no-policy-again", "");
  });

  test("captured traffic is refused while no ready ztunnel serves it (kill -9, then one that cannot become ready)", async () => {
    const a = info.processes.find((p) => p.id === "ztunnel/node-a")!;
    process.kill(a.pid, "SIGKILL");
    await waitFor("node-a ztunnel gone", () => !Bun.spawnSync(["kill", "-0", String(a.pid)]).success, 5000);
    // Its rules stay: captured traffic meets no listener and is refused, never passed in plaintext.
    expect(await natRules(nodeA.netns)).toContain("MESH-PREROUTING");
    const marker = `mark-${crypto.randomUUID()}`;
    const cap = await capture([nodeA.netns], tmp);
    const r = await curl(viewer, "http://10.244.2.10:80/get", { "x-marker": marker });
    expect(r.status).toBe("000");
    expect(r.exit).toBe(7); // connection refused
    // A ztunnel whose control plane is unreachable (fresh data dir): not ready, so it does not listen.
    const args = ztunnelArgs(info, "node-a").map((x) => (x === "10.99.0.2:15012" ? "10.99.0.2:1" : x));
    const dd = args.indexOf("--data-dir");
    args[dd + 1] = join(tmp, "fresh-node-a");
    const z = spawnZtunnel(nodeA.netns, args, join(tmp, "unready.log"));
    await Bun.sleep(1000);
    const r2 = await curl(viewer, "http://10.244.2.10:80/get", { "x-marker": marker });
    const files = await cap.stop();
    expect(r2.status).toBe("000");
    // The request left the viewer pod and went no further than its node.
    const viewerLink = info.endpoints.find((e) => e.key === "shop/product-viewer")!.link;
    const seen = [...files].filter(([, f]) => readFileSync(f).includes(marker)).map(([k]) => k);
    expect(seen.filter((k) => k !== `${nodeA.netns}/${viewerLink}`)).toEqual([]);
    const ready = await inNs(nodeA.netns, ["curl", "-s", "-m", "2", "http://127.0.0.1:15021/healthz/ready"]);
    expect(ready.stdout).toContain("not ready");
    // Its readiness says the node's pods are captured with nobody serving them (the killed one's rules).
    expect(ready.stdout).toContain("captured and nobody serves them yet");
    z.kill("SIGKILL");
    await z.exited;
  });

  let restarted: ReturnType<typeof spawnZtunnel> | undefined;

  test("restart after kill -9: new connections work within 2 s", async () => {
    const z = spawnZtunnel(
      nodeA.netns,
      [...ztunnelArgs(info, "node-a"), "--capture-check", "300ms", "--pool-idle-timeout", "2s"],
      join(tmp, "restart.log"),
    );
    // The tests after this one use the restarted ztunnel, whatever this one's timing says.
    restarted = z;
    const started = performance.now();
    let ok = false;
    while (performance.now() - started < 5000) {
      if ((await curl(viewer, "http://10.96.0.20:8000/get", {}, 1)).status === "200") {
        ok = true;
        break;
      }
      await Bun.sleep(20);
    }
    const elapsed = performance.now() - started;
    expect(ok).toBe(true);
    expect(elapsed).toBeLessThan(2000);
  });

  test("capture rules flushed by someone else are put back", async () => {
    await inNs(nodeA.netns, ["iptables", "-w", "-t", "nat", "-F", "MESH-PREROUTING"]);
    expect(await natRules(nodeA.netns)).not.toContain("-A MESH-PREROUTING -s 10.244.1.10/32");
    await waitFor("rules reinstalled", async () => (await natRules(nodeA.netns)).includes("-A MESH-PREROUTING -s 10.244.1.10/32"), 5000);
    expect((await curl(viewer, "http://10.96.0.20:8000/get")).status).toBe("200");
    expect(readFileSync(join(tmp, "restart.log"), "utf8")).toContain("capture rules changed behind our back");
  });

  test("idle HBONE connections are closed: after a burst of tunnels, fds and pooled connections return to their baseline", async () => {
    const z = restarted!;
    const pooled = async (ns: string, key: "hboneClientConnections" | "hboneServerConnections") =>
      ((await adminGet(ns, "/config_dump")) as { connections?: Record<string, number> } | undefined)?.connections?.[key] ?? -1;
    // The pool is empty once earlier tests' connections have been idle for --pool-idle-timeout (2 s).
    await waitFor("an empty pool", async () => (await pooled(nodeA.netns, "hboneClientConnections")) === 0, 8000);
    const baseline = fdCount(z.pid);
    const serverBaseline = await pooled(nodeB.netns, "hboneServerConnections");
    // 300 tunnels at once (100 streams per HBONE connection: at least 3 connections), then all closed.
    const burst = Bun.spawn(["ip", "netns", "exec", viewer, "/usr/bin/python3", "-c", BURST_CLIENT, "300", "10.96.0.20", "8000"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = (burst.stdout as ReadableStream<Uint8Array>).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toContain("held 300");
    const during = await pooled(nodeA.netns, "hboneClientConnections");
    expect(during).toBeGreaterThanOrEqual(3);
    expect(fdCount(z.pid)).toBeGreaterThan(baseline + 300);
    reader.releaseLock();
    expect(await burst.exited).toBe(0);
    // Within the idle timeout and a sweep: no pooled connection, no extra fd, on either side.
    await waitFor("the pool emptied", async () => (await pooled(nodeA.netns, "hboneClientConnections")) === 0, 8000);
    await waitFor("fds back to the baseline", async () => fdCount(z.pid) <= baseline + 1, 5000);
    await waitFor("the destination's server connections closed", async () =>
      (await pooled(nodeB.netns, "hboneServerConnections")) <= serverBaseline, 5000);
  });

  test("a restart that overlaps the old process keeps an established connection; the rules stay", async () => {
    const old = restarted!;
    // One TCP connection, an HTTP request every 100 ms for 4 s.
    const client = Bun.spawn(["ip", "netns", "exec", viewer, "/usr/bin/python3", "-c", `
import socket, time
s = socket.create_connection(("10.96.0.20", 8000), timeout=5)
n = 0
end = time.time() + 4
while time.time() < end:
    s.sendall(b"GET /get HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        d = s.recv(65536)
        if not d: raise SystemExit("EOF after %d" % n)
        buf += d
    head, body = buf.split(b"\\r\\n\\r\\n", 1)
    clen = int([l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < clen:
        d = s.recv(65536)
        if not d: raise SystemExit("EOF after %d" % n)
        body += d
    n += 1
    time.sleep(0.1)
print("requests", n)
`], { stdout: "pipe", stderr: "pipe" });
    await Bun.sleep(800);
    const next = spawnZtunnel(nodeA.netns, ztunnelArgs(info, "node-a"), join(tmp, "next.log"));
    await waitFor("second instance ready", () => readFileSync(join(tmp, "next.log"), "utf8").includes('"msg":"ready"'), 10_000);
    old.kill("SIGTERM");
    await Bun.sleep(300);
    // New connections are served while the old instance drains.
    expect((await curl(viewer, "http://10.96.0.20:8000/get")).status).toBe("200");
    const [out, err, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(Number(out.trim().split(" ")[1])).toBeGreaterThan(20);
    // The old one exits once its connection ended, leaving the rules to the new one.
    expect(await Promise.race([old.exited, Bun.sleep(10_000).then(() => "still running")])).toBe(0);
    expect(await natRules(nodeA.netns)).toContain("MESH-PREROUTING");
    restarted = next;
  });

  test("an overlapping restart loses no queued connection: the kernel moves them to the new listeners (tcp_migrate_req)", async () => {
    const old = restarted!;
    const next = spawnZtunnel(nodeA.netns, ztunnelArgs(info, "node-a"), join(tmp, "handover.log"));
    await waitFor("second instance ready", () => readFileSync(join(tmp, "handover.log"), "utf8").includes('"msg":"ready"'), 10_000);
    expect((await inNs(nodeA.netns, ["cat", "/proc/sys/net/ipv4/tcp_migrate_req"])).stdout.trim()).toBe("1");
    // Frozen, the old process accepts nothing: the kernel completes handshakes and queues about half of the
    // new connections on its listeners (SO_REUSEPORT spreads them). Its listeners then close with that queue.
    process.kill(old.pid, "SIGSTOP");
    const clients = Bun.spawn(["ip", "netns", "exec", viewer, "/usr/bin/python3", "-c", PARALLEL_CLIENT, "40", "10.96.0.20", "8000"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    await Bun.sleep(1500);
    old.kill("SIGKILL");
    const [out, code] = await Promise.all([new Response(clients.stdout).text(), clients.exited]);
    await old.exited;
    expect(out.trim()).toBe("ok 40 failed 0");
    expect(code).toBe(0);
    restarted = next;
  });

  test("a stopped ztunnel fails closed: its rules stay, captured traffic is refused and never leaves the node; cleanup is explicit", async () => {
    const z = restarted!;
    z.kill("SIGTERM");
    expect(await Promise.race([z.exited, Bun.sleep(15_000).then(() => "still running")])).toBe(0);
    expect(await natRules(nodeA.netns)).toContain("MESH-PREROUTING");
    expect(readFileSync(join(tmp, "handover.log"), "utf8")).toContain("capture rules left in place");
    // product-api is PERMISSIVE: a plaintext connection would be accepted there. It must not get there.
    const marker = `mark-${crypto.randomUUID()}`;
    const cap = await capture([nodeA.netns, nodeB.netns], tmp);
    const r = await curl(viewer, "http://10.244.2.10:80/get", { "x-marker": marker });
    const files = await cap.stop();
    expect(r.status).toBe("000");
    expect(r.exit).toBe(7); // connection refused by the node
    const viewerLink = info.endpoints.find((e) => e.key === "shop/product-viewer")!.link;
    const seen = [...files].filter(([, f]) => readFileSync(f).includes(marker)).map(([k]) => k);
    expect(seen.filter((k) => k !== `${nodeA.netns}/${viewerLink}`)).toEqual([]);
    // Removing the capture is an explicit act.
    const cleanup = await inNs(nodeA.netns, [MESH, "iptables", "cleanup"]);
    expect(cleanup.code).toBe(0);
    expect(cleanup.stdout).toContain("removed IPv4 nat chain MESH-PREROUTING");
    expect(await natRules(nodeA.netns)).not.toContain("MESH-");
    // Or --cleanup-on-exit (uninstall): node-b's lab ztunnel stops leaving its rules; one started with the
    // flag takes them over and removes them when it stops.
    const b = info.processes.find((p) => p.id === "ztunnel/node-b")!;
    process.kill(b.pid, "SIGTERM");
    await waitFor("node-b ztunnel gone", () => !Bun.spawnSync(["kill", "-0", String(b.pid)]).success, 15_000);
    expect(await natRules(nodeB.netns)).toContain("MESH-PREROUTING");
    // A short drain: what is tested here is the cleanup, not how long pooled connections take to go.
    const uninstall = spawnZtunnel(nodeB.netns, [...ztunnelArgs(info, "node-b"), "--cleanup-on-exit", "--drain-timeout", "2s"], join(tmp, "uninstall.log"));
    await waitReady(nodeB.netns);
    uninstall.kill("SIGTERM");
    expect(await Promise.race([uninstall.exited, Bun.sleep(15_000).then(() => "still running")])).toBe(0);
    expect(await natRules(nodeB.netns)).not.toContain("MESH-");
  });
});
