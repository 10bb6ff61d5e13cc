/**
 * `--redirect host` end to end through dist/mesh (root): two VMs (network namespaces), each with a
 * WorkloadEntry and its own ztunnel, and a router namespace that runs the control plane. A process on
 * vm-1 (any user) calls vm-2's workload; its TCP is captured by vm-1's OUTPUT rules, carried over
 * HBONE, and delivered by vm-2's ztunnel; a client outside the mesh reaches vm-2 through its inbound
 * capture (15006). The ztunnels' own traffic is exempt by their group.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addRoute, createNetns, createVeth, deleteNetns, ipIn, setSysctl } from "../src/platform/mod.ts";
import { capture, curl, ensureBuilt, inNs, isRoot, MESH, metricValue, natRules, uniquePrefix, waitFor } from "./support/mod.ts";

if (!isRoot) console.log("test/ztunnel_host.test.ts: skipped, needs root (network namespaces, iptables)");

const CONFIG = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/dataplane-mode: ambient
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: client
  namespace: shop
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: server
  namespace: shop
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
  namespace: shop
  labels:
    app: client
spec:
  address: 10.77.1.2
  serviceAccount: client
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-2
  namespace: shop
  labels:
    app: server
spec:
  address: 10.77.2.2
  serviceAccount: server
  ports:
    http: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: server
  namespace: shop
spec:
  clusterIP: 10.96.0.50
  selector:
    app: server
  ports:
  - name: http
    port: 80
    targetPort: 8080
`;

const CLIENT = "spiffe://cluster.local/ns/shop/sa/client";
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

describe.skipIf(!isRoot)("ztunnel --redirect host on two VMs", () => {
  const tag = uniquePrefix("zh").slice(0, 10);
  const CTL = `${tag}-ctl`, VM1 = `${tag}-vm1`, VM2 = `${tag}-vm2`;
  let dir = "";
  const procs: { name: string; p: ReturnType<typeof Bun.spawn> }[] = [];

  function spawn(name: string, netns: string, argv: string[]): ReturnType<typeof Bun.spawn> {
    const p = Bun.spawn(["ip", "netns", "exec", netns, ...argv], { stdout: "ignore", stderr: Bun.file(join(dir, `${name}.log`)) });
    procs.push({ name, p });
    return p;
  }

  const ready = (netns: string) =>
    waitFor(`readiness in ${netns}`, () => {
      const r = Bun.spawnSync(["ip", "netns", "exec", netns, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:15021/healthz/ready"]);
      return r.stdout.toString() === "200";
    }, 30_000);

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-host-"));
    for (const ns of [CTL, VM1, VM2]) createNetns(ns);
    createVeth({ name: "eth0", netns: VM1, address: "10.77.1.2/24" }, { name: "v1", netns: CTL, address: "10.77.1.1/24" });
    createVeth({ name: "eth0", netns: VM2, address: "10.77.2.2/24" }, { name: "v2", netns: CTL, address: "10.77.2.1/24" });
    addRoute(VM1, "default", { gateway: "10.77.1.1" });
    addRoute(VM2, "default", { gateway: "10.77.2.1" });
    setSysctl(CTL, "net.ipv4.ip_forward", "1");
    // The control plane gets an address of its own that both VMs route to (and that its serving
    // certificate names, since it listens on it).
    ipIn(CTL, ["addr", "add", "10.77.0.1/32", "dev", "lo"]);
    const config = join(dir, "mesh.yaml");
    writeFileSync(config, CONFIG);
    const ctlData = join(dir, "ctl");
    spawn("control", CTL, [MESH, "run", "--role", "control", "--config", config, "--data-dir", ctlData, "--listen", "10.77.0.1:15012"]);
    await ready(CTL);
    for (const [vm, ns] of [["vm-1", VM1], ["vm-2", VM2]] as const) {
      const t = Bun.spawnSync([MESH, "token", "create", "--data-dir", ctlData, "--node", vm], { stdout: "pipe", stderr: "pipe" });
      if (t.exitCode !== 0) throw new Error(`token create failed: ${t.stderr.toString()}`);
      writeFileSync(join(dir, `${vm}.token`), t.stdout.toString());
      spawn(`ztunnel-${vm}`, ns, [
        MESH, "run", "--role", "ztunnel", "--node", vm, "--control-plane", "10.77.0.1:15012", "--ca-cert", join(ctlData, "root-cert.pem"),
        "--token-file", join(dir, `${vm}.token`), "--redirect", "host", "--data-dir", join(dir, vm),
      ]);
    }
    spawn("server", VM2, [MESH, "httpbin", "--port", "8080"]);
    await Promise.all([ready(VM1), ready(VM2)]);
  });

  afterAll(async () => {
    for (const { p } of procs.reverse()) p.kill("SIGTERM");
    await Promise.all(procs.map(({ p }) => Promise.race([p.exited, Bun.sleep(5000).then(() => p.kill("SIGKILL"))])));
    for (const ns of [CTL, VM1, VM2]) deleteNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the rules: vm-1 captures its processes' outbound TCP except the ztunnel's group; vm-2 captures its workload port", async () => {
    const a = await natRules(VM1);
    expect(a).toContain("-A MESH-OUTPUT -p tcp -m owner --gid-owner 1337 -j RETURN");
    expect(a).toContain("-A MESH-OUTPUT -p tcp -j REDIRECT --to-ports 15001");
    expect(await natRules(VM2)).toContain("-A MESH-PREROUTING -d 10.77.2.2/32 -p tcp -m multiport --dports 8080 -j REDIRECT --to-ports 15006");
  });

  test("a process on vm-1 (any user) reaches vm-2 over HBONE, by the Service VIP and by address; nothing plaintext between the VMs", async () => {
    const marker = `mark-${crypto.randomUUID()}`;
    const cap = await capture([CTL], dir);
    const viaVip = await inNs(VM1, [...NOBODY, "curl", "-s", "-m", "3", "-H", `x-marker: ${marker}`, "http://10.96.0.50:80/headers"]);
    const direct = await inNs(VM1, [...NOBODY, "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "http://10.77.2.2:8080/get"]);
    const files = await cap.stop();
    expect(viaVip.stdout).toContain(marker);
    expect(direct.stdout).toBe("200");
    for (const f of files.values()) expect(readFileSync(f).includes(marker)).toBe(false);
    const labels = { reporter: "destination", source_principal: CLIENT, destination_workload: "vm-2", connection_security_policy: "mutual_tls" };
    await waitFor("vm-2 metrics", async () => (await metricValue(VM2, "istio_tcp_connections_closed_total", labels)) >= 2);
    expect(await metricValue(VM1, "istio_tcp_connections_opened_total", { reporter: "source", source_workload: "vm-1" })).toBeGreaterThanOrEqual(2);
  });

  test("a client outside the mesh reaches vm-2's workload port through its inbound capture (PERMISSIVE)", async () => {
    const r = await curl(CTL, "http://10.77.2.2:8080/get");
    expect(r.status).toBe("200");
    await waitFor("plaintext metric", async () =>
      (await metricValue(VM2, "istio_tcp_connections_closed_total", { reporter: "destination", connection_security_policy: "none", destination_workload: "vm-2" })) >= 1
    );
  });

  test("SIGTERM: the ztunnels stop and leave their rules (fail closed); mesh iptables cleanup removes them", async () => {
    for (const { name, p } of procs) if (name.startsWith("ztunnel-")) p.kill("SIGTERM");
    for (const { name, p } of procs) {
      if (!name.startsWith("ztunnel-")) continue;
      expect(await Promise.race([p.exited, Bun.sleep(15_000).then(() => "still running")])).toBe(0);
    }
    for (const vm of [VM1, VM2]) {
      expect(await natRules(vm)).toContain("MESH-OUTPUT");
      expect((await inNs(vm, [MESH, "iptables", "cleanup"])).code).toBe(0);
      expect(await natRules(vm)).not.toContain("MESH-");
    }
  });
});
