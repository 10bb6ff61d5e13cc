/**
 * The waypoint end to end in the lab, through dist/mesh: client pod -> its ztunnel -> waypoint ->
 * destination ztunnel -> app, every hop real (network namespaces, iptables capture, HBONE with the mesh
 * CA's certificates).
 *
 * 1. The seed walkthrough on config/mesh.yaml, step for step: no token 403, the demo token 200, POST 403,
 *    a tampered token 401; the waypoint's metrics; a bypass of the waypoint refused.
 * 2. A representative subset of the Gateway API HTTPRoute conformance table
 *    (src/route/testdata/gateway-api/httproute-expectations.json) through the waypoint: each test's
 *    HTTPRoutes attach to a Service of their own bound to the waypoint; backends are echo pods.
 * 3. JWT cases from Istio's test tokens with the JWKS served by a pod; a WebSocket; gRPC over h2c (nghttp).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { forceDown, labUnavailable, mesh, ROOT, uniquePrefix } from "./support/mod.ts";

const unavailable = await labUnavailable();
const skip = unavailable !== undefined;
if (skip) console.log(`test/waypoint_lab.test.ts SKIPPED: ${unavailable}`);

const BUN = process.execPath;
const ECHO = join(ROOT, "test", "waypoint_echo.ts");
const CLIENT = join(ROOT, "test", "waypoint_client.ts");
const JWT_DATA = join(ROOT, "src", "waypoint", "testdata", "jwt");
const GW_DATA = join(ROOT, "src", "route", "testdata", "gateway-api");

interface Result {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: string;
  error?: string;
}

/** Runs the client helper in `pod` with these requests; one result per request. */
async function requests(prefix: string, dir: string, pod: string, cases: object[]): Promise<Result[]> {
  const file = join(dir, `cases-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(cases));
  const r = await mesh(["lab", "exec", "--prefix", prefix, pod, "--", BUN, CLIENT, file], 120_000);
  if (r.code !== 0) throw new Error(`client failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Result[];
}

describe.skipIf(skip)("the seed walkthrough on config/mesh.yaml", () => {
  const prefix = uniquePrefix("ws");
  const P = ["--prefix", prefix];
  const VIEWER = "ambient-ns/product-viewer";
  const token = readFileSync(join(JWT_DATA, "demo.jwt"), "utf8").trim();
  const curl = async (...args: string[]) => {
    const r = await mesh(["lab", "exec", ...P, VIEWER, "--", "curl", "-s", "-m", "5", "-w", "\n%{http_code}", ...args], 30_000);
    const lines = r.stdout.split("\n");
    return { code: lines.pop()!, body: lines.join("\n"), exit: r.code };
  };

  beforeAll(async () => {
    const r = await mesh(["lab", "up", join(ROOT, "config", "mesh.yaml"), ...P, "--timeout", "60"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
  }, 130_000);
  afterAll(async () => {
    await forceDown(prefix);
  }, 90_000);

  test("no token: 403 RBAC: access denied", async () => {
    const r = await curl("http://product-api:8000/get");
    expect(r.code).toBe("403");
    expect(r.body).toBe("RBAC: access denied");
  });

  test("the demo token: 200 from httpbin", async () => {
    const r = await curl("-H", `Authorization: Bearer ${token}`, "http://product-api:8000/get");
    expect(r.code).toBe("200");
    expect(JSON.parse(r.body).url).toBe("http://product-api:8000/get");
  });

  test("POST with the token: 403", async () => {
    const r = await curl("-X", "POST", "-d", '{"product":1}', "-H", `Authorization: Bearer ${token}`, "http://product-api:8000/post");
    expect(r.code).toBe("403");
  });

  test("a tampered token: 401", async () => {
    const bad = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    const r = await curl("-H", `Authorization: Bearer ${bad}`, "http://product-api:8000/get");
    expect(r.code).toBe("401");
  });

  test("the waypoint reports each request (reporter=waypoint) and the destination sees the waypoint's identity", async () => {
    const wp = await mesh(["lab", "exec", ...P, "waypoint/ambient-ns/product-api-waypoint", "--", "curl", "-s", "http://127.0.0.1:15020/metrics"]);
    const lines = wp.stdout.split("\n").filter((l) => l.startsWith("istio_requests_total{"));
    for (const code of ["200", "401", "403"]) {
      expect(lines.some((l) => l.includes('reporter="waypoint"') && l.includes(`response_code="${code}"`) && l.includes('source_principal="spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa"'))).toBe(true);
    }
    const node = await mesh(["lab", "exec", ...P, "node/node-b", "--", "curl", "-s", "http://127.0.0.1:15020/metrics"]);
    expect(node.stdout).toContain('source_principal="spiffe://cluster.local/ns/ambient-ns/sa/product-api-waypoint"');
  });

  test("calling the pod directly, around the waypoint, is refused by its ztunnel", async () => {
    const r = await curl("-H", `Authorization: Bearer ${token}`, "http://10.244.2.10:80/get");
    expect(r.code).not.toBe("200");
    expect(r.body).not.toContain('"url"');
  });
});

// ---- conformance subset, JWT, WebSocket, gRPC -------------------------------------------------------

const NS = "gateway-conformance-infra";
const TESTS = [
  "httproute-matching",
  "httproute-exact-path-matching",
  "httproute-header-matching",
  "httproute-query-param-matching",
  "httproute-method-matching",
  "httproute-request-header-modifier",
  "httproute-response-header-modifier",
  "httproute-redirect-path",
  "httproute-redirect-host-and-status",
  "httproute-redirect-port",
  "httproute-redirect-scheme",
  "httproute-rewrite-path",
  "httproute-rewrite-host",
  "httproute-weight",
  "httproute-timeout-request",
  "httproute-request-mirror",
];

interface ConfCase {
  request: { host: string | null; method?: string; path: string; headers?: Record<string, string> };
  backendSetsResponseHeaders?: Record<string, string>;
  expect: {
    status?: number[];
    backend?: string;
    backendRequest?: { path?: string; host?: string; method?: string; headers?: Record<string, string>; absentHeaders?: string[] };
    responseHeaders?: Record<string, string>;
    responseAbsentHeaders?: string[];
    redirect?: { scheme?: string; host?: string; port?: string; path?: string };
    mirroredTo?: { name: string; namespace: string }[];
  };
}
interface ConfTest {
  id: string;
  manifests: string[];
  cases: ConfCase[];
  expectedWeights?: Record<string, number>;
}

function pod(name: string, ip: string, node: string, labels: Record<string, string>, command: string[], ports: number[], ns = NS) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: {
      nodeName: node,
      serviceAccountName: "default",
      containers: [{ name: "c", command, ports: ports.map((p) => ({ containerPort: p })) }],
    },
    status: { podIP: ip },
  };
}

function svc(name: string, ip: string, ports: { name: string; port: number; targetPort: number }[], selector?: Record<string, string>, waypoint = true, ns = NS) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: ns, ...(waypoint ? { labels: { "istio.io/use-waypoint": "waypoint" } } : {}) },
    spec: { clusterIP: ip, ...(selector ? { selector } : {}), ports },
  };
}

