import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../config/mod.ts";
import { indexModel, type MeshModel, readyEndpoints } from "../model/mod.ts";
import { type ExplainQuery, explainRequest, formatExplanation, parseHeaders, parseSource, parseTarget } from "./mod.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MESH_YAML = readFileSync(join(ROOT, "config", "mesh.yaml"), "utf8");
const DEMO_JWT = readFileSync(join(import.meta.dir, "testdata", "demo.jwt"), "utf8").trim();

function load(...texts: string[]): MeshModel {
  const { model, diagnostics } = parseConfig(texts.map((text, i) => ({ path: `mesh${i}.yaml`, text })));
  const errors = diagnostics.filter((d) => d.severity === "error" && d.rule !== "l7-without-waypoint");
  if (errors.length) throw new Error(JSON.stringify(errors));
  return model;
}

/** The demo token with its payload changed (sub) and the original signature kept. */
function tampered(jwt: string): string {
  const [h, p, s] = jwt.split(".");
  const claims = JSON.parse(Buffer.from(p!, "base64url").toString("utf8"));
  claims.sub = "someone-else@secure.istio.io";
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
}

const mesh = load(MESH_YAML);
const viewerToApi = (extra: Partial<ExplainQuery> = {}): ExplainQuery => ({
  from: parseSource("ambient-ns/product-viewer-sa"),
  to: parseTarget("product-api.ambient-ns:8000"),
  method: "GET",
  path: "/get",
  ...extra,
});

