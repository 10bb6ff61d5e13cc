/**
 * MeshConfig.rotationFraction reaches the ztunnel's certificates: in-process, a real control role issues
 * one-minute certificates (certificateTTL 1m), and the ztunnel (`--redirect none`) renews its workload's
 * certificate at the configured fraction of its lifetime, not at the default half; a new fraction pushed
 * later moves the renewal already scheduled.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import type { RoleHandle } from "../admin/mod.ts";
import { type ControlHandle, startControl } from "../control/mod.ts";
import { setSink } from "../core/mod.ts";
import { createBootstrapToken } from "../identity/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { startZtunnel } from "./mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";

function meshYaml(rotationFraction: number): string {
  return [
    `apiVersion: mesh.dev/v1alpha1\nkind: MeshConfig\nmetadata:\n  name: mesh\nspec:\n  certificateTTL: 1m\n  rotationFraction: ${rotationFraction}`,
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    istio.io/dataplane-mode: ambient`,
    `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: viewer\n  namespace: shop`,
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: viewer\n  namespace: shop\n  labels:\n    app: viewer\nspec:\n  nodeName: node-a\n  serviceAccountName: viewer\n  containers:\n  - name: c\nstatus:\n  podIP: 127.0.0.2`,
  ].join("\n---\n") + "\n";
}

interface Held {
  serial: string;
  notBefore: number;
  notAfter: number;
}

let dir = "";
let control: ControlHandle;
let ztunnel: RoleHandle;
const admin = new Hono();
let restore: ((line: string) => void) | undefined;

async function held(): Promise<Held | undefined> {
  const r = (await (await admin.request("/certs")).json()) as { certificates: { identity: string; serial?: string; notBefore?: string; notAfter?: string }[] };
  const c = r.certificates.find((x) => x.identity === VIEWER);
  return c?.serial ? { serial: c.serial, notBefore: Date.parse(c.notBefore!), notAfter: Date.parse(c.notAfter!) } : undefined;
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await Bun.sleep(50);
  }
}

/** Where in a certificate's lifetime `at` falls (0 at notBefore, 1 at notAfter). */
const fractionOf = (c: Held, at: number) => (at - c.notBefore) / (c.notAfter - c.notBefore);

beforeAll(async () => {
  restore = setSink(() => {});
  dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-rotation-"));
  writeFileSync(join(dir, "mesh.yaml"), meshYaml(0.15));
  control = await startControl(
    { config: join(dir, "mesh.yaml"), kubernetes: false, dataDir: join(dir, "control"), listen: "127.0.0.1:0" },
    { metrics: new Registry(), admin: new Hono() },
  );
  writeFileSync(join(dir, "node.token"), await createBootstrapToken(join(dir, "control"), { node: "node-a", ttlSeconds: 600 }));
  ztunnel = await startZtunnel({
    node: "node-a",
    controlPlane: `127.0.0.1:${control.port}`,
    caCert: join(dir, "control", "root-cert.pem"),
    tokenFile: join(dir, "node.token"),
    redirect: "none",
    hboneAddr: "127.0.0.1:0",
    outboundAddr: "127.0.0.1:0",
    inboundPlaintextAddr: "127.0.0.1:0",
    drainMs: 200,
    runDir: join(dir, "run"),
  }, { metrics: new Registry(), admin });
});

afterAll(async () => {
  await ztunnel?.stop({ drainMs: 100 });
  await control?.stop({ drainMs: 0 });
  if (restore) setSink(restore);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("renews at the configured rotationFraction, and a pushed change moves the scheduled renewal", async () => {
  // 0.15 of a one-minute certificate (jitter ±0.05): renewed within about 7 s of issue; at the default
  // 0.5 it would take about half a minute.
  const first = await until("the first certificate", held, 15_000);
  const second = await until("the renewal", async () => {
    const c = await held();
    return c && c.serial !== first.serial ? c : undefined;
  }, 12_000);
  const renewedAt = Date.now();
  expect(fractionOf(first, renewedAt)).toBeLessThan(0.3);
  expect(second.notAfter - second.notBefore).toBeLessThanOrEqual(66_000);

  // Now 0.85: whatever certificate is held when the ztunnel has the new version must not renew at 0.15.
  const version = (await (await admin.request("/config_dump")).json() as { version: number }).version;
  writeFileSync(join(dir, "mesh.yaml"), meshYaml(0.85));
  await control.refresh();
  await until("the new configuration at the ztunnel", async () => (await (await admin.request("/config_dump")).json() as { version: number }).version > version, 10_000);
  const current = (await held())!;
  const past = current.notBefore + 0.25 * (current.notAfter - current.notBefore);
  await Bun.sleep(Math.max(500, past - Date.now()));
  expect((await held())!.serial).toBe(current.serial);
}, 45_000);
