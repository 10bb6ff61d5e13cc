/** The verified-token cache skips only the signature check: time claims and audiences are checked every time. */
import { describe, expect, test } from "bun:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from "jose";
import type { JwtRule } from "../model/mod.ts";
import { authenticate } from "../policy/mod.ts";
import { TokenCache } from "./token_cache.ts";

const { publicKey, privateKey } = await generateKeyPair("ES256");
const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
const T0 = new Date("2030-01-01T00:00:00Z");
const sec = (d: Date) => Math.floor(d.getTime() / 1000);

async function token(claims: Record<string, unknown>, expIn = 300): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer("issuer@example")
    .setSubject("alice")
    .setIssuedAt(sec(T0))
    .setExpirationTime(sec(T0) + expIn)
    .sign(privateKey);
}

const req = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

/** The key resolver, counting signature checks (each verification asks for the rule's keys). */
function countingKeys() {
  const k = { checks: 0, resolve: () => (k.checks++, jwks) };
  return k;
}

describe("TokenCache with src/policy authenticate", () => {
  test("the second request with the same token skips the signature check", async () => {
    let clock = T0.getTime();
    const cache = new TokenCache({ clock: () => clock });
    const rule: JwtRule = { issuer: "issuer@example" };
    const t = await token({});
    const keys = countingKeys();
    expect((await authenticate([rule], req(t), keys.resolve, T0, cache)).status).toBe("ok");
    expect(keys.checks).toBe(1);
    const again = await authenticate([rule], req(t), keys.resolve, T0, cache);
    expect(again.status).toBe("ok");
    expect(again.status === "ok" && again.principal).toBe("issuer@example/alice");
    expect(keys.checks).toBe(1);
    expect(cache.hits).toBe(1);
    // Past its time to live, the entry is gone and the signature is checked again.
    clock += 61_000;
    await authenticate([rule], req(t), keys.resolve, T0, cache);
    expect(keys.checks).toBe(2);
  });

  test("a cached token that has since expired is refused (401 Jwt is expired)", async () => {
    const cache = new TokenCache({ clock: () => T0.getTime() });
    const rule: JwtRule = { issuer: "issuer@example" };
    const t = await token({}, 10);
    expect((await authenticate([rule], req(t), () => jwks, T0, cache)).status).toBe("ok");
    const later = new Date(T0.getTime() + 10_000 + 61_000); // past exp and the 60 s clock skew
    const r = await authenticate([rule], req(t), () => jwks, later, cache);
    expect(cache.hits).toBeGreaterThan(0);
    expect(r).toMatchObject({ status: "invalid", error: "Jwt is expired", httpStatus: 401 });
  });

  test("audiences are checked on a cache hit; a new rule object starts empty", async () => {
    const cache = new TokenCache({ clock: () => T0.getTime() });
    const open: JwtRule = { issuer: "issuer@example" };
    const t = await token({ aud: "a" });
    expect((await authenticate([open], req(t), () => jwks, T0, cache)).status).toBe("ok");
    const strict: JwtRule = { issuer: "issuer@example", audiences: ["b"] };
    const keys = countingKeys();
    const r = await authenticate([strict], req(t), keys.resolve, T0, cache);
    expect(r).toMatchObject({ status: "invalid", httpStatus: 403 });
    expect(keys.checks).toBe(1); // a different rule object: verified afresh
    // Same rule object, cached, audience still checked on the hit.
    const again = await authenticate([strict], req(t), keys.resolve, T0, cache);
    expect(again).toMatchObject({ status: "invalid", httpStatus: 403, error: "Audiences in Jwt are not allowed" });
  });

  test("bounded per rule: the oldest token leaves first", async () => {
    const cache = new TokenCache({ clock: () => T0.getTime(), maxPerRule: 2 });
    const rule: JwtRule = { issuer: "issuer@example" };
    const [a, b, c] = await Promise.all([token({ n: 1 }), token({ n: 2 }), token({ n: 3 })]);
    for (const t of [a!, b!, c!]) cache.set(rule, t, {});
    expect(cache.get(rule, a!)).toBeUndefined();
    expect(cache.get(rule, c!)).toBeDefined();
  });
});
