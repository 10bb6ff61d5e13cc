/**
 * MeshConfig.rotationFraction reaches the waypoint's certificate: in-process, a real control role issues
 * one-minute certificates (certificateTTL 1m) and the waypoint renews its own at the configured fraction
 * of the lifetime, not at the default half.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type InProcessMesh, meshConfigYaml, startInProcessMesh, waitFor } from "../../test/support/mod.ts";
import { baseYaml } from "./_test_env.ts";

const MESH_CONFIG = meshConfigYaml({ certificateTTL: "1m", rotationFraction: 0.15 });

let mesh: InProcessMesh;

interface Held {
  serial: string;
  notBefore: number;
  notAfter: number;
}

async function held(): Promise<Held | undefined> {
  const [c] = (await (await mesh.admin.request("/certs")).json()) as { serial: string; notBefore: string; notAfter: string }[];
  return c && { serial: c.serial, notBefore: Date.parse(c.notBefore), notAfter: Date.parse(c.notAfter) };
}

beforeAll(async () => {
  mesh = await startInProcessMesh({
    prefix: "mesh-waypoint-rotation-",
    yaml: baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }, MESH_CONFIG),
    proxy: { waypoint: "shop/wp", hboneAddr: "127.0.0.20:0" },
  });
});

afterAll(async () => {
  await mesh?.stop();
});

test("renews its certificate at the configured rotationFraction", async () => {
  // 0.15 of a one-minute certificate (jitter ±0.05): renewed within about 7 s of issue; at the default
  // 0.5 it would take about half a minute.
  const first = await waitFor("the first certificate", held, 15_000, { intervalMs: 50 });
  expect(first.notAfter - first.notBefore).toBeLessThanOrEqual(66_000);
  await waitFor("the renewal", async () => (await held())?.serial !== first.serial, 12_000, { intervalMs: 50 });
  expect((Date.now() - first.notBefore) / (first.notAfter - first.notBefore)).toBeLessThan(0.3);
}, 30_000);
