/**
 * The waypoint's HBONE server refuses a client whose identity is outside the mesh's trust domain
 * (docs/hbone.md §5): in-process, a real control role and waypoint; the foreign client's certificate
 * chains to the very same root (a CA of another trust domain sharing it), so only the trust-domain check
 * can refuse it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type InProcessMesh, startInProcessMesh, waitFor } from "../../test/support/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { CertificateAuthority, createCsr } from "../identity/mod.ts";
import { baseYaml, IPS, WAYPOINT } from "./_test_env.ts";

let mesh: InProcessMesh;

/** A CA of `trustDomain` that signs with the control role's own root. */
async function caSharingTheRoot(trustDomain: string): Promise<CertificateAuthority> {
  const d = join(mesh.dir, `ca-${trustDomain}`);
  mkdirSync(join(d, "ca"), { recursive: true });
  for (const f of ["root-cert.pem", "root-key.pem"]) copyFileSync(join(mesh.dir, "control", "ca", f), join(d, "ca", f));
  return await CertificateAuthority.open(d, { trustDomain });
}

async function client(ca: CertificateAuthority, identity: string) {
  const { csrPem, keyPem } = await createCsr(identity);
  const s = await ca.signCsr(csrPem, { identity });
  return { cert: s.chainPem, key: keyPem, ca: ca.trustBundlePem };
}

beforeAll(async () => {
  mesh = await startInProcessMesh({
    prefix: "mesh-waypoint-td-",
    yaml: baseYaml({ api: 8080, api2: 8080, mirror: 8081, h2: 9000 }),
    proxy: { waypoint: "shop/wp", hboneAddr: `${IPS.waypoint}:0` },
  });
});

afterAll(async () => {
  await mesh?.stop();
});

test("a client of another trust domain is refused at the handshake, one of the mesh's is served", async () => {
  const address = await waitFor("the waypoint's HBONE address", async () =>
    ((await (await mesh.admin.request("/config_dump")).json()) as { hbone?: { address: string } | null }).hbone?.address, 15_000);
  expect(address).toStartWith(`${IPS.waypoint}:`);
  const attempt = async (tls: { cert: string; key: string; ca: string }) => {
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const s = await pool.connect({ address, authority: `${IPS.api}:8080`, tls, expectedIdentities: [WAYPOINT] });
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
