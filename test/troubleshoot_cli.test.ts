/**
 * The troubleshooting commands through dist/mesh against real processes on loopback: a control plane,
 * the ztunnel of node-a (--redirect none) and the waypoint of product-api, each with its authenticated
 * admin API. Covers: the admin API refusing a caller without the credential, proxy-config of a ztunnel
 * (exactly the workloads of its node) and of a waypoint, a log level change without a restart, live
 * describe, and proxy-status with a NACK made on purpose and a ztunnel killed with SIGKILL.
 * Root: the ztunnel records its instance under /run/mesh.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { boundPorts, ensureBuilt, isRoot, MESH, mesh, removeZtunnelRecord, ROOT, waitFor, ztunnelRecord } from "./support/mod.ts";
import { findAdminSecret, netnsId } from "../src/admin/mod.ts";
import { XdsClient } from "../src/xds/mod.ts";

if (!isRoot) console.log("test/troubleshoot_cli.test.ts: skipped, the ztunnel role records its instance under /run/mesh (root)");

/** The unenrolled namespace legacy, and a route on product-api. */
const EXTRA = `---
${readFileSync(join(import.meta.dir, "testdata", "legacy-namespace.yaml"), "utf8")}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: product-api-routes
  namespace: ambient-ns
spec:
  parentRefs:
  - kind: Service
    group: ""
    name: product-api
    port: 8000
  rules:
  - backendRefs:
    - name: product-api
      port: 8000
`;

