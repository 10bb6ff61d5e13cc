/**
 * HTTPRoute at the waypoint, carried out on real connections: matches, header modifiers (request and
 * response), redirects, rewrites, weights, mirrors (fire and forget), timeouts and retries.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { httpRoute, startTestWaypoint, type TestWaypoint } from "./_test_env.ts";
import { waitFor } from "../../test/support/mod.ts";

let wp: TestWaypoint;
beforeAll(async () => {
  wp = await startTestWaypoint();
});
afterAll(async () => {
  await wp?.close();
});
beforeEach(() => {
  wp.apps.seen.length = 0;
});


describe("matching and filters", () => {
  beforeAll(() => {
    wp.configure(httpRoute("r", `  - matches:
    - path: { type: PathPrefix, value: /v2 }
    - headers:
      - name: version
        value: two
    backendRefs:
    - name: api-v2
      port: 8000
  - matches:
    - path: { type: Exact, value: /modify }
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{ name: X-Set, value: set-value }]
        add: [{ name: X-Add, value: added }]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{ name: X-App, value: overwritten }]
        add: [{ name: X-Resp-Add, value: r }]
    backendRefs:
    - name: api
      port: 8000
  - matches:
    - path: { type: PathPrefix, value: /prefix }
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example
        path: { type: ReplacePrefixMatch, replacePrefixMatch: /rewritten }
    backendRefs:
    - name: api
      port: 8000
  - matches:
    - path: { type: PathPrefix, value: /old }
    filters:
    - type: RequestRedirect
      requestRedirect:
        hostname: example.org
        statusCode: 301
        path: { type: ReplacePrefixMatch, replacePrefixMatch: /new }
  - matches:
    - path: { type: PathPrefix, value: /api }
      method: GET
    backendRefs:
    - name: api
      port: 8000`));
  });

  test("path prefix or header decides the backend; no matching rule is 404", async () => {
    const v2 = await wp.request({ path: "/v2/x" });
    expect(v2.json().app).toBe("api-2");
    const byHeader = await wp.request({ path: "/other", headers: { version: "two" } });
    expect(byHeader.json().app).toBe("api-2");
    const none = await wp.request({ path: "/nothing-matches" });
    expect(none.status).toBe(404);
    const wrongMethod = await wp.request({ method: "POST", path: "/api/x", body: "b" });
    expect(wrongMethod.status).toBe(404);
  });

  test("request and response header modifiers", async () => {
    const r = await wp.request({ path: "/modify", headers: { "x-set": "client", "x-add": "client", "x-remove": "gone" } });
    expect(r.status).toBe(200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen["x-set"]).toBe("set-value");
    expect(seen["x-add"]).toBe("client, added");
    expect(seen["x-remove"]).toBeUndefined();
    expect(r.headers["x-app"]).toBe("overwritten");
    expect(r.headers["x-resp-add"]).toBe("r");
  });

  test("URL rewrite: prefix and hostname", async () => {
    const r = await wp.request({ path: "/prefix/one?q=1" });
    const seen = r.json<{ path: string; headers: Record<string, string> }>();
    expect(seen.path).toBe("/rewritten/one?q=1");
    expect(seen.headers.host).toBe("rewritten.example");
  });

  test("redirect: status and Location, nothing sent to a backend", async () => {
    const r = await wp.request({ path: "/old/page" });
    expect(r.status).toBe(301);
    // No port in the filter: the listener (Service) port is kept (Gateway API redirect rules).
    expect(r.headers.location).toBe("http://example.org:8000/new/page");
    expect(wp.apps.seen.length).toBe(0);
  });

  test("dot segments are resolved before policy and routing, as Envoy normalizes", async () => {
    const r = await wp.request({ path: "/v2/../modify" });
    expect(r.json<{ path: string }>().path).toBe("/modify");
  });
});

describe("weights, mirrors, timeouts, retries", () => {
  test("weighted backends split the traffic", async () => {
    wp.configure(httpRoute("w", `  - backendRefs:
    - name: api-v2
      port: 8000
      weight: 3
    - name: mirror
      port: 8000
      weight: 1`));
    const counts: Record<string, number> = {};
    for (let i = 0; i < 80; i++) {
      const app = (await wp.request({ path: "/w" })).json<{ app: string }>().app;
      counts[app] = (counts[app] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(["api-2", "mirror"]);
    expect(counts["api-2"]!).toBeGreaterThan(counts["mirror"]!);
  });

  test("a mirror gets a copy (host -shadow) with the body; the client gets the primary's answer", async () => {
    wp.configure(httpRoute("m", `  - filters:
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: mirror
          port: 8000
    backendRefs:
    - name: api-v2
      port: 8000`));
    const r = await wp.request({ method: "POST", path: "/mirrored", body: "payload", headers: { "content-type": "text/plain" } });
    expect(r.json<{ app: string }>().app).toBe("api-2");
    await waitFor("the mirrored copy", () => wp.apps.seen.some((s) => s.app === "mirror"), 3000);
    const copy = wp.apps.seen.find((s) => s.app === "mirror")!;
    expect(copy.path).toBe("/mirrored");
    expect(copy.body).toBe("payload");
    expect(copy.headers.host).toMatch(/-shadow/);
  });

  test("request timeout: 504 upstream request timeout; fast requests pass", async () => {
    wp.configure(httpRoute("t", `  - timeouts:
      request: 200ms
    backendRefs:
    - name: api-v2
      port: 8000`));
    const slow = await wp.request({ path: "/delay/2000" });
    expect(slow.status).toBe(504);
    expect(slow.body).toBe("upstream request timeout");
    const fast = await wp.request({ path: "/delay/1" });
    expect(fast.status).toBe(200);
  });

  test("no route timeout: a workload that never answers is given up after the response-head timeout (504), never a hang", async () => {
    const own = await startTestWaypoint({ responseHeadTimeoutMs: 150 });
    try {
      const r = await own.request({ path: "/delay/3000" });
      expect(r.status).toBe(504);
      expect(r.body).toBe("upstream request timeout");
      // A body that takes longer than that, once the head came, is not cut.
      const slowBody = await own.request({ path: "/stream?n=40" });
      expect(slowBody.status).toBe(200);
      expect(slowBody.body.split("\n").length).toBe(41);
    } finally {
      await own.close();
    }
  });

  test("retry: listed codes are tried attempts+1 times; the last answer reaches the client", async () => {
    wp.configure(httpRoute("rt", `  - retry:
      attempts: 2
      codes: [503]
      backoff: 1ms
    backendRefs:
    - name: api-v2
      port: 8000`));
    const r = await wp.request({ path: "/status/503" });
    expect(r.status).toBe(503);
    expect(wp.apps.seen.filter((s) => s.path === "/status/503").length).toBe(3);
    wp.apps.seen.length = 0;
    const notListed = await wp.request({ path: "/status/500" });
    expect(notListed.status).toBe(500);
    expect(wp.apps.seen.filter((s) => s.path === "/status/500").length).toBe(1);
  });

  test("per-try timeout with retries: each try is cut, then 504", async () => {
    wp.configure(httpRoute("pt", `  - timeouts:
      request: 2s
      backendRequest: 100ms
    retry:
      attempts: 1
      backoff: 1ms
    backendRefs:
    - name: api-v2
      port: 8000`));
    const r = await wp.request({ path: "/delay/1000" });
    expect(r.status).toBe(504);
    expect(wp.apps.seen.filter((s) => s.path === "/delay/1000").length).toBe(2);
  });
});