describe("the seed walkthrough (config/mesh.yaml)", () => {
  test("GET /get without a token: 403 at the waypoint by require-get-on-products", async () => {
    const e = await explainRequest(mesh, viewerToApi());
    expect(e).toMatchObject({
      decision: "deny",
      status: 403,
      enforcedBy: "waypoint",
      waypoint: "ambient-ns/product-api-waypoint",
      policy: "ambient-ns/require-get-on-products",
      route: null,
      backend: null,
      authentication: { status: "none" },
    });
    expect(e.hops.map((h) => h.point)).toEqual(["source-ztunnel", "waypoint"]);
    expect(e.hops[1]!.decided).toBe(true);
  });

  test("GET /get with the demo token: allowed (200), routed to product-api, admitted by node-b's ztunnel", async () => {
    const e = await explainRequest(mesh, viewerToApi({ jwt: DEMO_JWT }));
    expect(e).toMatchObject({
      decision: "allow",
      status: 200,
      enforcedBy: "waypoint",
      policy: "ambient-ns/require-get-on-products",
      rule: 0,
      route: { via: "default" },
      backend: { service: "ambient-ns/product-api", port: 8000, workload: "Pod ambient-ns/product-api", address: "10.244.2.10", targetPort: 80 },
      authentication: { status: "ok", principal: "testing@secure.istio.io/testing@secure.istio.io" },
    });
    expect(e.hops.map((h) => `${h.point} ${h.name}`)).toEqual([
      "source-ztunnel ztunnel on node-a",
      "waypoint waypoint ambient-ns/product-api-waypoint",
      "destination-ztunnel ztunnel on node-b",
    ]);
  });

  test("POST /get with the demo token: 403 (the policy allows GET only)", async () => {
    const e = await explainRequest(mesh, viewerToApi({ method: "POST", jwt: DEMO_JWT }));
    expect(e).toMatchObject({ decision: "deny", status: 403, enforcedBy: "waypoint", policy: "ambient-ns/require-get-on-products" });
    expect(e.authentication?.status).toBe("ok");
  });

  test("a tampered token: 401 from request authentication", async () => {
    const e = await explainRequest(mesh, viewerToApi({ jwt: tampered(DEMO_JWT) }));
    expect(e).toMatchObject({
      decision: "unauthenticated",
      status: 401,
      enforcedBy: "waypoint",
      policy: "ambient-ns/jwt-on-product-api",
      authentication: { status: "invalid", error: "Jwt verification fails" },
    });
    const garbage = await explainRequest(mesh, viewerToApi({ jwt: "not-a-jwt" }));
    expect(garbage).toMatchObject({ decision: "unauthenticated", status: 401 });
  });

  test("JSON carries the contract keys", async () => {
    const e = JSON.parse(JSON.stringify(await explainRequest(mesh, viewerToApi({ jwt: DEMO_JWT }))));
    for (const k of ["decision", "enforcedBy", "policy", "route", "backend", "status"]) expect(k in e).toBe(true);
  });

  test("text output names the path, the verdict, the policy and the backend", async () => {
    const denied = formatExplanation(await explainRequest(mesh, viewerToApi()));
    expect(denied).toContain("GET /get (Host product-api.ambient-ns:8000)");
    expect(denied).toContain("1. ztunnel on node-a");
    expect(denied).toContain("2. waypoint ambient-ns/product-api-waypoint  <- decides");
    expect(denied).toMatch(/decision\s+DENY \(403\)/);
    expect(denied).toMatch(/enforced by\s+waypoint ambient-ns\/product-api-waypoint/);
    expect(denied).toMatch(/policy\s+ambient-ns\/require-get-on-products/);
    const allowed = formatExplanation(await explainRequest(mesh, viewerToApi({ jwt: DEMO_JWT })));
    expect(allowed).toMatch(/decision\s+ALLOW \(200\)/);
    expect(allowed).toMatch(/backend\s+ambient-ns\/product-api:8000 -> Pod ambient-ns\/product-api 10\.244\.2\.10:80/);
    expect(allowed).toContain("3. ztunnel on node-b");
    const bad = formatExplanation(await explainRequest(mesh, viewerToApi({ jwt: tampered(DEMO_JWT) })));
    expect(bad).toMatch(/decision\s+UNAUTHENTICATED \(401\)/);
    expect(bad).toMatch(/token\s+invalid: Jwt verification fails/);
  });

  test("addressing the Service VIP is the same as naming it", async () => {
    const e = await explainRequest(mesh, viewerToApi({ to: parseTarget("10.96.0.20:8000"), jwt: DEMO_JWT }));
    expect(e).toMatchObject({ decision: "allow", status: 200, destination: { service: "ambient-ns/product-api" } });
  });

  test("a source by address resolves to its workload", async () => {
    const e = await explainRequest(mesh, viewerToApi({ from: parseSource("ip:10.244.1.10"), jwt: DEMO_JWT }));
    expect(e.source).toMatchObject({ workload: "Pod ambient-ns/product-viewer", inMesh: true, node: "node-a" });
    expect(e.decision).toBe("allow");
  });

  test("a client outside the mesh cannot bypass the waypoint", async () => {
    const e = await explainRequest(mesh, viewerToApi({ from: parseSource("ip:192.0.2.7"), jwt: DEMO_JWT }));
    expect(e).toMatchObject({ decision: "deny", enforcedBy: "ztunnel", status: null, source: { inMesh: false, identity: null } });
    expect(e.reason).toContain("bypass refused");
    expect(e.hops.map((h) => h.point)).toEqual(["destination-ztunnel"]);
  });

  test("a pod addressed directly goes through the waypoint only if the pod itself is bound to one", async () => {
    // product-api's pod has no waypoint of its own: the viewer reaches its ztunnel directly, which
    // refuses it because the Service's waypoint serves that workload.
    const e = await explainRequest(mesh, viewerToApi({ to: parseTarget("10.244.2.10:80"), jwt: DEMO_JWT }));
    expect(e).toMatchObject({ decision: "deny", enforcedBy: "ztunnel" });
  });

  test("unknown names are errors that say which flag to fix", async () => {
    await expect(explainRequest(mesh, viewerToApi({ to: parseTarget("nope.ambient-ns:80") }))).rejects.toThrow(/--to/);
    await expect(explainRequest(mesh, viewerToApi({ to: parseTarget("product-api.ambient-ns:9") }))).rejects.toThrow(/no port 9/);
    await expect(explainRequest(mesh, viewerToApi({ from: parseSource("ambient-ns/ghost") }))).rejects.toThrow(/--from/);
  });
});