describe.skipIf(!isRoot)("troubleshooting commands against a control plane, a ztunnel and a waypoint on loopback", () => {
  let dir = "";
  let dataDir = "";
  const procs = new Map<string, { proc: ReturnType<typeof Bun.spawn>; log: string }>();
  const ports = { cp: 0, controlAdmin: 0, ztAdmin: 0, wpAdmin: 0 };
  let cp = "";
  let nack: XdsClient | undefined;
  const live = () => ["--data-dir", dataDir, "--control-plane", cp];

  function spawn(id: string, args: string[]) {
    const log = join(dir, `${id.replace(/\//g, "_")}.log`);
    const proc = Bun.spawn([MESH, ...args], { stdout: Bun.file(log), stderr: Bun.file(log), env: { ...process.env, MESH_LOG_LEVEL: "info" } });
    procs.set(id, { proc, log });
  }
  /** Waits for the process to be ready; returns the ports it bound (each was given port 0). */
  async function ready(id: string) {
    const p = await boundPorts(procs.get(id)!.log);
    await waitFor(`${id} ready on ${p.ready}`, () => fetch(`http://127.0.0.1:${p.ready}/healthz/ready`).then((r) => r.status === 200, () => false), 30_000, {
      intervalMs: 100,
      detail: () => [...procs.values()].map((p) => readFileSync(p.log, "utf8").slice(-800)).join("\n"),
    });
    return p;
  }
  const json = async (args: string[]) => {
    const r = await mesh([...args, "--format", "json"], 30_000);
    if (r.code !== 0 && r.code !== 3) throw new Error(`mesh ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return { code: r.code, body: JSON.parse(r.stdout) };
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), "mesh-troubleshoot-"));
    dataDir = join(dir, "control");
    const config = join(dir, "mesh.yaml");
    writeFileSync(config, readFileSync(join(ROOT, "config", "mesh.yaml"), "utf8") + EXTRA);
    // Every port is the process's own (port 0, read back from its log).
    const common = ["--admin-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0"];
    spawn("control", ["run", "--role", "control", "--config", config, "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...common]);
    const c = await ready("control");
    ports.cp = c.control!;
    ports.controlAdmin = c.admin;
    cp = `127.0.0.1:${ports.cp}`;
    const token = async (who: string[]) => {
      const r = await mesh(["token", "create", "--data-dir", dataDir, ...who]);
      const f = join(dir, `${who[1]!.replace(/\//g, "_")}.token`);
      writeFileSync(f, r.stdout);
      return f;
    };
    const proxy = async (who: string[]) => ["--control-plane", cp, "--ca-cert", join(dataDir, "root-cert.pem"), "--token-file", await token(who), "--hbone-addr", "127.0.0.1:0"];
    spawn("ztunnel/node-a", ["run", "--role", "ztunnel", "--node", "node-a", "--redirect", "none", "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0", "--data-dir", join(dir, "zt-a"), ...(await proxy(["--node", "node-a"])), ...common]);
    spawn("waypoint", ["run", "--role", "waypoint", "--gateway", "ambient-ns/product-api-waypoint", ...(await proxy(["--gateway", "ambient-ns/product-api-waypoint"])), ...common]);
    const [zt, wp] = await Promise.all([ready("ztunnel/node-a"), ready("waypoint")]);
    ports.ztAdmin = zt.admin;
    ports.wpAdmin = wp.admin;
  }, 90_000);

  afterAll(async () => {
    await nack?.stop().catch(() => {});
    for (const { proc } of procs.values()) proc.kill("SIGTERM");
    await Promise.all([...procs.values()].map(({ proc }) => Promise.race([proc.exited, Bun.sleep(5000).then(() => proc.kill("SIGKILL"))])));
    // The killed ztunnel could not remove its admin secret.
    const zt = findAdminSecret(ports.ztAdmin);
    if (zt) rmSync(zt.path, { force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test("the admin API refuses a caller without the credential; the local secret and (at the control role) an admin token pass", async () => {
    const zt = `http://127.0.0.1:${ports.ztAdmin}`;
    for (const [path, method] of [["/config_dump", "GET"], ["/certs", "GET"], ["/logging?scope=ztunnel&level=debug", "POST"]] as const) {
      expect((await fetch(zt + path, { method })).status).toBe(401);
    }
    const secret = findAdminSecret(ports.ztAdmin);
    expect(secret?.path).toMatch(/\/\d+-\d+\.secret$/);
    const levels = await (await fetch(`${zt}/logging`, { headers: { authorization: `Bearer ${secret!.secret}` } })).json();
    expect(levels.ztunnel).toBeUndefined(); // the refused POST changed nothing
    const admin = (await mesh(["token", "create", "--data-dir", dataDir, "--admin"])).stdout.trim();
    expect((await fetch(`http://127.0.0.1:${ports.controlAdmin}/control/status`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${ports.controlAdmin}/control/status`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
    // A proxy cannot verify admin tokens (it has no token-signing key): only its local secret.
    expect((await fetch(`${zt}/config_dump`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(401);
    // The CLI without the secret's file at hand says where it looked.
    const r = await mesh(["proxy-config", "workloads", "--admin", `127.0.0.2:${ports.ztAdmin}`, "--admin-token-file", join(dir, "nope")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Cannot read the admin credential");
  }, 60_000);

  test("proxy-config of a ztunnel lists exactly the workloads of its node; its certificates", async () => {
    const { body } = await json(["proxy-config", "workloads", "--node", "node-a", "--admin", `127.0.0.1:${ports.ztAdmin}`]);
    expect(body.proxy).toBe("ztunnel/node-a");
    expect(body.rows.map((r: { namespace: string; name: string; captured: boolean; certificate: string | null }) => [`${r.namespace}/${r.name}`, r.captured, r.certificate]).sort()).toEqual([
      ["ambient-ns/product-viewer", true, "valid"],
      ["legacy/legacy-web", false, null],
    ]);
    const all = await json(["proxy-config", "workloads", "--node", "node-a", "--admin", `127.0.0.1:${ports.ztAdmin}`, "--all"]);
    expect(all.body.rows.length).toBe(3);
    const certs = await json(["proxy-config", "certs", "--node", "node-a", "--admin", `127.0.0.1:${ports.ztAdmin}`]);
    expect(certs.body.rows).toEqual([expect.objectContaining({ identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", state: "valid" })]);
    expect(Date.parse(certs.body.rows[0].notAfter)).toBeGreaterThan(Date.now() + 3600_000);
    const text = await mesh(["proxy-config", "workloads", "--node", "node-a", "--admin", `127.0.0.1:${ports.ztAdmin}`]);
    expect(text.stdout).toMatch(/^ztunnel\/node-a, configuration version \d+: 2 workloads\nNAMESPACE/);
    // Asking the wrong proxy is an error, not a silent answer.
    const wrong = await mesh(["proxy-config", "workloads", "--node", "node-b", "--admin", `127.0.0.1:${ports.ztAdmin}`]);
    expect(wrong.stderr).toContain("is ztunnel/node-a, not ztunnel/node-b");
  }, 60_000);

  test("proxy-config of the waypoint: its policies, services and routes", async () => {
    const a = ["--gateway", "ambient-ns/product-api-waypoint", "--admin", `127.0.0.1:${ports.wpAdmin}`];
    const pol = await json(["proxy-config", "policies", ...a]);
    expect(pol.body.rows.map((r: { kind: string; policy: string }) => `${r.kind} ${r.policy}`).sort()).toEqual([
      "AuthorizationPolicy ambient-ns/require-get-on-products",
      "RequestAuthentication ambient-ns/jwt-on-product-api",
    ]);
    const svc = await json(["proxy-config", "services", ...a]);
    expect(svc.body.rows).toEqual([expect.objectContaining({ name: "product-api", vip: "10.96.0.20", endpoints: ["10.244.2.10"] })]);
    const routes = await json(["proxy-config", "routes", ...a]);
    expect(routes.body.rows).toEqual([expect.objectContaining({ route: "ambient-ns/product-api-routes", backends: ["product-api.ambient-ns:8000"] })]);
    const wl = await json(["proxy-config", "workloads", ...a]);
    expect(wl.body.rows.map((r: { name: string }) => r.name)).toEqual(["product-api"]);
  }, 60_000);

  test("a log level change takes effect without a restart", async () => {
    const zt = procs.get("ztunnel/node-a")!;
    const pid = zt.proc.pid;
    const refusedLines = () => readFileSync(zt.log, "utf8").split("\n").filter((l) => l.includes('"admin request refused"')).length;
    const a = ["--node", "node-a", "--admin", `127.0.0.1:${ports.ztAdmin}`];
    let r = await mesh(["proxy-config", "log", ...a, "--scope", "admin", "--level", "error"]);
    expect(r.stdout).toContain("admin set to error");
    const before = refusedLines();
    await fetch(`http://127.0.0.1:${ports.ztAdmin}/config_dump`);
    await Bun.sleep(200);
    expect(refusedLines()).toBe(before); // the warning is below the scope's new level
    r = await mesh(["proxy-config", "log", ...a, "--scope", "admin", "--level", "info"]);
    await fetch(`http://127.0.0.1:${ports.ztAdmin}/config_dump`);
    await waitFor("the refusal logged again", () => refusedLines() > before, 5000);
    const levels = await json(["proxy-config", "log", ...a]);
    expect(levels.body.levels).toMatchObject({ admin: "info" });
    expect(zt.proc.pid).toBe(pid);
    expect(zt.proc.exitCode).toBeNull();
    // Every log line is one JSON object.
    for (const line of readFileSync(zt.log, "utf8").trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
  }, 60_000);

  test("describe, live: ztunnel connected and synced, certificate expiry, the waypoint and where the policy is enforced", async () => {
    const { body: v } = await json(["describe", "pod", "ambient-ns/product-viewer", ...live()]);
    expect(v.ztunnel).toMatchObject({ proxy: "ztunnel/node-a", connected: true, synced: true });
    expect(v.certificate).toMatchObject({ issued: true, heldBy: "ztunnel/node-a" });
    expect(v.capture).toMatchObject({ captured: true });
    const { body: api } = await json(["describe", "pod", "ambient-ns/product-api", ...live()]);
    expect(api.ztunnel).toMatchObject({ proxy: "ztunnel/node-b", connected: false });
    expect(api.capture).toMatchObject({ captured: true, effective: false });
    expect(api.waypoints[0]).toMatchObject({ gateway: "ambient-ns/product-api-waypoint", connected: true });
    expect(api.policies.find((p: { policy: string }) => p.policy === "ambient-ns/require-get-on-products").enforcedAt).toEqual([
      "waypoint ambient-ns/product-api-waypoint (traffic to Service product-api.ambient-ns)",
    ]);
    const { body: legacy } = await json(["describe", "pod", "legacy/legacy-web", ...live()]);
    expect(legacy.capture.captured).toBe(false);
    const text = await mesh(["describe", "service", "product-api.ambient-ns", ...live()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("applied by waypoint ambient-ns/product-api-waypoint");
    // The control plane's configuration endpoint wants an admin: a node token is refused.
    const node = join(dir, "node-a.token");
    const refused = await mesh(["describe", "pod", "ambient-ns/product-viewer", "--control-plane", cp, "--ca-cert", join(dataDir, "root-cert.pem"), "--token-file", node]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused.*admin token/i);
  }, 60_000);

  test("proxy-status: synced proxies, a NACK made on purpose, then a ztunnel killed with SIGKILL", async () => {
    let s = await json(["proxy-status", ...live()]);
    const row = (id: string) => s.body.proxies.find((p: { id: string }) => p.id === id);
    expect(row("ztunnel/node-a")).toMatchObject({ state: "SYNCED", expected: true, certificates: 1 });
    expect(row("waypoint/ambient-ns/product-api-waypoint")).toMatchObject({ state: "SYNCED" });
    expect(row("ztunnel/node-b")).toMatchObject({ state: "NOT CONNECTED" });
    expect(s.code).toBe(3);

    // A proxy for node-b that refuses every version it is sent.
    const tokenB = (await mesh(["token", "create", "--data-dir", dataDir, "--node", "node-b"])).stdout.trim();
    nack = new XdsClient({
      controlPlane: cp,
      caCertPem: readFileSync(join(dataDir, "root-cert.pem"), "utf8"),
      token: tokenB,
      proxy: { kind: "ztunnel", node: "node-b" },
      validate: () => "refused on purpose by the test",
      backoff: { initialMs: 50, maxMs: 500 },
    });
    await nack.start();
    await waitFor("the NACK reaches the control plane", async () => {
      s = await json(["proxy-status", ...live()]);
      return row("ztunnel/node-b")?.state === "NACK";
    }, 20_000);
    expect(row("ztunnel/node-b").nack.reason).toBe("refused on purpose by the test");
    const text = await mesh(["proxy-status", ...live()]);
    expect(text.stdout).toMatch(/ztunnel\/node-b +node-b +NACK/);
    expect(text.stdout).toContain("refused on purpose by the test");

    const killed = procs.get("ztunnel/node-a")!.proc;
    killed.kill("SIGKILL");
    await killed.exited;
    // Nor its instance record (the ztunnels of a node and namespace, under /run/mesh as root): ours to remove.
    removeZtunnelRecord(ztunnelRecord(netnsId(), "node-a", killed.pid));
    await waitFor("the killed ztunnel flagged", async () => {
      s = await json(["proxy-status", ...live()]);
      return row("ztunnel/node-a")?.state === "NOT CONNECTED";
    }, 20_000);
    expect(row("ztunnel/node-a").problems[0]).toContain("not connected to the control plane, but the configuration expects it (1 ambient workload on node node-a)");
    expect(s.code).toBe(3);
    const { body: v } = await json(["describe", "pod", "ambient-ns/product-viewer", ...live()]);
    expect(v.ztunnel.connected).toBe(false);
    expect(v.capture.effective).toBe(false);
    expect(v.warnings).toContain("the ztunnel of node-a is not connected to the control plane");
  }, 60_000);
});
