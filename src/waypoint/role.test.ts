/**
 * The waypoint role as `mesh run --role waypoint` starts it, in-process with a real control role: bootstrap
 * token, configuration over the control-plane stream, its own certificate from the CA, the HBONE listener,
 * readiness, the admin API, metrics, and a graceful stop. (Forwarding to workloads is covered by the other
 * tests here and, through dist/mesh, by test/waypoint_lab.test.ts.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import type { RoleHandle } from "../admin/mod.ts";
import { startControl, type ControlHandle } from "../control/mod.ts";
import { setSink } from "../core/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { createBootstrapToken, WorkloadCertificates } from "../identity/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { baseYaml, readUntil, VIEWER, WAYPOINT } from "./_test_env.ts";
import { startWaypoint } from "./mod.ts";

const DENY_ALL = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: nobody
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW`;

let dir = "";
let control: ControlHandle;
let waypoint: RoleHandle;
const metrics = new Registry();
const admin = new Hono();
let restore: ((line: string) => void) | undefined;

async function eventually<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(25);
  }
}

beforeAll(async () => {
  restore = setSink(() => {});
  dir = mkdtempSync(join(tmpdir(), "mesh-waypoint-role-"));
  writeFileSync(join(dir, "mesh.yaml"), baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }, DENY_ALL));
  control = await startControl(
    { config: join(dir, "mesh.yaml"), kubernetes: false, dataDir: join(dir, "control"), listen: "127.0.0.1:0" },
    { metrics: new Registry(), admin: new Hono() },
  );
  const token = await createBootstrapToken(join(dir, "control"), { gateway: "shop/wp", ttlSeconds: 600 } as never);
  writeFileSync(join(dir, "wp.token"), token);
  waypoint = await startWaypoint({
    gateway: "shop/wp",
    controlPlane: `127.0.0.1:${control.port}`,
    caCert: join(dir, "control", "root-cert.pem"),
    tokenFile: join(dir, "wp.token"),
    hboneAddr: "127.0.0.20:0",
    drainMs: 1000,
  }, { metrics, admin });
});

afterAll(async () => {
  await waypoint?.stop({ drainMs: 200 });
  await control?.stop({ drainMs: 0 });
  if (restore) setSink(restore);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("becomes ready once it has its configuration and its own certificate", async () => {
  await eventually(() => waypoint.readiness().ready);
  const dump = (await (await admin.request("/config_dump")).json()) as { identity: string; hbone: { address: string } };
  expect(dump.identity).toBe(WAYPOINT);
  expect(dump.hbone.address).toMatch(/^127\.0\.0\.20:\d+$/);
  const certs = (await (await admin.request("/certs")).json()) as { identity: string }[];
  expect(certs.map((c) => c.identity)).toEqual([WAYPOINT]);
});

test("serves HBONE with the CA's certificate and applies the pushed policy (403 from the waypoint)", async () => {
  const dump = (await (await admin.request("/config_dump")).json()) as { hbone: { address: string } };
  const client = new WorkloadCertificates({ sign: (csr, identity) => control.ca.signCsr(csr, { identity }) as never, trustBundlePem: control.ca.trustBundlePem });
  await client.get(VIEWER);
  const m = client.tlsMaterial(VIEWER)!;
  const pool = new HbonePool();
  try {
    const s = await pool.connect({
      address: dump.hbone.address,
      authority: "10.96.0.20:8000",
      headers: { forwarded: 'for="127.0.0.2"' },
      tls: { cert: m.cert, key: m.key, ca: m.ca! },
      expectedIdentities: [WAYPOINT],
    });
    s.write(Buffer.from("GET /get HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n"));
    const text = await readUntil(s, () => false);
    expect(text.startsWith("HTTP/1.1 403")).toBe(true);
    expect(text.endsWith("RBAC: access denied")).toBe(true);
    expect(metrics.render()).toContain('istio_requests_total{reporter="waypoint"');
  } finally {
    await pool.close(200);
    client.close();
  }
});