describe("without a waypoint (config/mesh-no-waypoint.yaml)", () => {
  // mesh check reports this configuration's L7 policy as an error (l7-without-waypoint); explain shows why.
  const noWp = load(readFileSync(join(ROOT, "config", "mesh-no-waypoint.yaml"), "utf8"));
  test("the L7 policy cannot be enforced: the destination ztunnel denies every connection", async () => {
    const e = await explainRequest(noWp, viewerToApi({ jwt: DEMO_JWT }));
    expect(e).toMatchObject({
      decision: "deny",
      enforcedBy: "ztunnel",
      status: null,
      policy: "ambient-ns/require-get-on-products",
      route: null,
    });
    expect(e.reason).toContain("fail closed");
    expect(e.hops.map((h) => h.point)).toEqual(["source-ztunnel", "destination-ztunnel"]);
  });
});

describe("HTTP routing at the waypoint", () => {
  const routes = `
apiVersion: v1
kind: Service
metadata: { name: product-api-v2, namespace: ambient-ns }
spec:
  clusterIP: 10.96.0.21
  selector: { app: product-api }
  ports: [{ name: http, port: 8000, targetPort: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: product-routes, namespace: ambient-ns }
spec:
  parentRefs: [{ group: "", kind: Service, name: product-api, port: 8000 }]
  rules:
  - matches: [{ path: { type: PathPrefix, value: /old } }]
    filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /get } } }]
  - matches: [{ path: { type: PathPrefix, value: /get } }]
    filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-routed, value: "yes" }] } }]
    backendRefs: [{ name: product-api-v2, port: 8000 }]
    timeouts: { request: 2s }
    retry: { attempts: 3, codes: [503] }
`;
  const routed = load(MESH_YAML, routes);

  test("the matched route, its filters and the backend it picks", async () => {
    const e = await explainRequest(routed, viewerToApi({ jwt: DEMO_JWT }));
    expect(e).toMatchObject({
      decision: "allow",
      status: 200,
      route: { via: "route", namespace: "ambient-ns", name: "product-routes", ruleIndex: 1 },
      filters: [{ type: "RequestHeaderModifier", level: "rule" }],
      backend: { service: "ambient-ns/product-api-v2", port: 8000, timeoutMs: 2000, retry: { attempts: 3, codes: [503] } },
    });
    expect(e.route?.source).toMatch(/^mesh1\.yaml:\d+:\d+$/);
  });

  test("a redirect is answered by the waypoint", async () => {
    // Authorization runs first: the policy allows only /get, so /old is denied before routing...
    const denied = await explainRequest(routed, viewerToApi({ path: "/old/x", jwt: DEMO_JWT }));
    expect(denied).toMatchObject({ decision: "deny", status: 403 });
    // ...and with a policy that allows it, the route's redirect answers.
    const open = routed.authorizationPolicies.map((p) => ({ ...p, rules: [{}] }));
    const e = await explainRequest({ ...routed, authorizationPolicies: open }, viewerToApi({ path: "/old/x?a=1" }));
    expect(e).toMatchObject({
      decision: "allow",
      status: 302,
      redirect: { status: 302, location: "http://product-api.ambient-ns:8000/get/x?a=1" },
      backend: null,
    });
    expect(formatExplanation(e)).toMatch(/redirect\s+302 Location: http:\/\/product-api\.ambient-ns:8000\/get\/x\?a=1/);
  });

  test("no rule matches: 404 from the waypoint", async () => {
    const open = routed.authorizationPolicies.map((p) => ({ ...p, rules: [{}] }));
    const e = await explainRequest({ ...routed, authorizationPolicies: open }, viewerToApi({ path: "/other" }));
    expect(e).toMatchObject({ decision: "allow", status: 404, route: { via: "none" }, enforcedBy: "waypoint" });
  });
});

