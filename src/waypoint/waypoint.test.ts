/**
 * The waypoint in-process, end to end over real HBONE (mesh CA certificates, TLS 1.3, HTTP/2 CONNECT) on
 * loopback: the seed walkthrough's policy, then the request path's pieces one by one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { ALLOW_NOBODY, DEMO_JWT, demoJwtOnApi, IPS, jwtOnApi, startTestWaypoint, type TestWaypoint, VIEWER } from "./_test_env.ts";
import { flowOfRequest, flowOfTcp } from "./flow.ts";
import type { FlowRecord } from "../xds/mod.ts";

const DATA = join(import.meta.dir, "testdata", "jwt");
const ISSUER_JWKS = JSON.parse(readFileSync(join(DATA, "test-issuer-jwks.json"), "utf8")) as { keys: object[] };
const TOKENS = JSON.parse(readFileSync(join(DATA, "tokens.json"), "utf8")) as Record<string, string>;

let wp: TestWaypoint;
beforeAll(async () => {
  wp = await startTestWaypoint();
});
afterAll(async () => {
  await wp?.close();
});

describe("seed walkthrough at the waypoint", () => {
  beforeAll(() => {
    wp.configure(`${demoJwtOnApi("jwt-on-api")}
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
    const r = await wp.request({ path: "/get", headers: { authorization: `Bearer ${DEMO_JWT}` } });
    expect(r.status).toBe(200);
    const seen = r.json<{ app: string; headers: Record<string, string> }>();
    expect(seen.app).toMatch(/^api-/);
    expect(seen.headers.authorization).toBeUndefined();
  });

  test("POST with the token: 403", async () => {
    const r = await wp.request({ method: "POST", path: "/post", body: '{"product":1}', headers: { authorization: `Bearer ${DEMO_JWT}`, "content-type": "application/json" } });
    expect(r.status).toBe(403);
  });

  test("a tampered token: 401 with a Bearer challenge", async () => {
    const bad = DEMO_JWT.slice(0, -3) + (DEMO_JWT.endsWith("A") ? "BBB" : "AAA");
    const r = await wp.request({ path: "/get", headers: { authorization: `Bearer ${bad}` } });
    expect(r.status).toBe(401);
    expect(r.body).toBe("Jwt verification fails");
    expect(String(r.headers["www-authenticate"])).toContain('error="invalid_token"');
  });
});

/** A JWKS server (the issuer's key endpoint), counting fetches; its key set can be replaced (rotation). */
function startJwksServer(): { url: string; fetches: () => number; setKeys(keys: object[]): void; fail(on: boolean): void; stop(): void } {
  let keys: object[] = ISSUER_JWKS.keys;
  let fetches = 0;
  let failing = false;
  const s = Bun.serve({
    hostname: "127.0.0.7",
    port: 0,
    fetch() {
      fetches++;
      if (failing) return new Response("down", { status: 500 });
      return Response.json({ keys });
    },
  });
  return {
    url: `http://127.0.0.7:${s.port}/jwks.json`,
    fetches: () => fetches,
    setKeys: (k) => (keys = k),
    fail: (on) => (failing = on),
    stop: () => s.stop(true),
  };
}

const DEFAULT_POLICY = `  rules:
  - from:
    - source:
        requestPrincipals: ["test-issuer-1@istio.io/sub-1", "test-issuer-2@istio.io/*"]`;