/** The lab's configuration: echo backends, one frontend Service per conformance test, the JWT and protocol services. */
function featureConfig(tests: ConfTest[], jwksFile: string): string {
  const echo = (extra: string[] = []) => [BUN, ECHO, "--port", "3000", "--h2-port", "9000", ...extra];
  const docs: object[] = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS, labels: { "istio.io/dataplane-mode": "ambient" } } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "issuer" } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: "issuer" } },
    pod("client", "10.244.1.10", "node-a", { app: "client" }, ["sleep", "infinity"], []),
    pod("infra-backend-v1-0", "10.244.2.11", "node-b", { app: "infra-backend-v1" }, echo(), [3000, 9000]),
    pod("infra-backend-v2-0", "10.244.2.12", "node-b", { app: "infra-backend-v2" }, echo(), [3000, 9000]),
    pod("infra-backend-v3-0", "10.244.2.13", "node-b", { app: "infra-backend-v3" }, echo(), [3000, 9000]),
    pod("secure-0", "10.244.2.15", "node-b", { app: "secure" }, echo(), [3000]),
    // The issuer's key endpoint: a pod outside the mesh, reached by the waypoint at its address.
    pod("jwks-0", "10.244.2.14", "node-b", { app: "jwks" }, echo(["--jwks", jwksFile]), [3000], "issuer"),
    ...["v1", "v2", "v3"].map((v, i) => svc(`infra-backend-${v}`, `10.96.0.${11 + i}`, [{ name: "http", port: 8080, targetPort: 3000 }], { app: `infra-backend-${v}` }, false)),
    svc("ws", "10.96.2.1", [{ name: "http", port: 80, targetPort: 3000 }], { app: "infra-backend-v1" }),
    svc("grpc", "10.96.2.2", [{ name: "grpc", port: 9000, targetPort: 9000 }], { app: "infra-backend-v1" }),
    svc("secure", "10.96.2.3", [{ name: "http", port: 80, targetPort: 3000 }], { app: "secure" }),
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "waypoint", namespace: NS, labels: { "istio.io/waypoint-for": "service" } },
      spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }], addresses: [{ type: "IPAddress", value: "10.244.2.20" }] },
    },
    {
      apiVersion: "security.istio.io/v1",
      kind: "RequestAuthentication",
      metadata: { name: "issuers", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "secure" } },
        jwtRules: [
          { issuer: "test-issuer-1@istio.io", jwksUri: "http://10.244.2.14:3000/jwks.json", audiences: ["buzz"] },
          { issuer: "test-issuer-2@istio.io", jwksUri: "http://10.244.2.14:3000/jwks.json" },
        ],
      },
    },
    {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "sub-1-or-group-2", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "secure" } },
        action: "ALLOW",
        rules: [
          { from: [{ source: { requestPrincipals: ["test-issuer-1@istio.io/sub-1"] } }] },
          { when: [{ key: "request.auth.claims[groups]", values: ["group-2"] }] },
        ],
      },
    },
  ];
  tests.forEach((t, i) => {
    docs.push(svc(`t${i}`, `10.96.1.${i + 1}`, [{ name: "http", port: 80, targetPort: 80 }]));
    const names = new Set<string>();
    for (const m of t.manifests) {
      for (const d of parseAllDocuments(readFileSync(join(GW_DATA, m), "utf8"))) {
        const o = d.toJSON() as { kind?: string; metadata: { name: string; namespace?: string }; spec: { parentRefs: unknown[] } };
        if (o?.kind !== "HTTPRoute" || (o.metadata.namespace ?? NS) !== NS || names.has(o.metadata.name)) continue;
        names.add(o.metadata.name);
        // Each test's routes attach to a Service of its own, named apart from the other tests' routes.
        o.metadata.name = `t${i}-${o.metadata.name}`;
        o.spec.parentRefs = [{ group: "", kind: "Service", name: `t${i}`, port: 80 }];
        docs.push(o);
      }
    }
  });
  return docs.map((d) => stringify(d)).join("---\n");
}

