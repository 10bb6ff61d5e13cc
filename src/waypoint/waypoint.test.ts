/**
 * The waypoint in-process, end to end over real HBONE (mesh CA certificates, TLS 1.3, HTTP/2 CONNECT) on
 * loopback: the seed walkthrough's policy, then the request path's pieces one by one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startTestWaypoint, type TestWaypoint } from "./_test_env.ts";

const REF = "/work/shared/reference/jwt";
const DEMO = readFileSync(`${REF}/demo.jwt`, "utf8").trim();
const DEMO_JWKS = readFileSync("/work/main/config/mesh.yaml", "utf8").match(/jwks: '(.*)'/)![1]!;

let wp: TestWaypoint;
beforeAll(async () => {
  wp = await startTestWaypoint();
});
afterAll(async () => {
  await wp?.close();
});

describe("seed walkthrough at the waypoint", () => {
  beforeAll(() => {
    wp.configure(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt-on-api
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '${DEMO_JWKS}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-get
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/*"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/get"]`);
  });

  test("no token: 403 RBAC: access denied", async () => {
    const r = await wp.request({ path: "/get" });
    expect(r.status).toBe(403);
    expect(r.body).toBe("RBAC: access denied");
  });

  test("the demo token: 200, and the app does not see the token", async () => {
    const r = await wp.request({ path: "/get", headers: { authorization: `Bearer ${DEMO}` } });
    expect(r.status).toBe(200);
    const seen = r.json<{ app: string; headers: Record<string, string> }>();
    expect(seen.app).toMatch(/^api-/);
    expect(seen.headers.authorization).toBeUndefined();
  });

  test("POST with the token: 403", async () => {
    const r = await wp.request({ method: "POST", path: "/post", body: '{"product":1}', headers: { authorization: `Bearer ${DEMO}`, "content-type": "application/json" } });
    expect(r.status).toBe(403);
  });

  test("a tampered token: 401 with a Bearer challenge", async () => {
    const bad = DEMO.slice(0, -3) + (DEMO.endsWith("A") ? "BBB" : "AAA");
    const r = await wp.request({ path: "/get", headers: { authorization: `Bearer ${bad}` } });
    expect(r.status).toBe(401);
    expect(r.body).toBe("Jwt verification fails");
    expect(String(r.headers["www-authenticate"])).toContain('error="invalid_token"');
  });
});
