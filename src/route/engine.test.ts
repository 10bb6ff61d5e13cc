import { describe, expect, test } from "bun:test";
import type { HttpRoute, HttpRouteRule, Service } from "../model/mod.ts";
import { compileRoutes, routeRequest, routesForService } from "./mod.ts";
import type { RouteDecision, RouteInput } from "./mod.ts";

function svc(namespace: string, name: string, ports: { port: number; name?: string }[] = [{ port: 8000, name: "http" }]): Service {
  return {
    name,
    namespace,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    vip: "10.96.0.10",
    ports: ports.map((p) => ({ ...p, targetPort: p.port, protocol: "TCP" as const })),
    endpoints: [],
    labels: {},
  };
}

const api = svc("shop", "api");
const v1 = svc("shop", "api-v1");
const v2 = svc("shop", "api-v2");
const other = svc("other", "remote");
const all = [api, v1, v2, other];
const lookup = (ns: string, n: string) => all.find((s) => s.namespace === ns && s.name === n);

function rule(partial: Partial<HttpRouteRule>): HttpRouteRule {
  return { matches: [], filters: [], backendRefs: [], ...partial };
}

function route(name: string, rules: HttpRouteRule[], extra: Partial<HttpRoute> = {}): HttpRoute {
  return {
    name,
    namespace: "shop",
    parentRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop" }],
    hostnames: [],
    rules,
    ...extra,
  };
}

function decide(routes: HttpRoute[], req: Partial<RouteInput["request"]> = {}, extra: Partial<RouteInput> = {}): RouteDecision {
  return routeRequest({
    routes,
    service: api,
    port: 8000,
    services: lookup,
    request: { method: "GET", path: "/", host: "api.shop:8000", headers: {}, ...req },
    ...extra,
  });
}

const toV1 = [{ name: "api-v1", port: 8000 }];
const toV2 = [{ name: "api-v2", port: 8000 }];

function backendOf(d: RouteDecision): string {
  if (d.kind !== "forward") throw new Error(`expected forward, got ${d.kind} ${JSON.stringify(d)}`);
  return d.backend.name;
}

describe("attachment (GAMMA)", () => {
  test("no route attached: forward unchanged to the Service itself", () => {
    const d = decide([], { path: "/x?y=1", headers: { A: "b" } });
    expect(d).toMatchObject({ kind: "forward", via: "default", backend: { namespace: "shop", name: "api", port: 8000 }, path: "/x?y=1" });
    if (d.kind === "forward") expect(d.requestHeaders).toEqual({ a: ["b"] });
  });
  test("routes attached, none matching: 404", () => {
    const d = decide([route("r", [rule({ matches: [{ path: { type: "Exact", value: "/only" } }], backendRefs: toV1 })])]);
    expect(d).toMatchObject({ kind: "error", status: 404, via: "none" });
  });
  test("parentRef port limits the route to that port; sectionName names a Service port", () => {
    const byPort = route("p", [rule({ backendRefs: toV1 })], {
      parentRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop", port: 9000 }],
    });
    expect(decide([byPort]).via).toBe("default");
    const bySection = route("s", [rule({ backendRefs: toV1 })], {
      parentRefs: [{ group: "core", kind: "Service", name: "api", namespace: "shop", sectionName: "http" }],
    });
    expect(backendOf(decide([bySection]))).toBe("api-v1");
    const wrongSection = route("w", [rule({ backendRefs: toV1 })], {
      parentRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop", sectionName: "grpc" }],
    });
    expect(decide([wrongSection]).via).toBe("default");
  });
  test("a Gateway-group parentRef or another Service does not attach", () => {
    const gw = route("g", [rule({ backendRefs: toV1 })], {
      parentRefs: [{ group: "gateway.networking.k8s.io", kind: "Service", name: "api", namespace: "shop" }],
    });
    const otherSvc = route("o", [rule({ backendRefs: toV1 })], {
      parentRefs: [{ group: "", kind: "Service", name: "api-v2", namespace: "shop" }],
    });
    expect(decide([gw, otherSvc]).via).toBe("default");
  });
  test("consumer routes replace producer routes for callers of their namespace only", () => {
    const producer = route("producer", [rule({ backendRefs: toV1 })]);
    const consumer = route("consumer", [rule({ backendRefs: [{ name: "api-v2", namespace: "shop", port: 8000 }] })], {
      namespace: "client-ns",
    });
    const grants = [{
      name: "g",
      namespace: "shop",
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "client-ns" }],
      to: [{ group: "", kind: "Service" }],
    }];
    expect(backendOf(decide([producer, consumer]))).toBe("api-v1");
    expect(backendOf(decide([producer, consumer], {}, { sourceNamespace: "elsewhere" }))).toBe("api-v1");
    expect(backendOf(decide([producer, consumer], {}, { sourceNamespace: "client-ns", referenceGrants: grants }))).toBe("api-v2");
    expect(routesForService([producer, consumer], api, 8000).map((r) => r.name)).toEqual(["producer"]);
    // Without the grant, the consumer route's backend in the producer namespace is refused...
    expect(decide([producer, consumer], {}, { sourceNamespace: "client-ns" })).toMatchObject({ kind: "error", status: 500 });
    // ...except the parent Service itself, which a consumer route may always send to.
    const toParent = route("to-parent", [rule({ backendRefs: [{ name: "api", namespace: "shop", port: 8000 }] })], {
      namespace: "client-ns",
    });
    expect(decide([producer, toParent], {}, { sourceNamespace: "client-ns" })).toMatchObject({
      kind: "forward",
      via: "route",
      backend: { namespace: "shop", name: "api" },
    });
  });
});