describe("RequestAuthentication with a remote JWKS (Istio's test issuers)", () => {
  let jwks: ReturnType<typeof startJwksServer>;
  const configure = (ruleExtra = "", policy = DEFAULT_POLICY, url = jwks.url) =>
    wp.configure(`${jwtOnApi("issuers", `  - issuer: test-issuer-1@istio.io
    jwksUri: ${url}
${ruleExtra}  - issuer: test-issuer-2@istio.io
    jwksUri: ${url}`)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: tokens
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
${policy}`);
  beforeAll(() => {
    jwks = startJwksServer();
  });
  afterAll(() => jwks.stop());
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  test("a valid token: 200; the key set is fetched once and cached", async () => {
    configure();
    const before = jwks.fetches();
    for (let i = 0; i < 5; i++) expect((await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1!) })).status).toBe(200);
    expect(jwks.fetches() - before).toBe(1);
  });

  test("expired: 401 Jwt is expired; unknown issuer: 401; no token: 403; garbage: 401", async () => {
    configure();
    const expired = await wp.request({ path: "/get", headers: bearer(TOKENS.TokenExpired!) });
    expect([expired.status, expired.body]).toEqual([401, "Jwt is expired"]);
    const issuer3 = await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer3!) });
    expect([issuer3.status, issuer3.body]).toEqual([401, "Jwt issuer is not configured"]);
    expect((await wp.request({ path: "/get" })).status).toBe(403);
    expect((await wp.request({ path: "/get", headers: bearer("not.a.jwt") })).status).toBe(401);
  });

  test("wrong audience: 403 Audiences in Jwt are not allowed", async () => {
    configure("    audiences: [bar]\n");
    const r = await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1WithAud!) });
    expect([r.status, r.body]).toEqual([403, "Audiences in Jwt are not allowed"]);
    configure("    audiences: [foo]\n");
    expect((await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1WithAud!) })).status).toBe(200);
  });

  test("claim-based rules: request.auth.claims[groups]", async () => {
    configure("", `  rules:
  - when:
    - key: request.auth.claims[groups]
      values: ["group-1"]`);
    expect((await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1!) })).status).toBe(200);
    expect((await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer2!) })).status).toBe(403);
  });

  test("a token with a key id the cached set lacks makes the waypoint fetch the set again (key rotation)", async () => {
    configure();
    await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1!) });
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "rotated-key", alg: "RS256", use: "sig" };
    const token = await new SignJWT({ groups: ["group-1"] })
      .setProtectedHeader({ alg: "RS256", kid: "rotated-key" })
      .setIssuer("test-issuer-1@istio.io")
      .setSubject("sub-1")
      .setExpirationTime("1h")
      .sign(privateKey);
    jwks.setKeys([...ISSUER_JWKS.keys, jwk]);
    const before = jwks.fetches();
    const r = await wp.request({ path: "/get", headers: bearer(token) });
    expect(r.status).toBe(200);
    expect(jwks.fetches() - before).toBe(1);
    jwks.setKeys(ISSUER_JWKS.keys);
  });

  test("the key set cannot be fetched: tokens are refused (401), never let through", async () => {
    jwks.fail(true);
    try {
      // A key set never fetched before (a cached one keeps serving through an issuer outage).
      configure("", DEFAULT_POLICY, `${jwks.url}?never-fetched`);
      const r = await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1!) });
      expect(r.status).toBe(401);
    } finally {
      jwks.fail(false);
    }
  });

  test("forwardOriginalToken keeps the token; outputClaimToHeaders copies a claim", async () => {
    configure(`    forwardOriginalToken: true
    outputClaimToHeaders:
    - header: x-jwt-sub
      claim: sub
`);
    const r = await wp.request({ path: "/get", headers: bearer(TOKENS.TokenIssuer1!) });
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen.authorization).toBe(`Bearer ${TOKENS.TokenIssuer1}`);
    expect(seen["x-jwt-sub"]).toBe("sub-1");
  });
});

describe("telemetry", () => {
  beforeAll(() => wp.configure());

  test("Istio's request metrics with reporter=waypoint", async () => {
    await wp.request({ path: "/status/418" });
    const text = wp.registry.render();
    const line = text.split("\n").find((l) => l.startsWith("istio_requests_total{") && l.includes('response_code="418"'))!;
    expect(line).toBeDefined();
    for (const label of ['reporter="waypoint"', `source_principal="${VIEWER}"`, 'source_workload="viewer"', 'destination_service="api.shop.svc.cluster.local"', 'request_protocol="http"', 'connection_security_policy="mutual_tls"']) {
      expect(line).toContain(label);
    }
    expect(line).toMatch(/destination_workload="api-[12]"/);
    for (const m of ["istio_request_duration_milliseconds_bucket", "istio_request_bytes_sum", "istio_response_bytes_count"]) {
      expect(text).toContain(m + "{reporter=\"waypoint\"");
    }
  });

  test("an access log line per request", async () => {
    const before = (await wp.accessLog()).length;
    await wp.request({ path: "/get?x=1", headers: { "x-request-id": "req-42" } });
    const lines = (await wp.accessLog());
    expect(lines.length).toBe(before + 1);
    const l = lines.pop()!;
    expect(l).toMatchObject({ method: "GET", path: "/get?x=1", status: 200, flags: "-", source: VIEWER, requestId: "req-42" });
    expect(typeof l.durationMs).toBe("number");
  });

  test("traceparent: the client's trace continues through a span of ours; one is started when absent", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = await wp.request({ path: "/get", headers: { traceparent: `00-${trace}-00f067aa0ba902b7-01` } });
    const sent = r.json<{ headers: Record<string, string> }>().headers.traceparent!;
    expect(sent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
    expect(sent).not.toContain("00f067aa0ba902b7");
    const fresh = (await wp.request({ path: "/get" })).json<{ headers: Record<string, string> }>().headers.traceparent!;
    expect(fresh).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const log = (await wp.accessLog()).pop()!;
    expect(log.trace_id).toBe(fresh.slice(3, 35));
    // No traceparent on the CONNECT either: the tunnel got a trace of ours, which the request continued.
    expect(log.tunnel_trace_id).toBe(log.trace_id);
  });
});

