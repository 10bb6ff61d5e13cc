import { describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { JWTPayload } from "jose";
import { MeshError } from "../core/mod.ts";
import type { JwtRule } from "../model/mod.ts";
import { readTestdata, TEST_ISSUER_JWKS, testKeys, TOKENS } from "./_test_fixture.ts";
import { authenticate, inlineKeySet, JwtError } from "./jwt.ts";
import type { AuthnRequest, AuthnResult } from "./jwt.ts";

const SAMPLES_JWKS = readTestdata("samples-jwks.json");
const DEMO = readTestdata("demo.jwt").trim();
const ISSUER1: JwtRule = { issuer: "test-issuer-1@istio.io", jwks: TEST_ISSUER_JWKS };
const ISSUER2: JwtRule = { issuer: "test-issuer-2@istio.io", jwks: TEST_ISSUER_JWKS };

const bearer = (t: string): AuthnRequest => ({ headers: { Authorization: `Bearer ${t}` } });

// A key of our own, to make tokens with the claims a row needs.
const own = await generateKeyPair("ES256");
const ownJwk = { ...(await exportJWK(own.publicKey)), kid: "own", alg: "ES256" };
const OWN: JwtRule = { issuer: "https://issuer.test", jwks: JSON.stringify({ keys: [ownJwk] }) };
const NOW = new Date("2030-01-01T00:00:00Z");
const nowS = Math.floor(NOW.getTime() / 1000);

function sign(claims: JWTPayload, kid = "own"): Promise<string> {
  return new SignJWT({ iss: OWN.issuer, sub: "alice", ...claims }).setProtectedHeader({ alg: "ES256", kid }).sign(
    own.privateKey,
  );
}

function errorOf(r: AuthnResult): string {
  return r.status === "invalid" ? `${r.httpStatus} ${r.error}` : r.status;
}

describe("tokens: found where the rules say, absent is not an error", () => {
  test("Istio's demo token with the inline sample JWKS", async () => {
    const r = await authenticate(
      [{ issuer: "testing@secure.istio.io", jwks: SAMPLES_JWKS }],
      bearer(DEMO),
      inlineKeySet,
    );
    expect(r.status).toBe("ok");
    if (r.status !== "ok") return;
    expect(r.principal).toBe("testing@secure.istio.io/testing@secure.istio.io");
    expect(r.claims.foo).toBe("bar");
    expect(r.auth.principal).toBe(r.principal);
    expect(r.stripHeaders).toEqual(["authorization"]);
  });
  test("no token: status none", async () => {
    expect((await authenticate([ISSUER1], { headers: {} }, testKeys)).status).toBe("none");
  });
  test("no rules: tokens are not looked at", async () => {
    expect(await authenticate([], bearer("garbage"), testKeys)).toEqual({
      status: "none",
      reason: "no RequestAuthentication applies",
    });
  });
  test("default locations: Authorization Bearer and ?access_token", async () => {
    const q = await authenticate([ISSUER1], {
      headers: {},
      query: new URLSearchParams({ access_token: TOKENS.TokenIssuer1 }),
    }, testKeys);
    expect(q.status).toBe("ok");
    expect(
      (await authenticate([ISSUER1], { headers: { authorization: `bearer ${TOKENS.TokenIssuer1}` } }, testKeys)).status,
    ).toBe("ok");
    expect((await authenticate([ISSUER1], { headers: { authorization: `Basic abc` } }, testKeys)).status).toBe("none");
  });
  test("fromHeaders with a prefix, fromParams, fromCookies replace the defaults", async () => {
    const rule: JwtRule = {
      ...ISSUER1,
      fromHeaders: [{ name: "X-Jwt", prefix: "Token " }],
      fromParams: ["t"],
      fromCookies: ["session"],
    };
    expect((await authenticate([rule], { headers: { "x-jwt": `Token ${TOKENS.TokenIssuer1}` } }, testKeys)).status)
      .toBe("ok");
    expect((await authenticate([rule], { headers: { "x-jwt": TOKENS.TokenIssuer1 } }, testKeys)).status).toBe("none");
    expect(
      (await authenticate([rule], { headers: {}, query: new URLSearchParams({ t: TOKENS.TokenIssuer1 }) }, testKeys))
        .status,
    ).toBe("ok");
    expect(
      (await authenticate([rule], { headers: { cookie: `a=b; session=${TOKENS.TokenIssuer1}` } }, testKeys)).status,
    ).toBe("ok");
    expect((await authenticate([rule], bearer(TOKENS.TokenIssuer1), testKeys)).status).toBe("none");
  });
  test("CORS preflight skips authentication", async () => {
    const r = await authenticate([ISSUER1], {
      method: "OPTIONS",
      headers: {
        authorization: `Bearer ${TOKENS.TokenExpired}`,
        origin: "https://a.test",
        "access-control-request-method": "POST",
      },
    }, testKeys);
    expect(r.status).toBe("none");
  });
});

describe("invalid tokens: Envoy's messages and status", () => {
  const rows: [string, () => Promise<AuthnResult>, string][] = [
    ["expired", () => authenticate([ISSUER1], bearer(TOKENS.TokenExpired), testKeys), `401 ${JwtError.Expired}`],
    [
      "issuer not configured",
      () => authenticate([ISSUER1, ISSUER2], bearer(TOKENS.TokenIssuer3), testKeys),
      `401 ${JwtError.UnknownIssuer}`,
    ],
    ["not a JWT", () => authenticate([ISSUER1], bearer("invalidToken"), testKeys), `401 ${JwtError.BadFormat}`],
    [
      "bad signature",
      () => authenticate([ISSUER1], bearer(TOKENS.TokenIssuer1.slice(0, -6) + "AAAAAA"), testKeys),
      `401 ${JwtError.VerificationFails}`,
    ],
    [
      "signed by a key the JWKS lacks",
      async () => authenticate([{ ...OWN, jwks: SAMPLES_JWKS }], bearer(await sign({})), inlineKeySet, NOW),
      `401 ${JwtError.NoMatchingKey}`,
    ],
    [
      "key set unavailable",
      () =>
        authenticate(
          [{ issuer: ISSUER1.issuer, jwksUri: "https://x/not-exist.json" }],
          bearer(TOKENS.TokenIssuer1),
          testKeys,
        ),
      `401 ${JwtError.JwksFetchFailed}`,
    ],
    [
      "not yet valid",
      async () => authenticate([OWN], bearer(await sign({ nbf: nowS + 3600 })), inlineKeySet, NOW),
      `401 ${JwtError.NotYetValid}`,
    ],
    [
      "audience not allowed answers 403",
      () => authenticate([{ ...ISSUER1, audiences: ["foo"] }], bearer(TOKENS.TokenIssuer1), testKeys),
      `403 ${JwtError.AudienceNotAllowed}`,
    ],
    [
      "one bad token among several fails the request",
      () =>
        authenticate([{ ...ISSUER1, fromParams: ["a", "b"] }], {
          headers: {},
          query: new URLSearchParams({ a: TOKENS.TokenIssuer1, b: TOKENS.TokenExpired }),
        }, testKeys),
      `401 ${JwtError.Expired}`,
    ],
  ];
  for (const [name, run, want] of rows) test(name, async () => expect(errorOf(await run())).toBe(want));
});

describe("validity", () => {
  test("the clock is injectable: the expired token was valid in 2019", async () => {
    const r = await authenticate([ISSUER1], bearer(TOKENS.TokenExpired), testKeys, new Date(1562182855 * 1000));
    expect(r.status).toBe("ok");
  });
  test("60 s clock skew, as Envoy", async () => {
    expect((await authenticate([OWN], bearer(await sign({ exp: nowS - 30 })), inlineKeySet, NOW)).status).toBe("ok");
    expect(errorOf(await authenticate([OWN], bearer(await sign({ exp: nowS - 120 })), inlineKeySet, NOW))).toBe(
      `401 ${JwtError.Expired}`,
    );
  });
  test("audiences: any match, compared without scheme and trailing slash", async () => {
    const rule = { ...OWN, audiences: ["api.test", "other"] };
    expect(
      (await authenticate([rule], bearer(await sign({ aud: ["x", "https://api.test/"] })), inlineKeySet, NOW)).status,
    ).toBe("ok");
    expect((await authenticate([rule], bearer(await sign({ aud: "x" })), inlineKeySet, NOW)).status).toBe("invalid");
  });
  test("two rules with one issuer: one success is enough (policies are combined)", async () => {
    const r = await authenticate([{ ...ISSUER2, audiences: ["bar"] }, ISSUER2], bearer(TOKENS.TokenIssuer2), testKeys);
    expect(r.status).toBe("ok");
  });
});

describe("what the waypoint forwards", () => {
  test("the token header is stripped unless forwardOriginalToken", async () => {
    const r = await authenticate([{ ...ISSUER1, forwardOriginalToken: true }], bearer(TOKENS.TokenIssuer1), testKeys);
    expect(r.status === "ok" && r.stripHeaders).toEqual([]);
  });
  test("outputPayloadToHeader and outputClaimToHeaders", async () => {
    const rule: JwtRule = {
      ...ISSUER1,
      outputPayloadToHeader: "X-Payload",
      outputClaimToHeaders: [{ header: "x-iss", claim: "iss" }, { header: "x-iat", claim: "iat" }, {
        header: "x-k",
        claim: "nested.nested-2.key2",
      }, { header: "x-none", claim: "nested" }],
    };
    const r = await authenticate([rule], bearer(TOKENS.TokenIssuer1WithNestedClaims2), testKeys);
    expect(r.status === "ok" && r.addHeaders).toEqual({
      "x-payload": TOKENS.TokenIssuer1WithNestedClaims2.split(".")[1],
      "x-iss": "test-issuer-1@istio.io",
      "x-iat": "1604008018",
      "x-k": "valueC",
    });
  });
  test("request.auth attributes for authorization", async () => {
    const r = await authenticate(
      [{ ...ISSUER1, spaceDelimitedClaims: ["teams"] }],
      bearer(TOKENS.TokenIssuer1WithAzp),
      testKeys,
    );
    expect(
      r.status === "ok" &&
        { presenter: r.auth.presenter, audiences: r.auth.audiences, split: r.auth.spaceDelimitedClaims },
    ).toEqual({ presenter: "bar", audiences: [], split: ["teams"] });
    const l = await authenticate([ISSUER1], bearer(TOKENS.TokenIssuer1WithAudList), testKeys);
    expect(l.status === "ok" && l.audiences).toEqual(["foo", "buzz"]);
  });
});

test("inlineKeySet needs an inline jwks that is JSON", () => {
  expect(() => inlineKeySet({ issuer: "x", jwksUri: "https://x" })).toThrow(MeshError);
  expect(() => inlineKeySet({ issuer: "x", jwks: "{" })).toThrow("inline jwks is not JSON");
});