describe("precedence", () => {
  test("exact beats prefix, longer prefix beats shorter, method beats none, more headers, more params", () => {
    const r = route("r", [
      rule({ matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: toV1 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/a" } }], backendRefs: toV2 }),
      rule({ matches: [{ path: { type: "Exact", value: "/a/b" } }], backendRefs: toV1 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/m" } }], backendRefs: toV1 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/m" }, method: "POST" }], backendRefs: toV2 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/h" }, headers: [{ type: "Exact", name: "a", value: "1" }] }], backendRefs: toV1 }),
      rule({
        matches: [{ path: { type: "PathPrefix", value: "/h" }, headers: [{ type: "Exact", name: "a", value: "1" }, { type: "Exact", name: "b", value: "2" }] }],
        backendRefs: toV2,
      }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/q" } }], backendRefs: toV1 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/q" }, queryParams: [{ type: "Exact", name: "x", value: "1" }] }], backendRefs: toV2 }),
    ]);
    expect(backendOf(decide([r], { path: "/z" }))).toBe("api-v1");
    expect(backendOf(decide([r], { path: "/a/c" }))).toBe("api-v2");
    expect(backendOf(decide([r], { path: "/a/b" }))).toBe("api-v1");
    expect(backendOf(decide([r], { path: "/m", method: "POST" }))).toBe("api-v2");
    expect(backendOf(decide([r], { path: "/m", method: "GET" }))).toBe("api-v1");
    expect(backendOf(decide([r], { path: "/h", headers: { a: "1", b: "2" } }))).toBe("api-v2");
    expect(backendOf(decide([r], { path: "/h", headers: { a: "1" } }))).toBe("api-v1");
    expect(backendOf(decide([r], { path: "/q?x=1" }))).toBe("api-v2");
    expect(backendOf(decide([r], { path: "/q?x=2" }))).toBe("api-v1");
  });
  test("regular expressions rank after prefixes", () => {
    const r = route("r", [
      rule({ matches: [{ path: { type: "RegularExpression", value: "/re/.*" } }], backendRefs: toV2 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: toV1 }),
    ]);
    expect(backendOf(decide([r], { path: "/re/x" }))).toBe("api-v1");
  });
  test("ties across routes: oldest creationTimestamp, then namespace/name; within a route: first rule", () => {
    const older = route("zzz", [rule({ backendRefs: toV2 })], { creationTimestamp: "2024-01-01T00:00:00Z" });
    const newer = route("aaa", [rule({ backendRefs: toV1 })], { creationTimestamp: "2025-01-01T00:00:00Z" });
    expect(backendOf(decide([newer, older]))).toBe("api-v2");
    const b = route("b", [rule({ backendRefs: toV2 })]);
    const a = route("a", [rule({ backendRefs: toV1 }), rule({ backendRefs: toV2 })]);
    const d = decide([b, a]);
    expect(backendOf(d)).toBe("api-v1");
    expect(d.route).toMatchObject({ name: "a", ruleIndex: 0, matchIndex: 0 });
  });
  test("hostnames: exact beats wildcard, longer beats shorter, unmatched host falls to routes without hostnames", () => {
    const wild = route("wild", [rule({ backendRefs: toV1 })], { hostnames: ["*.example.com"] });
    const exact = route("exact", [rule({ backendRefs: toV2 })], { hostnames: ["api.example.com"] });
    const any = route("any", [rule({ matches: [{ path: { type: "Exact", value: "/" } }], backendRefs: toV1 })]);
    expect(decide([wild, exact, any], { host: "api.example.com:8000" }).route?.name).toBe("exact");
    expect(decide([wild, exact, any], { host: "x.example.com" }).route?.name).toBe("wild");
    expect(decide([wild, exact, any], { host: "api.shop" }).route?.name).toBe("any");
    expect(decide([wild, exact], { host: "api.shop" })).toMatchObject({ kind: "error", status: 404 });
  });
});

