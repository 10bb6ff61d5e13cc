import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startAdminServers } from "./servers.ts";
import { Registry } from "../telemetry/mod.ts";

const reg = new Registry();
reg.counter("mesh_test_total", "Test").inc({}, 4);
const s = startAdminServers({ metrics: "127.0.0.1:0", ready: "127.0.0.1:0", admin: "127.0.0.1:0" }, reg);
afterAll(() => s.close());

test("metrics, readiness and log levels over real HTTP", async () => {
  const m = await (await fetch(`http://127.0.0.1:${s.ports.metrics}/metrics`)).text();
  expect(m).toContain("mesh_test_total 4");
  let r = await fetch(`http://127.0.0.1:${s.ports.ready}/healthz/ready`);
  expect(r.status).toBe(503);
  let ready = false;
  s.addRole({ name: "ztunnel", readiness: () => ({ ready, reasons: ready ? [] : ["no certificates yet"] }), stop: async () => {} });
  r = await fetch(`http://127.0.0.1:${s.ports.ready}/healthz/ready`);
  expect(await r.text()).toContain("ztunnel: no certificates yet");
  ready = true;
  r = await fetch(`http://127.0.0.1:${s.ports.ready}/healthz/ready`);
  expect(r.status).toBe(200);
  // The admin API asks for its local secret (src/admin/auth.ts).
  const headers = { authorization: `Bearer ${readFileSync(s.adminSecretPath!, "utf8").trim()}` };
  const set = await fetch(`http://127.0.0.1:${s.ports.admin}/logging?scope=ztunnel&level=debug`, { method: "POST", headers });
  expect((await set.json()).ztunnel).toBe("debug");
  const bad = await fetch(`http://127.0.0.1:${s.ports.admin}/logging?level=loud`, { method: "POST", headers });
  expect(bad.status).toBe(400);
});