function headerValue(h: Record<string, string | string[]> | undefined, name: string): string | undefined {
  const v = h?.[name.toLowerCase()];
  return v === undefined ? undefined : (Array.isArray(v) ? v : [v]).join(",").replace(/,\s+/g, ",");
}

describe.skipIf(skip)("through the waypoint in the lab: HTTPRoute conformance subset, JWT, WebSocket, gRPC", () => {
  const prefix = uniquePrefix("wf");
  const P = ["--prefix", prefix];
  let dir = "";
  const table = JSON.parse(readFileSync(join(GW_DATA, "httproute-expectations.json"), "utf8")) as { tests: ConfTest[] };
  const tests = TESTS.map((id) => table.tests.find((t) => t.id === id)!);
  const CLIENT_POD = `${NS}/client`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mesh-waypoint-lab-"));
    const jwks = join(dir, "jwks.json");
    writeFileSync(jwks, readFileSync(join(JWT_DATA, "test-issuer-jwks.json")));
    const file = join(dir, "features.yaml");
    writeFileSync(file, featureConfig(tests, jwks));
    const r = await mesh(["lab", "up", file, ...P, "--timeout", "60"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
  }, 130_000);
  afterAll(async () => {
    await forceDown(prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  test("HTTPRoute conformance cases: matching, header filters, redirects, rewrites, timeouts, mirrors", async () => {
    const cases: { t: number; c: ConfCase }[] = [];
    tests.forEach((t, i) => {
      if (t.expectedWeights) return;
      for (const c of t.cases) if (!c.request.path.includes("$")) cases.push({ t: i, c });
    });
    const results = await requests(prefix, dir, CLIENT_POD, cases.map(({ t, c }) => ({
      address: `10.96.1.${t + 1}`,
      port: 80,
      method: c.request.method ?? "GET",
      path: c.request.path,
      host: c.request.host ?? `t${t}`,
      headers: {
        ...(c.request.headers ?? {}),
        ...(c.backendSetsResponseHeaders
          ? { "x-echo-set-header": Object.entries(c.backendSetsResponseHeaders).map(([k, v]) => `${k}:${v}`).join(",") }
          : {}),
      },
    })));
    const failures: string[] = [];
    cases.forEach(({ t, c }, i) => {
      const r = results[i]!;
      const what = `${tests[t]!.id} ${c.request.method ?? "GET"} ${c.request.path} ${JSON.stringify(c.request.headers ?? {})}`;
      const fail = (why: string) => failures.push(`${what}: ${why}`);
      const want = c.expect.status ?? [200];
      if (r.error || !want.includes(r.status!)) return fail(`status ${r.status ?? r.error}, want ${want}`);
      if (r.status === 200) {
        const seen = JSON.parse(r.body!) as { pod: string; path: string; host: string; method: string; headers: Record<string, string[]> };
        if (c.expect.backend && !seen.pod.startsWith(c.expect.backend)) fail(`answered by ${seen.pod}, want ${c.expect.backend}`);
        const br = c.expect.backendRequest;
        if (br?.path !== undefined && seen.path !== br.path) fail(`backend saw path ${seen.path}, want ${br.path}`);
        if (!br && seen.path !== c.request.path) fail(`backend saw path ${seen.path}, want it unchanged`);
        if (br?.host !== undefined && seen.host !== br.host) fail(`backend saw host ${seen.host}, want ${br.host}`);
        for (const [k, v] of Object.entries(br?.headers ?? {})) {
          if (headerValue(seen.headers, k) !== v) fail(`backend header ${k}=${headerValue(seen.headers, k)}, want ${v}`);
        }
        for (const k of br?.absentHeaders ?? []) if (headerValue(seen.headers, k) !== undefined) fail(`backend header ${k} present`);
      }
      for (const [k, v] of Object.entries(c.expect.responseHeaders ?? {})) {
        if (headerValue(r.headers, k) !== v) fail(`response header ${k}=${headerValue(r.headers, k)}, want ${v}`);
      }
      for (const k of c.expect.responseAbsentHeaders ?? []) if (headerValue(r.headers, k) !== undefined) fail(`response header ${k} present`);
      if (c.expect.redirect) {
        const loc = new URL(String(r.headers?.location));
        const rd = c.expect.redirect;
        if (rd.scheme && loc.protocol !== `${rd.scheme}:`) fail(`redirect scheme ${loc.protocol}`);
        if (rd.host && loc.hostname !== rd.host) fail(`redirect host ${loc.hostname}`);
        if (rd.port && loc.port !== rd.port) fail(`redirect port ${loc.port}`);
        if (rd.path && loc.pathname !== rd.path) fail(`redirect path ${loc.pathname}`);
      }
    });
    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThan(80);
    // Mirrored copies reached their backends (read inside the mirror pods).
    const mirrorTest = tests.findIndex((t) => t.id === "httproute-request-mirror");
    const mirrored = tests[mirrorTest]!.cases.flatMap((c) => (c.expect.mirroredTo ?? []).map((m) => ({ m, path: c.request.path })));
    expect(mirrored.length).toBeGreaterThan(0);
    for (const { m, path } of mirrored) {
      const seen = await mesh(["lab", "exec", ...P, `${m.namespace}/${m.name}-0`, "--", "curl", "-s", "http://127.0.0.1:3000/__seen"]);
      const list = JSON.parse(seen.stdout) as { path: string; host: string }[];
      expect(list.some((s) => s.path === path && s.host.includes("-shadow"))).toBe(true);
    }
  }, 120_000);

  test("weights: the split follows the route (70/30/0)", async () => {
    const i = tests.findIndex((t) => t.id === "httproute-weight");
    const n = 200;
    const results = await requests(prefix, dir, CLIENT_POD, Array.from({ length: n }, () => ({ address: `10.96.1.${i + 1}`, port: 80, path: "/", host: `t${i}` })));
    const counts: Record<string, number> = {};
    for (const r of results) {
      expect(r.status).toBe(200);
      const p = (JSON.parse(r.body!) as { pod: string }).pod.replace(/-\d+$/, "");
      counts[p] = (counts[p] ?? 0) + 1;
    }
    const w = tests[i]!.expectedWeights!;
    for (const [backend, share] of Object.entries(w)) expect(Math.abs((counts[backend] ?? 0) / n - share)).toBeLessThan(0.12);
  }, 60_000);

  test("JWT with a JWKS served by a pod: valid 200, expired 401, wrong issuer 401, wrong audience 403, no token 403, claims decide", async () => {
    const tokens = JSON.parse(readFileSync(join(JWT_DATA, "tokens.json"), "utf8")) as Record<string, string>;
    const call = (token?: string, method = "GET") => ({
      address: "10.96.2.3",
      port: 80,
      method,
      path: "/anything",
      host: "secure",
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const rs = await requests(prefix, dir, CLIENT_POD, [
      call(tokens.TokenIssuer1WithAudList), // aud [foo, buzz]: an allowed audience, sub-1
      call(tokens.TokenIssuer1WithAud), // aud foo only
      call(tokens.TokenExpired),
      call(tokens.TokenIssuer3), // an issuer no rule names
      call(),
      call(tokens.TokenIssuer2, "POST"), // groups [group-2]: the claim rule allows it
      call(tokens.TokenIssuer2WithSpaceDelimitedScope), // issuer 2, no groups claim
    ]);
    expect(rs.map((r) => r.status)).toEqual([200, 403, 401, 401, 403, 200, 403]);
    expect(rs[1]!.body).toBe("Audiences in Jwt are not allowed");
    expect(rs[2]!.body).toBe("Jwt is expired");
    expect(rs[3]!.body).toBe("Jwt issuer is not configured");
    expect(rs[4]!.body).toBe("RBAC: access denied");
    expect(String(rs[2]!.headers?.["www-authenticate"])).toContain("Bearer");
    // The key set was fetched from the pod, once, and cached.
    const count = await mesh(["lab", "exec", ...P, "issuer/jwks-0", "--", "curl", "-s", "http://127.0.0.1:3000/__jwks-count"]);
    expect(JSON.parse(count.stdout).fetches).toBe(1);
  }, 60_000);

  test("a WebSocket through the waypoint", async () => {
    const [r] = await requests(prefix, dir, CLIENT_POD, [{ address: "10.96.2.1", port: 80, path: "/ws", host: "ws", ws: true, body: "over-the-mesh" }]);
    expect(r!.error).toBeUndefined();
    expect(r!.status).toBe(101);
    expect(r!.body).toBe("echo:over-the-mesh");
  }, 30_000);

  test("gRPC-style h2c (nghttp, prior knowledge): body and grpc-status trailer through the waypoint", async () => {
    const r = await mesh(["lab", "exec", ...P, CLIENT_POD, "--", "sh", "-c",
      "printf 'question' > /tmp/mesh-grpc-body && nghttp -v -t 10 -H ':method: POST' -H 'content-type: application/grpc' -H 'te: trailers' -d /tmp/mesh-grpc-body http://10.96.2.2:9000/shop.Api/Get"], 30_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("reply(infra-backend-v1-0) /shop.Api/Get:question");
    expect(r.stdout).toMatch(/grpc-status: 0/);
    expect(r.stdout).toMatch(/:status: 200/);
  }, 30_000);
});
