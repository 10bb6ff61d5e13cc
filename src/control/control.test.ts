/**
 * The control role in-process, over real TLS on loopback: bootstrap, CSRs under node authorization,
 * config push with ACK/NACK, invalid configurations, restarts and last-known-good.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createCsr, validateSvid, WorkloadCertificates } from "../identity/mod.ts";
import { callJson, openSession, PATHS, type XdsClient } from "../xds/mod.ts";
import { BASE_PODS, captureLogs, client, meshYaml, type PodSpec, tempDir, writeMesh } from "./_test_env.ts";
import { bootstrapToken, fixedPort, startTestControl, type TestControl, waitFor } from "../../test/support/mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";
const API = "spiffe://cluster.local/ns/shop/sa/api";
const WP = "spiffe://cluster.local/ns/shop/sa/wp";

describe("control role: certificates", () => {
  const t = tempDir();
  let tc: TestControl & { dir: string };
  const clients: XdsClient[] = [];

  beforeAll(async () => {
    writeMesh(t.dir, meshYaml());
    tc = { ...(await startTestControl(t.dir)), dir: t.dir };
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await tc?.handle.stop();
    t.cleanup();
  });

  test("writes DATA_DIR/root-cert.pem and is ready with a valid configuration", () => {
    const root = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    expect(new X509Certificate(root).ca).toBe(true);
    expect(tc.handle.readiness()).toEqual({ ready: true, reasons: [] });
  });

  test("a node's ztunnel gets an X.509-SVID with every required property", async () => {
    const c = await client(tc, { kind: "ztunnel", node: "node-a" });
    clients.push(c);
    await c.start();
    const { csrPem, keyPem } = await createCsr(VIEWER);
    const r = await c.sign(csrPem, VIEWER);
    const root = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    const v = validateSvid(r.chainPem, root, { expectedTrustDomain: "cluster.local", keyPem });
    expect(v).toMatchObject({ ok: true, spiffeId: VIEWER });
    const x = new X509Certificate(r.certPem);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBe(`URI:${VIEWER}`);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(x.keyUsage ?? []).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(x.verify(new X509Certificate(root).publicKey)).toBe(true);
    // Default lifetime: the MeshConfig's 24h.
    const life = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 1000;
    expect(life).toBeGreaterThan(86400 - 600);
    expect(life).toBeLessThanOrEqual(86400 + 600);
    expect(Date.parse(r.notAfter)).toBe(Date.parse(x.validTo));
    // A second CSR gets a new serial.
    const again = await c.sign((await createCsr(VIEWER)).csrPem, VIEWER);
    expect(new X509Certificate(again.certPem).serialNumber).not.toBe(x.serialNumber);
    // `mesh status` shows what was issued to this proxy.
    await waitFor("status entry", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-a"));
    const st = tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-a")!;
    expect(st.certificates.map((x) => x.identity)).toEqual([VIEWER]);
    expect(st.clientCertNotAfter).toBeDefined();
  });

  test("a node token asking for an identity that lives on another node is refused: error, log line, metric", async () => {
    const c = clients[0]!;
    const logs = captureLogs(["control"]);
    try {
      const before = tc.metrics.counter("mesh_control_csr_total", "", ["result"]).value({ result: "refused" });
      const err = await c.sign((await createCsr(API)).csrPem, API).then(() => undefined, (e) => e);
      expect(err?.code).toBe("MESH_NODE_NOT_AUTHORIZED");
      expect(err.message).toContain('no workload with that identity is scheduled on node "node-a"');
      expect(tc.metrics.counter("mesh_control_csr_total", "", ["result"]).value({ result: "refused" })).toBe(before + 1);
      expect(tc.metrics.render()).toContain('mesh_control_csr_total{result="refused"}');
      const line = logs.lines.find((l) => l.msg === "certificate refused");
      expect(line).toMatchObject({ level: "warn", caller: "node/node-a", identity: API });
    } finally {
      logs.release();
    }
  });

  test("a CSR whose SAN does not match the asked identity is invalid", async () => {
    const c = clients[0]!;
    const before = tc.metrics.counter("mesh_control_csr_total", "", ["result"]).value({ result: "invalid" });
    const err = await c.sign((await createCsr(VIEWER, { sans: [{ type: "url", value: API }] })).csrPem, VIEWER).then(() => undefined, (e) => e);
    expect(err?.code).toBe("MESH_IDENTITY_INVALID");
    expect(tc.metrics.counter("mesh_control_csr_total", "", ["result"]).value({ result: "invalid" })).toBe(before + 1);
  });

  test("a waypoint gets only its own service account", async () => {
    const c = await client(tc, { kind: "waypoint", namespace: "shop", name: "wp" });
    clients.push(c);
    await c.start();
    const ok = await c.sign((await createCsr(WP)).csrPem, WP);
    expect(new X509Certificate(ok.certPem).subjectAltName).toBe(`URI:${WP}`);
    const err = await c.sign((await createCsr(API)).csrPem, API).then(() => undefined, (e) => e);
    expect(err?.code).toBe("MESH_NODE_NOT_AUTHORIZED");
    expect(err.message).toContain("may only get its own identity");
  });

  test("without a client certificate there is no CSR and no stream; a bad token gets no client certificate", async () => {
    const root = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    const s = await openSession(tc.address, { ca: root });
    try {
      const csr = await callJson(s, "POST", PATHS.csr, { csr: (await createCsr(VIEWER)).csrPem, identity: VIEWER });
      expect(csr.status).toBe(401);
      const boot = await callJson(s, "POST", PATHS.bootstrap, {}, { authorization: "Bearer not-a-token" });
      expect(boot.status).toBe(401);
      expect((boot.body as { code: string }).code).toBe("MESH_TOKEN_INVALID");
      const noAuth = await callJson(s, "POST", PATHS.bootstrap, {});
      expect(noAuth.status).toBe(401);
      const status = await callJson(s, "GET", PATHS.status, undefined, { authorization: `Bearer ${await bootstrapToken(join(t.dir, "data"), { node: "node-a" })}` });
      expect(status.status).toBe(401);
      const admin = await callJson(s, "GET", PATHS.status, undefined, { authorization: `Bearer ${await bootstrapToken(join(t.dir, "data"), { admin: true })}` });
      expect(admin.status).toBe(200);
      expect((admin.body as { proxies: unknown[] }).proxies.length).toBeGreaterThan(0);
    } finally {
      s.destroy();
    }
  });

  test("a token for another node is refused by the client with a clear error", async () => {
    const dataDir = join(t.dir, "data");
    const c = await client(tc, { kind: "ztunnel", node: "node-a" }, { token: await bootstrapToken(dataDir, { node: "node-b" }) });
    await c.start();
    const err = await c.sign("x", VIEWER).then(() => undefined, (e) => e);
    await c.stop();
    expect(err?.code).toBe("MESH_TOKEN_INVALID");
    expect(err.message).toContain('The token is for node "node-b"');
  });

  test("rotation: certificates of 3 s under continuous mTLS use, zero failed handshakes", async () => {
    const c = clients[0]!;
    const root = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    const certs = new WorkloadCertificates({ sign: (csr, id) => c.sign(csr, id, 3), trustBundlePem: root, jitter: 0.1 });
    try {
      await certs.get(VIEWER);
      const serials = new Set<string>();
      let ok = 0, failed = 0;
      const errors: string[] = [];
      const tls = await import("node:tls");
      const serving = () => certs.tlsMaterial(VIEWER)!;
      const server = tls.createServer({ ...serving(), requestCert: true, rejectUnauthorized: true }, (sock) => sock.end("ok"));
      const unsub = certs.onRotate(() => server.setSecureContext({ ...serving() }));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const port = (server.address() as { port: number }).port;
      const end = Date.now() + 7000;
      while (Date.now() < end) {
        const m = serving();
        await new Promise<void>((resolve) => {
          const s = tls.connect({ host: "127.0.0.1", port, ...m, checkServerIdentity: () => undefined }, () => {
            const peer = s.getPeerCertificate();
            serials.add(peer.serialNumber);
            if (s.authorized && peer.subjectaltname === `URI:${VIEWER}`) ok++;
            else {
              failed++;
              errors.push(String(s.authorizationError));
            }
            s.end();
            resolve();
          });
          s.on("error", (e) => {
            failed++;
            errors.push(e.message);
            resolve();
          });
        });
        await Bun.sleep(20);
      }
      unsub();
      server.close();
      expect(errors).toEqual([]);
      expect(failed).toBe(0);
      expect(ok).toBeGreaterThan(50);
      // 7 s of 3 s certificates renewed at about half their life: at least 3 distinct certificates served.
      expect(serials.size).toBeGreaterThanOrEqual(3);
    } finally {
      certs.close();
    }
  }, 20_000);
});

describe("control role: root rotation", () => {
  const t = tempDir();
  let tc: TestControl & { dir: string };
  afterAll(async () => {
    await tc?.handle.stop();
    t.cleanup();
  });

  test("add, activate, remove: bundles reach proxies, new certificates chain to the new root, clients keep working", async () => {
    writeMesh(t.dir, meshYaml());
    tc = { ...(await startTestControl(t.dir)), dir: t.dir };
    const ca = tc.handle.ca;
    const oldRoot = ca.rootPem;
    const c = await client(tc, { kind: "ztunnel", node: "node-a" }); // trusts only the old root file
    try {
      await c.start();
      await c.ready(5000);
      const oldCert = await c.sign((await createCsr(VIEWER)).csrPem, VIEWER);
      const roots = (pem: string) => pem.match(/BEGIN CERTIFICATE/g)?.length ?? 0;
      expect(roots(c.current()!.view.trustBundlePem)).toBe(1);

      const newRoot = await ca.addRoot();
      await waitFor("bundle with both roots pushed", () => roots(c.current()!.view.trustBundlePem) === 2);
      expect(readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8")).toContain(newRoot.trim().split("\n")[1]!);
      await ca.activateRoot();
      await waitFor("root activated", () => ca.rootPem === newRoot);
      await Bun.sleep(100); // the serving certificate is re-issued asynchronously
      // Reconnect: the serving certificate now chains to the new root, which the client learned by push.
      tc.handle.xds.closeAll();
      await waitFor("reconnected", () => tc.handle.status().proxies.some((p) => p.id === "ztunnel/node-a" && p.ackedVersion === tc.handle.status().version));
      const newCert = await c.sign((await createCsr(VIEWER)).csrPem, VIEWER);
      const bundle = c.current()!.view.trustBundlePem;
      expect(validateSvid(newCert.chainPem, newRoot).ok).toBe(true);
      expect(validateSvid(newCert.chainPem, oldRoot).ok).toBe(false);
      // Old and new workload certificates both verify against the bundle during the rotation.
      expect(validateSvid(oldCert.chainPem, bundle).ok).toBe(true);
      expect(validateSvid(newCert.chainPem, bundle).ok).toBe(true);

      expect(ca.removeRoot(oldRoot)).toBe(true);
      await waitFor("bundle without the old root pushed", () => roots(c.current()!.view.trustBundlePem) === 1);
      expect(validateSvid(oldCert.chainPem, c.current()!.view.trustBundlePem).ok).toBe(false);
      // The client certificate from the old root is refused now: the client bootstraps again with its token.
      tc.handle.xds.closeAll();
      const again = await waitFor("works after the old root is gone", async () => {
        try {
          return await c.sign((await createCsr(VIEWER)).csrPem, VIEWER);
        } catch {
          return undefined;
        }
      });
      expect(validateSvid(again.chainPem, newRoot).ok).toBe(true);
      await waitFor("stream back", () => c.connected);
    } finally {
      await c.stop();
    }
  }, 30_000);
});

describe("control role: config push", () => {
  const t = tempDir();
  let tc: TestControl & { dir: string };
  const clients: XdsClient[] = [];
  const extraPods: PodSpec[] = [];

  beforeAll(async () => {
    writeMesh(t.dir, meshYaml());
    tc = { ...(await startTestControl(t.dir)), dir: t.dir };
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await tc?.handle.stop();
    t.cleanup();
  });

  test("a ztunnel receives its view and ACKs it; status shows the acknowledged version", async () => {
    const updates: number[] = [];
    const c = await client(tc, { kind: "ztunnel", node: "node-b" }, { onUpdate: (_v, ver) => void updates.push(ver) });
    clients.push(c);
    await c.start();
    await c.ready(5000);
    const view = c.current()!.view;
    expect(view.model.workloads.map((w) => w.name).sort()).toEqual(["api", "viewer"]);
    expect(view.model.authorizationPolicies.map((p) => p.name)).toEqual(["api-from-viewer"]);
    expect(view.trustBundlePem).toContain("BEGIN CERTIFICATE");
    const v = tc.handle.status().version;
    await waitFor("ACK in status", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-b" && p.ackedVersion === v));
    expect(updates).toEqual([v]);
  });

  test("100 config changes in a row: each reaches the proxy, ACKs in order", async () => {
    const c = clients[0]!;
    const acked: number[] = [];
    const unsub = tc.handle.xds.subscribe((e) => {
      if (e.type === "ack" && e.proxy === "ztunnel/node-b") acked.push(e.version);
    });
    const start = tc.handle.status().version;
    for (let i = 0; i < 100; i++) {
      extraPods.push({ name: `p${i}`, node: "node-b", sa: "api", ip: `10.244.3.${i + 1}` });
      writeMesh(t.dir, meshYaml([...BASE_PODS, ...extraPods]));
      await waitFor(`change ${i} applied`, () => c.current()?.view.model.workloads.some((w) => w.name === `p${i}`), 5000);
    }
    const end = tc.handle.status().version;
    await waitFor("last ACK", () => acked.at(-1) === end);
    unsub();
    expect(end).toBeGreaterThanOrEqual(start + 100);
    expect(acked.length).toBeGreaterThanOrEqual(100);
    expect([...acked].sort((a, b) => a - b)).toEqual(acked);
    expect(acked.at(-1)).toBe(end);
    expect(c.current()!.view.model.workloads.length).toBe(102);
    const m = tc.metrics.render();
    expect(m).toMatch(/mesh_control_pushes_total\{type="delta"\} \d{3}/);
    expect(m).toContain('mesh_control_push_duration_seconds_count{scope="change"}');
  }, 60_000);

  test("NACK: a refused version is not applied and its reason is visible in status", async () => {
    const refuse = (view: { model: { workloads: { name: string }[] } }) =>
      view.model.workloads.some((w) => w.name === "bad") ? "workload bad is not acceptable here" : undefined;
    const c = await client(tc, { kind: "ztunnel", node: "node-a" }, { validate: refuse });
    clients.push(c);
    await c.start();
    await c.ready(5000);
    const good = c.current()!.version;
    writeMesh(t.dir, meshYaml([...BASE_PODS, ...extraPods, { name: "bad", node: "node-a", sa: "viewer", ip: "10.244.4.1" }]));
    const st = await waitFor("NACK in status", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-a" && p.nack));
    expect(st.nack!.reason).toBe("workload bad is not acceptable here");
    expect(st.ackedVersion).toBe(good);
    expect(c.current()!.version).toBe(good);
    expect(c.current()!.view.model.workloads.some((w) => w.name === "bad")).toBe(false);
    expect(c.status().lastNack?.reason).toBe("workload bad is not acceptable here");
    // The other proxy accepted the same version.
    await waitFor("node-b acked", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-b" && p.ackedVersion === st.sentVersion));
    expect(tc.metrics.render()).toContain('mesh_control_nacks_total{kind="ztunnel"} 1');
    // The next good version applies (as a delta from the last ACK) and clears the NACK.
    writeMesh(t.dir, meshYaml([...BASE_PODS, ...extraPods, { name: "fine", node: "node-a", sa: "viewer", ip: "10.244.4.2" }]));
    await waitFor("good version applied", () => c.current()?.view.model.workloads.some((w) => w.name === "fine"));
    const after = await waitFor("NACK cleared", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-a" && !p.nack));
    expect(after.ackedVersion).toBe(c.current()!.version);
  });

  test("an invalid file keeps the last good configuration and reports file:line:col", async () => {
    const before = tc.handle.status().version;
    const good = meshYaml([...BASE_PODS, ...extraPods]);
    writeMesh(t.dir, good + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n  namespace: shop\nspec:\n  nodeName: node-a\n  serviceAccountName: viewer\n  bogusField: 1\n");
    const err = await waitFor("config error in status", () => tc.handle.status().config.lastError);
    const d = err.diagnostics.find((x) => x.severity === "error")!;
    expect(d.file).toBe(join(t.dir, "mesh.yaml"));
    expect(d.line).toBeGreaterThan(good.split("\n").length - 1);
    expect(d.col).toBeGreaterThan(0);
    expect(tc.handle.status().version).toBe(before);
    expect(tc.handle.readiness().ready).toBe(true);
    expect(tc.metrics.counter("mesh_control_config_errors_total", "").value()).toBeGreaterThanOrEqual(1);
    writeMesh(t.dir, good);
    await waitFor("error cleared", () => !tc.handle.status().config.lastError && tc.handle.status().version > before);
  });

  test("mesh status (text and json) shows proxies, versions, NACKs and certificates", async () => {
    const { parseArgs, status } = await import("../cli/mod.ts");
    const run = async (...argv: string[]) => {
      let out = "";
      const code = await status.run(parseArgs(["--control-plane", tc.address, "--data-dir", join(t.dir, "data"), ...argv], status, {}), {
        stdout: (x) => void (out += x),
        stderr: (x) => void (out += x),
      });
      return { code, out };
    };
    await clients[0]!.sign((await createCsr(API)).csrPem, API);
    const json = await run("--format", "json");
    const report = JSON.parse(json.out);
    const b = report.proxies.find((p: { id: string }) => p.id === "ztunnel/node-b");
    expect(b).toMatchObject({ kind: "ztunnel", node: "node-b", ackedVersion: report.version });
    expect(b.certificates[0]).toMatchObject({ identity: API });
    const text = await run();
    expect(text.out).toContain("ztunnel/node-b");
    expect(text.out).toContain("SYNCED");
    expect(text.out).toMatch(/Configuration .*mesh\.yaml: \d+ workloads/);
    expect([0, 3]).toContain(text.code);
  });

  test("the waypoint's view has its policies and routes", async () => {
    const c = await client(tc, { kind: "waypoint", namespace: "shop", name: "wp" });
    clients.push(c);
    await c.start();
    await c.ready(5000);
    const m = c.current()!.view.model;
    expect(m.authorizationPolicies.map((p) => p.name)).toEqual(["api-from-viewer"]);
    expect(m.services.map((s) => s.name)).toEqual(["api"]);
  });
});

describe("control role: restarts and last-known-good", () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  test("control plane restart: clients reconnect, versions keep growing, nothing lost", async () => {
    writeMesh(t.dir, meshYaml());
    const port = fixedPort(); // the restart comes back on it
    let tc = { ...(await startTestControl(t.dir, { listen: `127.0.0.1:${port}` })), dir: t.dir };
    const c = await client(tc, { kind: "ztunnel", node: "node-a" }, { dataDir: join(t.dir, "zt-a") });
    try {
      await c.start();
      await c.ready(5000);
      const v1 = c.current()!.version;
      await tc.handle.stop();
      await waitFor("client notices", () => !c.connected);
      // While it is down, the configuration changes.
      writeMesh(t.dir, meshYaml([...BASE_PODS, { name: "late", node: "node-a", sa: "viewer", ip: "10.244.1.11" }]));
      tc = { ...(await startTestControl(t.dir, { listen: `127.0.0.1:${port}` })), dir: t.dir };
      await waitFor("reconnected with the new configuration", () => c.current()?.view.model.workloads.some((w) => w.name === "late"), 10_000);
      expect(c.current()!.version).toBeGreaterThan(v1);
      const st = await waitFor("status after restart", () => tc.handle.status().proxies.find((p) => p.id === "ztunnel/node-a" && p.ackedVersion === c.current()!.version));
      expect(st.kind).toBe("ztunnel");
      // Certificates still issue after the restart (same CA from the data dir).
      const r = await c.sign((await createCsr(VIEWER)).csrPem, VIEWER);
      expect(validateSvid(r.certPem, readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8")).ok).toBe(true);
    } finally {
      await c.stop();
      await tc.handle.stop();
    }
  }, 30_000);

  test("a control plane that goes silent (no FIN, no RST) is noticed by keepalive and the client reconnects", async () => {
    writeMesh(t.dir, meshYaml());
    const tc = { ...(await startTestControl(t.dir)), dir: t.dir };
    // A TCP relay that can swallow bytes in both directions, like a partitioned network.
    let frozen = false;
    type Peer = { write(d: Uint8Array): number; end(): void };
    const relay = Bun.listen<{ upstream?: Peer; pending: Uint8Array[] }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(client) {
          client.data = { pending: [] };
          void Bun.connect({
            hostname: "127.0.0.1",
            port: tc.handle.port,
            socket: {
              data(_up, d) {
                if (!frozen) client.write(d);
              },
              close() {
                client.end();
              },
            },
          }).then((up) => {
            client.data.upstream = up;
            for (const d of client.data.pending) up.write(d);
          });
        },
        data(client, d) {
          if (frozen) return;
          if (client.data.upstream) client.data.upstream.write(d);
          else client.data.pending.push(new Uint8Array(d));
        },
        close(client) {
          client.data.upstream?.end();
        },
      },
    });
    const c = await client({ address: `127.0.0.1:${relay.port}`, dir: t.dir }, { kind: "ztunnel", node: "node-a" }, { keepaliveMs: 300 });
    try {
      await c.start();
      await c.ready(5000);
      frozen = true;
      const t0 = Date.now();
      await waitFor("silent control plane noticed", () => !c.connected, 5000);
      expect(Date.now() - t0).toBeLessThan(2000);
      frozen = false;
      await waitFor("reconnected", () => c.connected, 5000);
    } finally {
      await c.stop();
      relay.stop(true);
      await tc.handle.stop();
    }
  }, 20_000);

  test("a client started while the control plane is down serves from last-known-good, then catches up", async () => {
    const dataDir = join(t.dir, "zt-a");
    expect(existsSync(dataDir)).toBe(true);
    const root = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    const tok = await bootstrapToken(join(t.dir, "data"), { node: "node-a" });
    const port = fixedPort();
    const seen: number[] = [];
    const { XdsClient } = await import("../xds/mod.ts");
    const c = new XdsClient({
      controlPlane: `127.0.0.1:${port}`,
      caCertPem: root,
      token: tok,
      proxy: { kind: "ztunnel", node: "node-a" },
      dataDir,
      backoff: { initialMs: 50, maxMs: 300 },
      onUpdate: (_v, ver) => void seen.push(ver),
    });
    try {
      await c.start();
      // Served at once, without any control plane.
      expect(c.current()?.view.model.workloads.some((w) => w.name === "late")).toBe(true);
      await c.ready(100);
      expect(c.status()).toMatchObject({ connected: false, source: "last-known-good" });
      const lkg = c.current()!.version;
      await Bun.sleep(300);
      writeMesh(t.dir, meshYaml([...BASE_PODS, { name: "later", node: "node-a", sa: "viewer", ip: "10.244.1.12" }]));
      const tc = { ...(await startTestControl(t.dir, { listen: `127.0.0.1:${port}` })), dir: t.dir };
      try {
        await waitFor("caught up", () => c.current()?.view.model.workloads.some((w) => w.name === "later"), 10_000);
        expect(c.status().source).toBe("control-plane");
        expect(seen[0]).toBe(lkg);
        expect(c.current()!.version).toBeGreaterThan(lkg);
      } finally {
        await c.stop();
        await tc.handle.stop();
      }
    } finally {
      await c.stop();
    }
  }, 30_000);
});
