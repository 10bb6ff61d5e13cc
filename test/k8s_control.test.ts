/**
 * `mesh run --role control --kubernetes` through the real executable, against the fake API server (which
 * enforces k8s/rbac.yaml), with a ztunnel (also dist/mesh) that authenticates with its projected
 * service-account token the way the DaemonSet does: the cluster's objects reach the ztunnel, changes made in
 * the cluster reach it too, and node authorization holds (the node-a token cannot get node-b identities, nor
 * pass for node-b). Bootstrap tokens keep working next to service-account tokens.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminCall } from "../src/admin/mod.ts";
import { setLevel } from "../src/core/mod.ts";
import { createCsr } from "../src/identity/mod.ts";
import { FakeApiServer } from "../src/kube/_test_apiserver.ts";
import { namespace, pod, seedShop, serviceAccount } from "../src/kube/_test_cluster.ts";
import { XdsClient } from "../src/xds/mod.ts";
import { boundPorts, ensureBuilt, MESH, rbacGrants, waitFor } from "./support/mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";
const API = "spiffe://cluster.local/ns/shop/sa/api";
const tmp = mkdtempSync(join(tmpdir(), "mesh-k8s-e2e-"));
const procs: ReturnType<typeof Bun.spawn>[] = [];
const clients: XdsClient[] = [];
let api: FakeApiServer;
let controlPort = 0;
let dataDir = "";
let caFile = "";

/** Starts dist/mesh (every port 0) and returns the ports it bound, read back from its log. */
async function spawn(args: string[], log: string) {
  const p = Bun.spawn([MESH, ...args], { stdout: "ignore", stderr: Bun.file(join(tmp, log)), env: { ...process.env, MESH_LOG_LEVEL: "info" } });
  procs.push(p);
  return await boundPorts(join(tmp, log));
}

const ready = (port: number) => fetch(`http://127.0.0.1:${port}/healthz/ready`).then((r) => r.status === 200, () => false);
const ztunnelToken = (podName: string) => api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "ztunnel", pod: { name: podName }, audiences: ["istio-ca"] });