describe("backends", () => {
  test("weights follow the injected random source; weight 0 is never picked", () => {
    const r = route("w", [rule({ backendRefs: [{ name: "api-v1", port: 8000, weight: 70 }, { name: "api-v2", port: 8000, weight: 30 }, { name: "api", port: 8000, weight: 0 }] })]);
    expect(backendOf(decide([r], {}, { random: () => 0.1 }))).toBe("api-v1");
    expect(backendOf(decide([r], {}, { random: () => 0.75 }))).toBe("api-v2");
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const n = backendOf(decide([r], {}, { random: () => i / 1000 }));
      counts[n] = (counts[n] ?? 0) + 1;
    }
    expect(counts).toEqual({ "api-v1": 700, "api-v2": 300 });
  });
  test("500: no backendRefs, a missing Service, a missing port, an unknown kind, an ungranted namespace, all weights 0", () => {
    const cases: [string, HttpRouteRule][] = [
      ["no backendRefs", rule({})],
      ["does not exist", rule({ backendRefs: [{ name: "ghost", port: 8000 }] })],
      ["has no port", rule({ backendRefs: [{ name: "api-v1" }] })],
      ["has no port 9", rule({ backendRefs: [{ name: "api-v1", port: 9 }] })],
      ["InvalidKind", rule({ backendRefs: [{ group: "x.io", kind: "Thing", name: "api-v1", port: 8000 }] })],
      ["RefNotPermitted", rule({ backendRefs: [{ name: "remote", namespace: "other", port: 8000 }] })],
      ["weight 0", rule({ backendRefs: [{ name: "api-v1", port: 8000, weight: 0 }] })],
    ];
    for (const [why, r] of cases) {
      const d = decide([route("r", [r])]);
      expect(d.kind).toBe("error");
      if (d.kind === "error") {
        expect(d.status).toBe(500);
        expect(d.reason).toContain(why);
      }
    }
  });
  test("a ReferenceGrant allows the cross-namespace backend", () => {
    const r = route("r", [rule({ backendRefs: [{ name: "remote", namespace: "other", port: 8000 }] })]);
    const grants = [{
      name: "g",
      namespace: "other",
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "shop" }],
      to: [{ group: "", kind: "Service", name: "remote" }],
    }];
    expect(backendOf(decide([r], {}, { referenceGrants: grants }))).toBe("remote");
  });
  test("a partly invalid split gives 500 only to the invalid share", () => {
    const r = route("r", [rule({ backendRefs: [{ name: "api-v1", port: 8000 }, { name: "ghost", port: 8000 }] })]);
    expect(backendOf(decide([r], {}, { random: () => 0.2 }))).toBe("api-v1");
    expect(decide([r], {}, { random: () => 0.8 })).toMatchObject({ kind: "error", status: 500 });
  });
});

