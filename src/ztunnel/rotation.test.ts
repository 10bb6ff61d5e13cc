/**
 * MeshConfig.rotationFraction reaches the ztunnel's certificates: in-process, a real control role issues
 * one-minute certificates (certificateTTL 1m), and the ztunnel (`--redirect none`) renews its workload's
 * certificate at the configured fraction of its lifetime, not at the default half; a new fraction pushed
 * later moves the renewal already scheduled.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  type InProcessMesh,
  meshConfigYaml,
  namespaceYaml,
  podYaml,
  serviceAccountYaml,
  startInProcessMesh,
  waitFor,
  yamlFile,
} from "../../test/support/mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";

/** One-minute certificates renewed at `rotationFraction`; one pod, viewer, on node-a. */
function meshYaml(rotationFraction: number): string {
  return yamlFile(
    meshConfigYaml({ certificateTTL: "1m", rotationFraction }),
    namespaceYaml("shop"),
    serviceAccountYaml("viewer"),
    podYaml({ name: "viewer", ip: "127.0.0.2" }),
  );
}

interface Held {
  serial: string;
  notBefore: number;
  notAfter: number;
}

let mesh: InProcessMesh;

async function held(): Promise<Held | undefined> {
  const r = (await (await mesh.admin.request("/certs")).json()) as { certificates: { identity: string; serial?: string; notBefore?: string; notAfter?: string }[] };
  const c = r.certificates.find((x) => x.identity === VIEWER);
  return c?.serial ? { serial: c.serial, notBefore: Date.parse(c.notBefore!), notAfter: Date.parse(c.notAfter!) } : undefined;
}

/** Where in a certificate's lifetime `at` falls (0 at notBefore, 1 at notAfter). */
const fractionOf = (c: Held, at: number) => (at - c.notBefore) / (c.notAfter - c.notBefore);

beforeAll(async () => {
  mesh = await startInProcessMesh({ prefix: "mesh-ztunnel-rotation-", yaml: meshYaml(0.15), proxy: { ztunnel: "node-a" } });
});

afterAll(async () => {
  await mesh?.stop();
});

test("renews at the configured rotationFraction, and a pushed change moves the scheduled renewal", async () => {
  // 0.15 of a one-minute certificate (jitter ±0.05): renewed within about 7 s of issue; at the default
  // 0.5 it would take about half a minute.
  const first = await waitFor("the first certificate", held, 15_000, { intervalMs: 50 });
  const second = await waitFor("the renewal", async () => {
    const c = await held();
    return c && c.serial !== first.serial ? c : undefined;
  }, 12_000, { intervalMs: 50 });
  const renewedAt = Date.now();
  expect(fractionOf(first, renewedAt)).toBeLessThan(0.3);
  expect(second.notAfter - second.notBefore).toBeLessThanOrEqual(66_000);

  // Now 0.85: whatever certificate is held when the ztunnel has the new version must not renew at 0.15.
  const version = (await (await mesh.admin.request("/config_dump")).json() as { version: number }).version;
  await mesh.reconfigure(meshYaml(0.85));
  await waitFor("the new configuration at the ztunnel", async () => (await (await mesh.admin.request("/config_dump")).json() as { version: number }).version > version, 10_000, { intervalMs: 50 });
  const current = (await held())!;
  const past = current.notBefore + 0.25 * (current.notAfter - current.notBefore);
  await Bun.sleep(Math.max(500, past - Date.now()));
  expect((await held())!.serial).toBe(current.serial);
}, 45_000);