function client(token: string, node: string): XdsClient {
  const c = new XdsClient({
    controlPlane: `127.0.0.1:${controlPort}`,
    caCertPem: readFileSync(caFile, "utf8"),
    token,
    proxy: { kind: "ztunnel", node },
    backoff: { initialMs: 50, maxMs: 400 },
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  setLevel("xds-client", "error");
  ensureBuilt();
  api = await FakeApiServer.start({ rbac: rbacGrants(), bookmarkIntervalMs: 500 });
  api.put(namespace("mesh-system"));
  for (const sa of ["mesh-control", "ztunnel"]) api.put(serviceAccount("mesh-system", sa));
  seedShop(api);
  api.put(pod({ ns: "mesh-system", name: "ztunnel-aaaaa", node: "node-a", sa: "ztunnel", ip: "192.168.0.11", hostNetwork: true }));
  api.put(pod({ ns: "mesh-system", name: "ztunnel-bbbbb", node: "node-b", sa: "ztunnel", ip: "192.168.0.12", hostNetwork: true }));
  const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { kind: "token", token: await api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "mesh-control" }) });

  dataDir = join(tmp, "control");
  const bound = await spawn([
    "run", "--role", "control", "--kubernetes", "--kubeconfig", kubeconfig, "--data-dir", dataDir,
    "--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
  ], "control.log");
  controlPort = bound.control!;
  await waitFor("control ready", () => ready(bound.ready), 20_000).catch((e) => {
    throw new Error(`${(e as Error).message}\n${readFileSync(join(tmp, "control.log"), "utf8")}`);
  });
  // What the DaemonSet mounts: the trust bundle ConfigMap the control role published.
  const cm = await waitFor("trust bundle ConfigMap", () => api.get("ConfigMap", "mesh-system", "mesh-ca-root-cert"));
  caFile = join(tmp, "root-cert.pem");
  writeFileSync(caFile, (cm.data as Record<string, string>)["root-cert.pem"]!);
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.stop().catch(() => {});
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => Promise.race([p.exited, Bun.sleep(5000).then(() => p.kill("SIGKILL"))])));
  await api?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("dist/mesh run --role control --kubernetes", () => {
  test("the published trust bundle is the control role's root", () => {
    expect(readFileSync(caFile, "utf8")).toBe(readFileSync(join(dataDir, "root-cert.pem"), "utf8"));
  });

  test("a ztunnel with its projected token gets the cluster's configuration and its node's certificates; cluster changes reach it", async () => {
    const tokenFile = join(tmp, "istio-token-a");
    writeFileSync(tokenFile, await ztunnelToken("ztunnel-aaaaa"));
    const zdata = join(tmp, "ztunnel-a");
    mkdirSync(zdata);
    const { ready: rd, admin } = await spawn([
      "run", "--role", "ztunnel", "--node", "node-a", "--control-plane", `127.0.0.1:${controlPort}`, "--ca-cert", caFile,
      "--token-file", tokenFile, "--redirect", "none", "--data-dir", zdata,
      "--hbone-addr", "127.0.0.1:0", "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0",
      "--metrics-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
    ], "ztunnel-a.log");
    await waitFor("ztunnel ready", () => ready(rd), 20_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${readFileSync(join(tmp, "ztunnel-a.log"), "utf8")}`);
    });
    type Dump = { localWorkloads: { uid: string; identity: string }[]; model: { workloads: { name: string }[]; authorizationPolicies: { name: string }[] } };
    const dump = async () => (await adminCall(`127.0.0.1:${admin}`, "/config_dump")).body as Dump;
    const d = await dump();
    expect(d.localWorkloads.map((w) => w.uid)).toEqual(["Pod/shop/viewer"]);
    expect(d.model.workloads.map((w) => w.name)).toEqual(expect.arrayContaining(["viewer", "api"]));
    const certs = (await adminCall(`127.0.0.1:${admin}`, "/certs")).body as { certificates: { identity: string; state?: string }[] };
    expect(certs.certificates.map((c) => c.identity)).toEqual([VIEWER]);

    // A pod scheduled on node-a, under a new service account: the ztunnel sees it and gets its identity.
    api.put(serviceAccount("shop", "reports"));
    api.put(pod({ name: "reports", node: "node-a", sa: "reports", ip: "10.244.1.20" }));
    await waitFor("new pod at the ztunnel", async () => (await dump()).localWorkloads.some((w) => w.uid === "Pod/shop/reports"));
    await waitFor("its certificate", async () => {
      const c = (await adminCall(`127.0.0.1:${admin}`, "/certs")).body as { certificates: { identity: string; state?: string }[] };
      return c.certificates.some((x) => x.identity === "spiffe://cluster.local/ns/shop/sa/reports" && x.state !== "pending");
    });
    // A policy for its workloads created in the cluster reaches it, and goes when it is deleted there.
    api.put({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "shop-deny-outsiders", namespace: "shop" }, spec: { action: "DENY", rules: [{ from: [{ source: { namespaces: ["outside"] } }] }] } });
    await waitFor("policy pushed", async () => (await dump()).model.authorizationPolicies.some((p) => p.name === "shop-deny-outsiders"));
    api.remove("AuthorizationPolicy", "shop", "shop-deny-outsiders");
    await waitFor("policy removed", async () => !(await dump()).model.authorizationPolicies.some((p) => p.name === "shop-deny-outsiders"));
  }, 60_000);

  test("node authorization: the node-a token gets node-a identities, never node-b's", async () => {
    const a = client(await ztunnelToken("ztunnel-aaaaa"), "node-a");
    await a.start();
    await a.ready(10_000);
    const ok = await a.sign((await createCsr(VIEWER)).csrPem, VIEWER);
    expect(ok.certPem).toContain("BEGIN CERTIFICATE");
    const refused = await a.sign((await createCsr(API)).csrPem, API).then(() => undefined, (e) => e as Error & { code?: string });
    expect(refused?.message).toMatch(/only on other nodes|may not get/);
    // The same token cannot pass for node-b: the node comes from the pod the token is bound to.
    const posing = client(await ztunnelToken("ztunnel-aaaaa"), "node-b");
    const e = await posing.start().then(() => posing.ready(2_000)).then(() => undefined, (x) => x as Error);
    expect(e?.message ?? "").toMatch(/token is for node "node-a", but this proxy is ztunnel\/node-b/);
    // node-b's own ztunnel token does get api.
    const b = client(await ztunnelToken("ztunnel-bbbbb"), "node-b");
    await b.start();
    await b.ready(10_000);
    expect((await b.sign((await createCsr(API)).csrPem, API)).certPem).toContain("BEGIN CERTIFICATE");
  }, 30_000);

  test("a service-account token of any other workload is refused", async () => {
    const t = await api.serviceAccountToken({ namespace: "shop", serviceAccount: "viewer", pod: { name: "viewer" }, audiences: ["istio-ca"] });
    const c = client(t, "node-a");
    const e = await c.start().then(() => c.ready(2_000)).then(() => undefined, (x) => x as Error);
    expect(e?.message ?? "").toMatch(/neither a ztunnel's/);
    expect(readFileSync(join(tmp, "control.log"), "utf8")).toMatch(/bootstrap refused.*neither a ztunnel's/);
  }, 15_000);

  test("bootstrap tokens (mesh token create) still work next to TokenReview", async () => {
    const tok = Bun.spawnSync([MESH, "token", "create", "--data-dir", dataDir, "--node", "node-a"], { stdout: "pipe", stderr: "pipe" });
    expect(tok.exitCode).toBe(0);
    const c = client(tok.stdout.toString().trim(), "node-a");
    await c.start();
    await c.ready(10_000);
    expect(c.current()!.view.model.workloads.some((w) => w.name === "viewer")).toBe(true);
  }, 15_000);
});