describe("the endpoint explain names is the one the proxies send to", () => {
  // Two pods behind a Service whose port 8080 targets the container port NAMED "web". The first pod declares
  // no such port: Kubernetes gives it no endpoint for 8080, and both proxies (model readyEndpoints) skip it.
  // explain used to fall back to the Service port on it and name the first pod at port 8080.
  const named = `
apiVersion: v1
kind: Pod
metadata: { name: shop-old, namespace: ambient-ns, labels: { app: shop } }
spec:
  nodeName: node-b
  containers: [{ name: app, ports: [{ name: admin, containerPort: 9000 }] }]
status: { podIP: 10.244.2.30 }
---
apiVersion: v1
kind: Pod
metadata: { name: shop-new, namespace: ambient-ns, labels: { app: shop } }
spec:
  nodeName: node-b
  containers: [{ name: app, ports: [{ name: web, containerPort: 8081 }, { name: admin, containerPort: 9000 }] }]
status: { podIP: 10.244.2.31 }
---
apiVersion: v1
kind: Service
metadata: { name: shop, namespace: ambient-ns, labels: { istio.io/use-waypoint: none } }
spec:
  clusterIP: 10.96.0.31
  selector: { app: shop }
  ports: [{ name: web, port: 8080, targetPort: web }, { name: admin, port: 9000, targetPort: admin }]
`;
  const model = load(MESH_YAML, named);
  const query = (to: string): ExplainQuery => ({ from: parseSource("ambient-ns/product-viewer-sa"), to: parseTarget(to), method: "GET", path: "/" });

  test("a named targetPort: the first pod declaring the name, at that container port", async () => {
    const svc = indexModel(model).serviceByName("ambient-ns", "shop")!;
    const proxies = readyEndpoints(indexModel(model), svc, 8080)[0]!;
    expect([proxies.workload.name, proxies.ip, proxies.port]).toEqual(["shop-new", "10.244.2.31", 8081]);
    for (const to of ["shop.ambient-ns:8080", "10.96.0.31:8080"]) {
      const e = await explainRequest(model, query(to));
      expect(e.backend).toMatchObject({ service: "ambient-ns/shop", port: 8080, workload: "Pod ambient-ns/shop-new", address: "10.244.2.31", targetPort: 8081 });
    }
  });
  test("the other port still reaches the first pod", async () => {
    const e = await explainRequest(model, query("shop.ambient-ns:9000"));
    expect(e.backend).toMatchObject({ workload: "Pod ambient-ns/shop-old", address: "10.244.2.30", targetPort: 9000 });
  });
  test("a model built without resolved endpoint ports (as a library caller may): the name is resolved, not the Service port used", async () => {
    const bare = { ...model, services: model.services.map((s) => (s.name === "shop" ? { ...s, endpoints: s.endpoints.map((e) => ({ ...e, ports: {} })) } : s)) };
    const e = await explainRequest(bare, query("shop.ambient-ns:8080"));
    expect(e.backend).toMatchObject({ workload: "Pod ambient-ns/shop-new", targetPort: 8081 });
  });
});

describe("flag parsing", () => {
  test("--from", () => {
    expect(parseSource("ns/sa")).toEqual({ kind: "identity", namespace: "ns", serviceAccount: "sa" });
    expect(parseSource("ip:10.0.0.1")).toEqual({ kind: "ip", address: "10.0.0.1" });
    expect(parseSource("ip:[fd00::1]")).toEqual({ kind: "ip", address: "fd00::1" });
    expect(() => parseSource("just-a-name")).toThrow(/NAMESPACE\/SERVICEACCOUNT/);
  });
  test("--to", () => {
    expect(parseTarget("a.b:80")).toEqual({ kind: "service", name: "a", namespace: "b", port: 80 });
    expect(parseTarget("a.b.svc.cluster.local:80")).toEqual({ kind: "service", name: "a", namespace: "b", port: 80 });
    expect(parseTarget("10.0.0.1:443")).toEqual({ kind: "address", address: "10.0.0.1", port: 443 });
    expect(parseTarget("[fd00::1]:443")).toEqual({ kind: "address", address: "fd00::1", port: 443 });
    expect(() => parseTarget("a.b")).toThrow(/needs a port/);
    expect(() => parseTarget("a:80")).toThrow(/NAME\.NAMESPACE/);
    expect(() => parseTarget("a.b:70000")).toThrow(/needs a port/);
  });
  test("--header", () => {
    expect(parseHeaders(["X-A=1", "x-a: 2", "B=c=d"])).toEqual({ "x-a": ["1", "2"], b: "c=d" });
    expect(() => parseHeaders(["nonsense"])).toThrow(/NAME=VALUE/);
  });
});
