import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, importPKCS8, SignJWT } from "jose";
import { MeshError } from "../core/mod.ts";
import { emptyModel } from "../model/mod.ts";
import { mayIssue } from "./authorize.ts";
import { createBootstrapToken, TOKEN_KEY_FILE, verifyBootstrapToken } from "./token.ts";
import { waypoint } from "../../test/support/mod.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "mesh-token-test-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const dir = tmp();
const T0 = Date.parse("2030-01-01T00:00:00Z");

async function refusal(p: Promise<unknown>): Promise<MeshError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MeshError);
    expect((e as MeshError).code).toBe("MESH_TOKEN_INVALID");
    return e as MeshError;
  }
  throw new Error("expected the token to be refused");
}

/** Signs arbitrary claims with the control plane's own key: what a forger who stole nothing cannot do. */
async function signWithRealKey(claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: number }) {
  const key = await importPKCS8(readFileSync(join(dir, TOKEN_KEY_FILE), "utf8"), "ES256");
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256" })
    .setIssuer(opts.iss ?? "mesh-control")
    .setAudience(opts.aud ?? "mesh-bootstrap")
    .setIssuedAt(T0 / 1000)
    .setExpirationTime(opts.exp ?? T0 / 1000 + 3600)
    .sign(key);
}

describe("bootstrap tokens", () => {
  test("node, gateway and admin tokens verify to their caller; the key file is 0600", async () => {
    const n = await createBootstrapToken(dir, { node: "worker-a", ttlSeconds: 3600, now: T0 });
    const g = await createBootstrapToken(dir, { gateway: "shop/inventory-waypoint", ttlSeconds: 3600, now: T0 });
    const a = await createBootstrapToken(dir, { admin: true, ttlSeconds: 3600, now: T0 });
    expect(await verifyBootstrapToken(dir, n, T0 + 1000)).toEqual({ kind: "node", node: "worker-a" });
    expect(await verifyBootstrapToken({ dataDir: dir }, g, T0)).toEqual({ kind: "gateway", namespace: "shop", name: "inventory-waypoint" });
    expect(await verifyBootstrapToken(dir, a + "\n", T0)).toEqual({ kind: "admin" });
    expect(statSync(join(dir, TOKEN_KEY_FILE)).mode & 0o777).toBe(0o600);
    const claims = decodeJwt(n);
    expect(claims).toMatchObject({ iss: "mesh-control", aud: "mesh-bootstrap", sub: "node/worker-a", node: "worker-a", iat: T0 / 1000, exp: T0 / 1000 + 3600 });
  });

  test("expired tokens are refused with the expiry time", async () => {
    const t = await createBootstrapToken(dir, { node: "worker-a", ttlSeconds: 60, now: T0 });
    expect(await verifyBootstrapToken(dir, t, T0 + 59_000)).toEqual({ kind: "node", node: "worker-a" });
    const e = await refusal(verifyBootstrapToken(dir, t, T0 + 61_000));
    expect(e.message).toContain("expired at 2030-01-01T00:01:00.000Z");
    expect(e.message).toContain("mesh token create");
  });

  test("a tampered payload or signature is a bad signature", async () => {
    const t = await createBootstrapToken(dir, { node: "worker-a", ttlSeconds: 3600, now: T0 });
    const [h, p, s] = t.split(".");
    const forged = JSON.parse(Buffer.from(p!, "base64url").toString());
    forged.node = "worker-b";
    forged.sub = "node/worker-b";
    const tampered = [h, Buffer.from(JSON.stringify(forged)).toString("base64url"), s].join(".");
    expect((await refusal(verifyBootstrapToken(dir, tampered, T0))).message).toContain("bad signature");
    const sig = Buffer.from(s!, "base64url");
    sig[5]! ^= 1;
    expect((await refusal(verifyBootstrapToken(dir, [h, p, sig.toString("base64url")].join("."), T0))).message).toContain("bad signature");
  });

  test("a token of another control plane (another key) is a bad signature", async () => {
    const t = await createBootstrapToken(tmp(), { node: "worker-a", ttlSeconds: 3600, now: T0 });
    expect((await refusal(verifyBootstrapToken(dir, t, T0))).message).toContain("bad signature");
  });

  test("wrong audience, wrong issuer, unsigned and malformed tokens are refused", async () => {
    const claims = { kind: "node", node: "worker-a", sub: "node/worker-a" };
    expect((await refusal(verifyBootstrapToken(dir, await signWithRealKey(claims, { aud: "something-else" }), T0))).message).toContain("wrong audience");
    expect((await refusal(verifyBootstrapToken(dir, await signWithRealKey(claims, { iss: "someone" }), T0))).message).toContain("wrong issuer");
    const none = [Buffer.from('{"alg":"none"}').toString("base64url"), Buffer.from(JSON.stringify({ ...claims, iss: "mesh-control", aud: "mesh-bootstrap", exp: T0 / 1000 + 60 })).toString("base64url"), ""].join(".");
    await refusal(verifyBootstrapToken(dir, none, T0));
    expect((await refusal(verifyBootstrapToken(dir, "not.a.jwt", T0))).message).toContain("malformed");
    expect((await refusal(verifyBootstrapToken(dir, "", T0))).message).toContain("malformed");
  });

  test("claims must name exactly one caller consistently", async () => {
    const mismatch = await signWithRealKey({ kind: "node", node: "worker-a", sub: "admin" }, {});
    expect((await refusal(verifyBootstrapToken(dir, mismatch, T0))).message).toContain("do not name one node");
    const unknown = await signWithRealKey({ kind: "root", sub: "root" }, {});
    expect((await refusal(verifyBootstrapToken(dir, unknown, T0))).message).toContain('unknown kind "root"');
    const badGateway = await signWithRealKey({ kind: "gateway", gateway: "no-slash", sub: "gateway/no-slash" }, {});
    await refusal(verifyBootstrapToken(dir, badGateway, T0));
  });

  test("a token of one kind does not act as another", async () => {
    const t = await createBootstrapToken(dir, { node: "inventory-waypoint", ttlSeconds: 3600, now: T0 });
    const caller = await verifyBootstrapToken(dir, t, T0);
    expect(caller.kind).toBe("node");
    const model = {
      ...emptyModel(),
      waypoints: [waypoint("inventory-waypoint", "shop", [])],
    };
    // A node named like the waypoint still cannot get the waypoint's identity.
    expect(mayIssue(caller, "spiffe://cluster.local/ns/shop/sa/inventory-waypoint", model).ok).toBe(false);
    const admin = await verifyBootstrapToken(dir, await createBootstrapToken(dir, { admin: true, ttlSeconds: 60, now: T0 }), T0);
    expect(mayIssue(admin, "spiffe://cluster.local/ns/shop/sa/inventory-waypoint", model).ok).toBe(false);
  });

  test("requests must name exactly one valid caller and a positive lifetime", async () => {
    await expect(createBootstrapToken(dir, { ttlSeconds: 60 })).rejects.toThrow("exactly one");
    await expect(createBootstrapToken(dir, { node: "a", admin: true, ttlSeconds: 60 })).rejects.toThrow("exactly one");
    await expect(createBootstrapToken(dir, { node: "a/b", ttlSeconds: 60 })).rejects.toThrow("Invalid node name");
    await expect(createBootstrapToken(dir, { gateway: "shop", ttlSeconds: 60 })).rejects.toThrow("NAMESPACE/NAME");
    await expect(createBootstrapToken(dir, { node: "a", ttlSeconds: 0 })).rejects.toThrow("positive");
  });
});
