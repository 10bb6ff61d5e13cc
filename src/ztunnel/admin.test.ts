import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { CertificateAuthority, WorkloadCertificates } from "../identity/mod.ts";
import { registerAdminRoutes } from "./admin.ts";

const ID = "spiffe://cluster.local/ns/shop/sa/product-api";
const PENDING = "spiffe://cluster.local/ns/shop/sa/not-yet";
let dir = "";
let certs: WorkloadCertificates;
const app = new Hono();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-admin-"));
  const ca = await CertificateAuthority.open(dir);
  certs = new WorkloadCertificates({ sign: (csr, identity) => ca.signCsr(csr, { identity }), trustBundlePem: ca.trustBundlePem });
  await certs.get(ID);
  registerAdminRoutes(app, {
    identities: () => [ID, PENDING],
    certificate: (id) => certs.current(id),
    configDump: () => ({ node: "node-b", version: 7 }),
  });
});

afterAll(() => {
  certs.close();
  rmSync(dir, { recursive: true, force: true });
});

test("/certs lists each local identity with its certificate chain, and the ones still pending", async () => {
  const res = await app.request("/certs");
  expect(res.status).toBe(200);
  const body = (await res.json()) as { certificates: Record<string, unknown>[] };
  const held = certs.current(ID)!;
  expect(body.certificates).toEqual([
    {
      identity: PENDING,
      state: "pending",
    },
    expect.objectContaining({
      identity: ID,
      state: "valid",
      serial: held.serial,
      notAfter: held.notAfter.toISOString(),
    }),
  ]);
  const chain = (body.certificates[1] as { chain: { subjectAltName: string; pem: string }[] }).chain;
  expect(chain.length).toBeGreaterThanOrEqual(1);
  expect(chain[0]!.subjectAltName).toContain(`URI:${ID}`);
  expect(chain[0]!.pem).toStartWith("-----BEGIN CERTIFICATE-----");
  // Never a private key.
  expect(JSON.stringify(body)).not.toContain("PRIVATE KEY");
});

test("/config_dump answers what the ztunnel reports", async () => {
  const res = await app.request("/config_dump");
  expect(await res.json()).toEqual({ node: "node-b", version: 7 });
});
