/**
 * MeshConfig.rotationFraction reaches the waypoint's certificate: in-process, a real control role issues
 * one-minute certificates (certificateTTL 1m) and the waypoint renews its own at the configured fraction
 * of the lifetime, not at the default half.
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
import { baseYaml } from "./_test_env.ts";
import { startWaypoint } from "./mod.ts";

const MESH_CONFIG = `apiVersion: mesh.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  certificateTTL: 1m
  rotationFraction: 0.15`;

let dir = "";
let control: ControlHandle;
let waypoint: RoleHandle;
const admin = new Hono();
let restore: ((line: string) => void) | undefined;

interface Held {
  serial: string;
  notBefore: number;
  notAfter: number;
}

async function held(): Promise<Held | undefined> {
  const [c] = (await (await admin.request("/certs")).json()) as { serial: string; notBefore: string; notAfter: string }[];
  return c && { serial: c.serial, notBefore: Date.parse(c.notBefore), notAfter: Date.parse(c.notAfter) };
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

beforeAll(async () => {
  restore = setSink(() => {});
  dir = mkdtempSync(join(tmpdir(), "mesh-waypoint-rotation-"));
  writeFileSync(join(dir, "mesh.yaml"), baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }, MESH_CONFIG));
  control = await startControl(
    { config: join(dir, "mesh.yaml"), kubernetes: false, dataDir: join(dir, "control"), listen: "127.0.0.1:0" },
    { metrics: new Registry(), admin: new Hono() },
  );
  writeFileSync(join(dir, "wp.token"), await createBootstrapToken(join(dir, "control"), { gateway: "shop/wp", ttlSeconds: 600 }));
  waypoint = await startWaypoint({
    gateway: "shop/wp",
    controlPlane: `127.0.0.1:${control.port}`,
    caCert: join(dir, "control", "root-cert.pem"),
    tokenFile: join(dir, "wp.token"),
    hboneAddr: "127.0.0.20:0",
    drainMs: 200,
  }, { metrics: new Registry(), admin });
});

afterAll(async () => {
  await waypoint?.stop({ drainMs: 100 });
  await control?.stop({ drainMs: 0 });
  if (restore) setSink(restore);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("renews its certificate at the configured rotationFraction", async () => {
  // 0.15 of a one-minute certificate (jitter ±0.05): renewed within about 7 s of issue; at the default
  // 0.5 it would take about half a minute.
  const first = await until("the first certificate", held, 15_000);
  expect(first.notAfter - first.notBefore).toBeLessThanOrEqual(66_000);
  await until("the renewal", async () => (await held())?.serial !== first.serial, 12_000);
  expect((Date.now() - first.notBefore) / (first.notAfter - first.notBefore)).toBeLessThan(0.3);
}, 30_000);
