/**
 * The waypoint's HBONE server refuses a client whose identity is outside the mesh's trust domain
 * (docs/hbone.md §5): in-process, a real control role and waypoint; the foreign client's certificate
 * chains to the very same root (a CA of another trust domain sharing it), so only the trust-domain check
 * can refuse it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import type { RoleHandle } from "../admin/mod.ts";
import { type ControlHandle, startControl } from "../control/mod.ts";
import { setSink } from "../core/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { CertificateAuthority, createBootstrapToken, createCsr } from "../identity/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { baseYaml, IPS, WAYPOINT } from "./_test_env.ts";
import { startWaypoint } from "./mod.ts";

let dir = "";
let control: ControlHandle;
let waypoint: RoleHandle;
const admin = new Hono();
let restore: ((line: string) => void) | undefined;

/** A CA of `trustDomain` that signs with the control role's own root. */
async function caSharingTheRoot(trustDomain: string): Promise<CertificateAuthority> {
  const d = join(dir, `ca-${trustDomain}`);
  mkdirSync(join(d, "ca"), { recursive: true });
  for (const f of ["root-cert.pem", "root-key.pem"]) copyFileSync(join(dir, "control", "ca", f), join(d, "ca", f));
  return await CertificateAuthority.open(d, { trustDomain });
}

async function client(ca: CertificateAuthority, identity: string) {
  const { csrPem, keyPem } = await createCsr(identity);
  const s = await ca.signCsr(csrPem, { identity });
  return { cert: s.chainPem, key: keyPem, ca: ca.trustBundlePem };
}

beforeAll(async () => {
  restore = setSink(() => {});
  dir = mkdtempSync(join(tmpdir(), "mesh-waypoint-td-"));
  writeFileSync(join(dir, "mesh.yaml"), baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }));
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
    hboneAddr: `${IPS.waypoint}:0`,
    drainMs: 200,
  }, { metrics: new Registry(), admin });
});

afterAll(async () => {
  await waypoint?.stop({ drainMs: 100 });
  await control?.stop({ drainMs: 0 });
  if (restore) setSink(restore);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a client of another trust domain is refused at the handshake, one of the mesh's is served", async () => {
  const deadline = Date.now() + 15_000;
  let address: string | undefined;
  while (!address && Date.now() < deadline) {
    address = ((await (await admin.request("/config_dump")).json()) as { hbone?: { address: string } | null }).hbone?.address;
    if (!address) await Bun.sleep(50);
  }
  expect(address).toBeDefined();
  const attempt = async (tls: { cert: string; key: string; ca: string }) => {
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const s = await pool.connect({ address: address!, authority: `${IPS.api}:8080`, tls, expectedIdentities: [WAYPOINT] });
      s.end();
      return "answered";
    } catch (e) {
      // A status means the handshake succeeded and the waypoint answered the CONNECT.
      return (e as { status?: number }).status !== undefined ? "answered" : `refused: ${(e as Error).message}`;
    } finally {
      await pool.close(100);
    }
  };
  const ours = await client(await caSharingTheRoot("cluster.local"), "spiffe://cluster.local/ns/shop/sa/viewer");
  const foreign = await client(await caSharingTheRoot("other.example"), "spiffe://other.example/ns/shop/sa/viewer");
  expect(await attempt(ours)).toBe("answered");
  expect(await attempt(foreign)).toStartWith("refused");
}, 30_000);