describe("one trace id across hops (the tunnel's traceparent)", () => {
  const T = "0af7651916cd43dd8448eb211c80319c";
  const R = "4bf92f3577b34da6a3ce929d0e0e4736";
  const tunnelTraceparent = `00-${T}-b7ad6b7169203331-00`;
  const headersSeen = (r: { json<X>(): X }) => r.json<{ headers: Record<string, string> }>().headers;
  beforeAll(() => wp.configure());

  test("a request without a trace continues the tunnel's; the tunnel to the endpoint carries it on its CONNECT", async () => {
    // A fresh upstream tunnel (an idle one would have been opened for an earlier client connection).
    wp.proxy.http1Pool.close();
    const before = wp.connects.length;
    const r = await wp.request({ path: "/get", tunnelTraceparent });
    expect(r.status).toBe(200);
    expect(headersSeen(r).traceparent).toMatch(new RegExp(`^00-${T}-[0-9a-f]{16}-01$`));
    const log = (await wp.accessLog()).pop()!;
    expect(log).toMatchObject({ status: 200, trace_id: T, tunnel_trace_id: T });
    const sent = wp.connects.slice(before);
    expect(sent.length).toBe(1);
    expect(sent[0]!.headers.traceparent).toMatch(new RegExp(`^00-${T}-[0-9a-f]{16}-00$`));
    expect(sent[0]!.headers.traceparent).not.toContain("b7ad6b7169203331");
  });

  test("a request's own trace wins for the request; the tunnel's is logged beside it and still goes to the endpoint", async () => {
    wp.proxy.http1Pool.close();
    const before = wp.connects.length;
    const r = await wp.request({ path: "/get", tunnelTraceparent, headers: { traceparent: `00-${R}-00f067aa0ba902b7-01` } });
    expect(headersSeen(r).traceparent).toMatch(new RegExp(`^00-${R}-[0-9a-f]{16}-01$`));
    expect((await wp.accessLog()).pop()).toMatchObject({ trace_id: R, tunnel_trace_id: T });
    expect(wp.connects.slice(before).map((c) => c.headers.traceparent!.slice(3, 35))).toEqual([T]);
  });

  test("denials carry the tunnel's trace id: a 403, a refused tunnel, a denied TCP connection", async () => {
    wp.configure(ALLOW_NOBODY);
    // The flow records the control role gets: the same denials, with their policy and trace id.
    const flows: FlowRecord[] = [];
    const telemetry = wp.proxy.inputs.telemetry;
    telemetry.onFlow = (ctx, o, ms) => flows.push(flowOfRequest("waypoint/shop/wp", "shop/wp", ctx, o, ms));
    telemetry.onTcpFlow = (tunnel, o) => flows.push(flowOfTcp("waypoint/shop/wp", "shop/wp", tunnel, o));
    try {
      const r = await wp.request({ path: "/get", tunnelTraceparent });
      expect(r.status).toBe(403);
      expect((await wp.accessLog()).pop()).toMatchObject({ status: 403, trace_id: T, tunnel_trace_id: T });
      const from = wp.logs.length;
      await expect(wp.tunnel({ authority: "10.9.9.9:80", traceparent: tunnelTraceparent })).rejects.toThrow();
      expect(wp.logs.slice(from).find((l) => l.msg === "tunnel refused")).toMatchObject({ trace_id: T });
      // Bytes that are not HTTP, to a port of api-2 (bound to the waypoint) that no Service declares: L4 denial.
      const t = await wp.tunnel({ authority: `${IPS.api2}:7777`, traceparent: tunnelTraceparent });
      const closed = new Promise<void>((resolve) => t.on("close", () => resolve()));
      t.on("data", () => {});
      t.write(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]));
      await closed;
      expect(wp.logs.slice(from).find((l) => l.msg === "tcp connection denied")).toMatchObject({ trace_id: T });
      expect(flows.map((f) => ({ l7: f.l7, verdict: f.verdict, status: f.status, policy: f.policy, traceId: f.traceId, port: f.dst.port }))).toEqual([
        { l7: true, verdict: "denied", status: 403, policy: "shop/nobody", traceId: T, port: 8000 },
        { l7: false, verdict: "denied", status: undefined, policy: "shop/nobody", traceId: T, port: 7777 },
      ]);
    } finally {
      telemetry.onFlow = undefined;
      telemetry.onTcpFlow = undefined;
      wp.configure();
    }
  });
});
