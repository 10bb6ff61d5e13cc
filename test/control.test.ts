/**
 * The control role through the real executable: `dist/mesh run --role control` as a child process,
 * `dist/mesh token create` for the token, a proxy client over mTLS, `dist/mesh status`, then a SIGKILL and
 * a restart on the same port and data dir: the client reconnects and nothing is lost.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCsr, validateSvid } from "../src/identity/mod.ts";
import { XdsClient } from "../src/xds/mod.ts";
import { findAdminSecret } from "../src/admin/mod.ts";
import { boundPorts, fixedPort, namespaceYaml, podYaml, replaceFile, serviceAccountYaml, waitFor, yamlFile } from "./support/mod.ts";

const MESH = join(import.meta.dir, "..", "dist", "mesh");
const tmp = mkdtempSync(join(tmpdir(), "mesh-e2e-control-"));
const procs: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

function mesh(extraPod = ""): string {
  const pod = (name: string, node: string, ip: string) => podYaml({ name, node, ip });
  return yamlFile(
    namespaceYaml("shop"),
    serviceAccountYaml("viewer"),
    serviceAccountYaml("api"),
    pod("viewer", "node-a", "10.244.1.10"),
    pod("api", "node-b", "10.244.2.10"),
    ...(extraPod ? [serviceAccountYaml(extraPod), pod(extraPod, "node-a", "10.244.1.11")] : []),
  );
}

function save(text: string): void {
  replaceFile(join(tmp, "mesh.yaml"), text);
}

test("dist/mesh control role: token, push + ACK, status, SIGKILL and restart", async () => {
  expect(existsSync(MESH)).toBe(true);
  save(mesh());
  const dataDir = join(tmp, "data");
  // The restart must come back on the same port: a fixed one, from outside the ephemeral range (where
  // nothing else is handed it meanwhile). Metrics and readiness bind port 0 at each start, read back.
  const port = fixedPort();
  let metrics = 0, ready = 0, admin = 0;
  const start = async () => {
    const log = join(tmp, `control-${procs.length}.log`);
    const p = Bun.spawn([
      MESH, "run", "--role", "control", "--config", join(tmp, "mesh.yaml"), "--data-dir", dataDir,
      "--listen", `127.0.0.1:${port}`, "--metrics-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0",
      "--admin-addr", "127.0.0.1:0",
    ], { stdout: "ignore", stderr: Bun.file(log), env: { ...process.env, MESH_LOG_LEVEL: "info" } });
    procs.push(p);
    const bound = await boundPorts(log);
    expect(bound.control).toBe(port);
    [metrics, ready, admin] = [bound.metrics!, bound.ready, bound.admin];
    return p;
  };
  const isReady = () => fetch(`http://127.0.0.1:${ready}/healthz/ready`).then((r) => r.status === 200, () => false);

  let control = await start();
  await waitFor("control ready", isReady, 15_000);
  expect(existsSync(join(dataDir, "root-cert.pem"))).toBe(true);

  const tok = Bun.spawnSync([MESH, "token", "create", "--data-dir", dataDir, "--node", "node-a"], { stdout: "pipe", stderr: "pipe" });
  expect(tok.exitCode).toBe(0);
  const token = tok.stdout.toString().trim();
  expect(token.split(".").length).toBe(3);

  const caCertPem = readFileSync(join(dataDir, "root-cert.pem"), "utf8");
  const client = new XdsClient({
    controlPlane: `127.0.0.1:${port}`,
    caCertPem,
    token,
    proxy: { kind: "ztunnel", node: "node-a" },
    dataDir: join(tmp, "ztunnel-a"),
    backoff: { initialMs: 50, maxMs: 400 },
  });
  try {
    await client.start();
    await client.ready(10_000);
    const v1 = client.current()!.version;
    expect(client.current()!.view.model.workloads.map((w) => w.name).sort()).toEqual(["api", "viewer"]);

    const statusJson = async () => {
      const r = Bun.spawnSync([MESH, "status", "--data-dir", dataDir, "--control-plane", `127.0.0.1:${port}`, "--format", "json"], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, report: r.stdout.length ? JSON.parse(r.stdout.toString()) : undefined, err: r.stderr.toString() };
    };
    const s1 = await waitFor("status shows the ACK", async () => {
      const s = await statusJson();
      return s.report?.proxies.find((p: { id: string; ackedVersion?: number }) => p.id === "ztunnel/node-a" && p.ackedVersion === v1) && s;
    }, 15_000);
    expect(s1.code).toBe(0);
    const text = Bun.spawnSync([MESH, "status", "--data-dir", dataDir, "--control-plane", `127.0.0.1:${port}`], { stdout: "pipe" });
    expect(text.stdout.toString()).toContain("ztunnel/node-a");
    expect(text.stdout.toString()).toContain("SYNCED");

    // A saved change reaches the proxy.
    save(mesh("extra"));
    await waitFor("change pushed", () => client.current()!.view.model.workloads.some((w) => w.name === "extra"), 15_000);
    const m = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    expect(m).toContain('mesh_control_connected_proxies{kind="ztunnel"} 1');
    expect(m).toMatch(/mesh_control_pushes_total\{type="delta"\} [1-9]/);

    // SIGKILL: the client notices, keeps its configuration; a restart on the same port and data dir takes over.
    control.kill("SIGKILL");
    await control.exited;
    // A killed process cannot remove its admin secret (/run/mesh/admin/<netns>-<port>.secret): we do.
    const left = findAdminSecret(admin);
    if (left) rmSync(left.path, { force: true });
    await waitFor("client disconnected", () => !client.connected, 15_000);
    const held = client.current()!.version;
    save(mesh("after-restart"));
    control = await start();
    await waitFor("restarted control ready", isReady, 15_000);
    await waitFor("client reconnected and updated", () => client.current()!.view.model.workloads.some((w) => w.name === "after-restart"), 15_000);
    expect(client.current()!.version).toBeGreaterThan(held);
    const r = await client.sign((await createCsr("spiffe://cluster.local/ns/shop/sa/viewer")).csrPem, "spiffe://cluster.local/ns/shop/sa/viewer");
    expect(validateSvid(r.chainPem, readFileSync(join(dataDir, "root-cert.pem"), "utf8")).ok).toBe(true);
    const s2 = await waitFor("status after restart", async () => {
      const s = await statusJson();
      return s.report?.proxies.find((p: { id: string; ackedVersion?: number }) => p.id === "ztunnel/node-a" && p.ackedVersion === client.current()!.version);
    }, 15_000);
    expect(s2.certificates.map((c: { identity: string }) => c.identity)).toEqual(["spiffe://cluster.local/ns/shop/sa/viewer"]);
  } finally {
    await client.stop();
    control.kill("SIGTERM");
    await Promise.race([control.exited, Bun.sleep(3000)]);
  }
}, 90_000);