describe("filters", () => {
  test("rule then backend header modifiers; response modifiers returned in order", () => {
    const r = route("r", [rule({
      filters: [
        { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "X-Rule", value: "1" }], add: [{ name: "x-list", value: "rule" }] } },
        { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["server"] } },
      ],
      backendRefs: [{
        name: "api-v1",
        port: 8000,
        filters: [
          { type: "RequestHeaderModifier", requestHeaderModifier: { add: [{ name: "X-List", value: "backend" }] } },
          { type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "x-b", value: "1" }] } },
        ],
      }],
    })]);
    const d = decide([r], { headers: { "x-list": "client" } });
    if (d.kind !== "forward") throw new Error(d.kind);
    expect(d.requestHeaders["x-rule"]).toEqual(["1"]);
    expect(d.requestHeaders["x-list"]).toEqual(["client", "rule", "backend"]);
    expect(d.responseHeaderModifiers).toEqual([{ remove: ["server"] }, { set: [{ name: "x-b", value: "1" }] }]);
    expect(d.filters.map((f) => `${f.level}:${f.type}`)).toEqual([
      "rule:RequestHeaderModifier",
      "rule:ResponseHeaderModifier",
      "backend:RequestHeaderModifier",
      "backend:ResponseHeaderModifier",
    ]);
  });
  test("URLRewrite: hostname and prefix, query kept", () => {
    const r = route("r", [rule({
      matches: [{ path: { type: "PathPrefix", value: "/api/" } }],
      filters: [{ type: "URLRewrite", urlRewrite: { hostname: "internal", path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" } } }],
      backendRefs: toV1,
    })]);
    expect(decide([r], { path: "/api/items?id=3" })).toMatchObject({ kind: "forward", host: "internal", path: "/v2/items?id=3" });
    const withHostHeader = decide([r], { path: "/api/", headers: { Host: "api.shop:8000" } });
    expect(withHostHeader).toMatchObject({ kind: "forward", host: "internal", path: "/v2/", requestHeaders: { host: ["internal"] } });
  });
  test("ReplacePrefixMatch after an Exact match is refused with 500", () => {
    const r = route("r", [rule({
      matches: [{ path: { type: "Exact", value: "/a" } }],
      filters: [{ type: "URLRewrite", urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/b" } } }],
      backendRefs: toV1,
    })]);
    expect(decide([r], { path: "/a" })).toMatchObject({ kind: "error", status: 500 });
  });
  test("RequestRedirect needs no backend; default 302; Service port kept when no scheme or port is set", () => {
    const r = route("r", [
      rule({ matches: [{ path: { type: "PathPrefix", value: "/old" } }], filters: [{ type: "RequestRedirect", requestRedirect: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" } } }] }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/secure" } }], filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] }),
    ]);
    expect(decide([r], { path: "/old/x?q=1" })).toMatchObject({ kind: "redirect", status: 302, location: "http://api.shop:8000/new/x?q=1" });
    expect(decide([r], { path: "/secure" })).toMatchObject({ kind: "redirect", status: 301, location: "https://api.shop/secure" });
  });
  test("mirrors: always, by percent with the random source, fraction, and never to an invalid backend", () => {
    const r = route("r", [rule({
      filters: [
        { type: "RequestMirror", requestMirror: { backendRef: { name: "api-v2", port: 8000 } } },
        { type: "RequestMirror", requestMirror: { backendRef: { name: "api", port: 8000 }, percent: 20 } },
        { type: "RequestMirror", requestMirror: { backendRef: { name: "api-v1", port: 8000 }, fraction: { numerator: 1, denominator: 2 } } },
        { type: "RequestMirror", requestMirror: { backendRef: { name: "ghost", port: 8000 } } },
      ],
      backendRefs: toV1,
    })]);
    const names = (rand: number) => {
      const d = decide([r], {}, { random: () => rand });
      if (d.kind !== "forward") throw new Error(d.kind);
      return d.mirrors.map((m) => `${m.name}@${m.percent}`);
    };
    expect(names(0.1)).toEqual(["api-v2@100", "api@20", "api-v1@50"]);
    expect(names(0.3)).toEqual(["api-v2@100", "api-v1@50"]);
    expect(names(0.6)).toEqual(["api-v2@100"]);
  });
  test("an unknown filter type fails closed with 500", () => {
    const r = route("r", [rule({ filters: [{ type: "ExtensionRef" } as never], backendRefs: toV1 })]);
    expect(decide([r])).toMatchObject({ kind: "error", status: 500 });
  });
});

describe("timeouts and retry", () => {
  test("durations become milliseconds; 0s disables", () => {
    const r = route("r", [
      rule({ matches: [{ path: { type: "PathPrefix", value: "/t" } }], timeouts: { request: "1s", backendRequest: "500ms" }, retry: { codes: [503], attempts: 3, backoff: "25ms" }, backendRefs: toV1 }),
      rule({ matches: [{ path: { type: "PathPrefix", value: "/off" } }], timeouts: { request: "0s" }, backendRefs: toV1 }),
    ]);
    expect(decide([r], { path: "/t" })).toMatchObject({ timeoutMs: 1000, backendTimeoutMs: 500, retry: { attempts: 3, codes: [503], backoffMs: 25 } });
    const off = decide([r], { path: "/off" });
    expect(off.kind === "forward" && off.timeoutMs === undefined && off.retry === undefined).toBe(true);
  });
});

describe("compiled routes", () => {
  test("compileRoutes gives the same decisions as compiling per request", () => {
    const routes = [
      route("a", [rule({ matches: [{ path: { type: "PathPrefix", value: "/a" } }], backendRefs: toV1 })]),
      route("b", [rule({ matches: [{ path: { type: "Exact", value: "/a/b" } }], backendRefs: toV2 })]),
    ];
    const compiled = compileRoutes(routes, api, 8000);
    for (const path of ["/a", "/a/b", "/a/c", "/z"]) {
      const input: RouteInput = { routes, service: api, port: 8000, services: lookup, request: { method: "GET", path, host: "api", headers: {} } };
      expect(routeRequest(input, compiled)).toEqual(routeRequest(input));
    }
  });
});
