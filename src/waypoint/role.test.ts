/**
 * The waypoint role as `mesh run --role waypoint` starts it, in-process with a real control role: bootstrap
 * token, configuration over the control-plane stream, its own certificate from the CA, the HBONE listener,
 * readiness, the admin API, metrics, and a graceful stop. (Forwarding to workloads is covered by the other
 * tests here and, through dist/mesh, by test/waypoint_lab.test.ts.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type InProcessMesh, startInProcessMesh, waitFor } from "../../test/support/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { WorkloadCertificates } from "../identity/mod.ts";
import { ALLOW_NOBODY, baseYaml, readUntil, VIEWER, WAYPOINT } from "./_test_env.ts";


let mesh: InProcessMesh;

beforeAll(async () => {
  mesh = await startInProcessMesh({
    prefix: "mesh-waypoint-role-",
    yaml: baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }, ALLOW_NOBODY),
    proxy: { waypoint: "shop/wp", hboneAddr: "127.0.0.20:0" },
    drainMs: 1000,
  });
});

afterAll(async () => {
  await mesh?.stop();
});

test("becomes ready once it has its configuration and its own certificate", async () => {
  await waitFor("the waypoint to be ready", () => mesh.proxy!.readiness().ready, 15_000);
  const dump = (await (await mesh.admin.request("/config_dump")).json()) as { identity: string; hbone: { address: string } };
  expect(dump.identity).toBe(WAYPOINT);
  expect(dump.hbone.address).toMatch(/^127\.0\.0\.20:\d+$/);
  const certs = (await (await mesh.admin.request("/certs")).json()) as { identity: string }[];
  expect(certs.map((c) => c.identity)).toEqual([WAYPOINT]);
});

test("serves HBONE with the CA's certificate and applies the pushed policy (403 from the waypoint)", async () => {
  const dump = (await (await mesh.admin.request("/config_dump")).json()) as { hbone: { address: string } };
  const client = new WorkloadCertificates({ sign: (csr, identity) => mesh.control.ca.signCsr(csr, { identity }) as never, trustBundlePem: mesh.control.ca.trustBundlePem });
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
    expect(mesh.metrics.render()).toContain('istio_requests_total{reporter="waypoint"');
  } finally {
    await pool.close(200);
    client.close();
  }
});
