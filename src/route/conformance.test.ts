/**
 * Gateway API HTTPRoute conformance rows (testdata/gateway-api/, from the Gateway API project) run through
 * the route engine, with the routes loaded from the upstream manifests and attached to a Service served
 * by a waypoint (mapping: see _gateway_conformance.ts). Every row is either run or listed with the
 * reason it is out of scope; the counts per suite are printed.
 *
 * What "the backend sees" and "the client sees" is derived from the decision as a waypoint carries it
 * out: forward => 200 from the named backend with the decision's path, host and headers; the response
 * header modifiers applied to what the echo backend sets; redirects and errors as decided. Timeouts and
 * retries are played against a simulated echo backend (delay, fail N times) on a virtual clock.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../config/mod.ts";
import type { HttpRoute, ReferenceGrant, Service } from "../model/mod.ts";
import {
  applyHeaderModifier,
  headerValue,
  normalizeHeaders,
  parseGatewayDuration,
  type RouteDecision,
  routeRequest,
  routesForService,
  shouldRetry,
  type TryOutcome,
} from "./mod.ts";
import { type ConformanceFixture, gatewayAsService, loadFixture, type MeshView } from "./_gateway_conformance.ts";

// A copy of reference/gateway-api (see testdata/gateway-api/README.md).
const REF = join(import.meta.dir, "testdata", "gateway-api");
const read = (rel: string) => readFileSync(join(REF, rel), "utf8");

// deno-lint-ignore no-explicit-any
type Raw = any;
const table: { tests: Raw[] } = JSON.parse(read("httproute-expectations.json"));
const BASE = read("conformance/base/manifests.yaml");

/** Rows that cannot apply to a waypoint route engine, by test id. */
const OUT_OF_SCOPE: Record<string, string> = {
  "httproute-cors":
    "CORS filter (experimental) is not implemented: the model has no CORS filter and a waypoint route engine does not answer preflights",
  "httproute-https-listener": "TLS-terminating HTTPS listener with certificates: a waypoint receives HBONE, never client TLS",
  "httproute-https-listener-detect-misdirected-requests":
    "SNI vs Host (421) on HTTPS listeners with HTTP/2 coalescing: no client TLS at a waypoint",
};

/** Tests with no request rows at all (status conditions only), and what is checked instead. */
const ATTACHMENT_ONLY: Record<string, string> = {
  "httproute-disallowed-kind": "listener only allows TLSRoute: the route must not attach",
  "httproute-invalid-cross-namespace-parent-ref": "listener allows Same namespace only: the route must not attach",
  "httproute-invalid-parentref-not-matching-listener-port": "parentRef port 81 matches no listener: must not attach",
  "httproute-invalid-parentref-not-matching-section-name": "parentRef sectionName matches no listener: must not attach",
  "httproute-invalid-parentref-section-name-not-matching-port": "sectionName and port disagree: must not attach",
};
const NO_ROWS: Record<string, string> = {
  "httproute-observed-generation-bump": "status only (observedGeneration); the route itself is checked to attach",
  "httproute-backend-protocol-websocket": "no literal request rows (websocket dialer); upgrade handling is the waypoint's",
};

interface Tally {
  run: number;
  outOfScope: { name: string; reason: string }[];
  notes: string[];
}
const tallies = new Map<string, Tally>();
const tally = (id: string) => {
  let t = tallies.get(id);
  if (!t) tallies.set(id, t = { run: 0, outOfScope: [], notes: [] });
  return t;
};

function fixtureFor(t: Raw): ConformanceFixture {
  return loadFixture([BASE, ...t.manifests.map(read)]);
}

/**
 * The same fixture with its HTTPRoutes and ReferenceGrants normalized by src/config (parseConfig), the
 * path real configurations take. (parseConfig keeps the first of two same-named objects where kubectl
 * keeps the last; the one test with such a pair expects the same answers from both.)
 */
function configFixtureFor(t: Raw, fx: ConformanceFixture): ConformanceFixture {
  const files = ["conformance/base/manifests.yaml", ...t.manifests].map((p: string) => ({ path: p, text: read(p) }));
  const { model } = parseConfig(files);
  return { ...fx, routes: model.httpRoutes, grants: model.referenceGrants ?? [] };
}

/** The Gateway a test's requests go to: the one its routes attach to (same-namespace by default). */
function gatewayOf(fx: ConformanceFixture, t: Raw, c?: Raw): [string, string] {
  const fromGroup = c?.group && /^Gateway (\S+) \//.exec(c.group);
  if (fromGroup) return ["gateway-conformance-infra", fromGroup[1]!];
  const own = new Set<string>();
  for (const r of fx.routes) for (const p of r.parentRefs) if (p.kind === "Gateway") own.add(`${p.namespace}/${p.name}`);
  const list = [...own];
  const pick = list.length === 1 ? list[0]! : "gateway-conformance-infra/same-namespace";
  const [ns, name] = pick.split("/");
  return [ns!, name!];
}

interface Sent {
  decision: RouteDecision;
  request: { method: string; path: string; host: string; headers: Record<string, string> };
  view: MeshView;
}

function send(
  fx: ConformanceFixture,
  view: MeshView,
  req: Raw,
  opts: { random?: () => number; grants?: ReferenceGrant[] } = {},
): Sent {
  const host: string = req.host ?? `${view.frontend.name}.${view.frontend.namespace}`;
  const portMatch = /:(\d+)$/.exec(host);
  const port = portMatch ? Number(portMatch[1]) : 80;
  const request = { method: req.method ?? "GET", path: req.path, host, headers: (req.headers ?? {}) as Record<string, string> };
  const services = (ns: string, name: string): Service | undefined =>
    fx.services.find((s) => s.namespace === ns && s.name === name);
  const decision = routeRequest({
    routes: view.routes,
    service: view.frontend,
    port,
    request,
    services,
    referenceGrants: opts.grants ?? fx.grants,
    ...(view.sourceNamespace ? { sourceNamespace: view.sourceNamespace } : {}),
    random: opts.random ?? (() => 0),
  });
  return { decision, request, view };
}

/** Status the client gets, the echo backend answering at once unless `?delay=` asks it to wait. */
function clientStatus(s: Sent): number {
  const d = s.decision;
  if (d.kind !== "forward") return d.status;
  const delayText = new URLSearchParams(s.request.path.split("?")[1] ?? "").get("delay");
  const delay = delayText ? parseGatewayDuration(delayText) : undefined;
  const limits = [d.timeoutMs, d.backendTimeoutMs].filter((x): x is number => x !== undefined);
  if (delay !== undefined && limits.length > 0 && delay >= Math.min(...limits)) return 504;
  return 200;
}

function checkCase(t: Raw, c: Raw, s: Sent): void {
  const exp = c.expect ?? {};
  const wantStatus: number[] = exp.status ?? [200];
  const status = clientStatus(s);
  expect(wantStatus).toContain(status);
  const d = s.decision;
  if (d.kind === "forward" && status === 200) {
    if (exp.backend) expect(d.backend.name).toBe(exp.backend);
    if (exp.backendNamespace) expect(d.backend.namespace).toBe(exp.backendNamespace);
    const br = exp.backendRequest;
    if (br) {
      if (br.path !== undefined) expect(br.path.includes("?") ? d.path : d.path.split("?")[0]).toBe(br.path);
      if (br.host !== undefined) expect(d.host).toBe(br.host);
      if (br.method !== undefined) expect(s.request.method).toBe(br.method);
      for (const [k, v] of Object.entries(br.headers ?? {})) expect(headerValue(d.requestHeaders, k)).toBe(v as string);
      for (const k of br.absentHeaders ?? []) expect(headerValue(d.requestHeaders, k)).toBeUndefined();
    } else {
      // The backend must see the request as sent.
      expect(d.path).toBe(s.request.path);
      for (const [k, v] of Object.entries(s.request.headers)) expect(headerValue(d.requestHeaders, k)).toBe(v);
    }
    if (exp.responseHeaders || exp.responseAbsentHeaders) {
      let resp = normalizeHeaders(c.backendSetsResponseHeaders ?? {});
      for (const m of d.responseHeaderModifiers) resp = applyHeaderModifier(resp, m);
      for (const [k, v] of Object.entries(exp.responseHeaders ?? {})) expect(headerValue(resp, k)).toBe(v as string);
      for (const k of exp.responseAbsentHeaders ?? []) expect(headerValue(resp, k)).toBeUndefined();
    }
    if (exp.mirroredTo) checkMirrors(exp.mirroredTo, s);
  }
  if (d.kind === "redirect") {
    const loc = new URL(d.location);
    const want = exp.redirect ?? {};
    const origHost = s.request.host.replace(/:\d+$/, "");
    expect(loc.protocol).toBe(`${want.scheme ?? "http"}:`);
    expect(loc.hostname).toBe(want.host ?? origHost);
    expect(loc.port).toBe(want.port ?? "");
    expect(loc.pathname).toBe(want.path ?? s.request.path.split("?")[0]);
  }
  if (t.id === "httproute-named-rule" && d.kind === "forward") {
    expect(d.route?.ruleName).toBe(s.request.path === "/named" ? "named-rule" : undefined);
  }
}

function checkMirrors(want: { name: string; namespace: string; percent?: number }[], s: Sent): void {
  const d = s.decision;
  if (d.kind !== "forward") throw new Error("mirrors need a forward decision");
  const fractional = want.filter((m) => m.percent !== undefined);
  if (fractional.length === 0) {
    expect(d.mirrors.map((m) => `${m.namespace}/${m.name}`)).toEqual(want.map((m) => `${m.namespace}/${m.name}`));
    return;
  }
  // Sample the decision over evenly spread draws: the mirrored share must be the configured percent.
  const N = 1000;
  const hits = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const again = send(fxCache.get(s.view)!, s.view, { ...s.request }, { random: () => (i + 0.5) / N }).decision;
    if (again.kind !== "forward") throw new Error(again.kind);
    expect(again.backend.name).toBe(d.backend.name);
    for (const m of again.mirrors) hits.set(`${m.namespace}/${m.name}`, (hits.get(`${m.namespace}/${m.name}`) ?? 0) + 1);
  }
  for (const m of fractional) {
    const share = (hits.get(`${m.namespace}/${m.name}`) ?? 0) / N;
    expect(Math.abs(share - m.percent! / 100)).toBeLessThan(0.01);
  }
}

const fxCache = new Map<MeshView, ConformanceFixture>();

function view(fx: ConformanceFixture, t: Raw, c?: Raw): MeshView {
  const [ns, name] = gatewayOf(fx, t, c);
  const v = gatewayAsService(fx, ns, name);
  fxCache.set(v, fx);
  return v;
}

/**
 * Plays a retry tableCase against a simulated echo backend: the first `succeedAfter` tries fail (with
 * `responseCode`, or a connection error when none), each failing try taking `delayRetry`; then 200 at
 * once. Per-try and whole-request deadlines run on a virtual clock.
 */
function simulateRetry(d: RouteDecision, sim: Raw): number {
  if (d.kind !== "forward") return d.status;
  const failures = Number(sim.succeedAfter?.[0] ?? 0);
  const code = sim.responseCode ? Number(sim.responseCode[0]) : undefined;
  const delay = sim.delayRetry ? parseGatewayDuration(sim.delayRetry[0])! : 0;
  let elapsed = 0;
  for (let tryIndex = 0;; tryIndex++) {
    if (d.timeoutMs !== undefined && elapsed >= d.timeoutMs) return 504;
    let outcome: TryOutcome | "ok";
    if (tryIndex >= failures) outcome = "ok";
    else if (d.backendTimeoutMs !== undefined && delay > d.backendTimeoutMs) {
      outcome = { backendTimeout: true };
      elapsed += d.backendTimeoutMs;
    } else {
      outcome = code === undefined ? { connectionError: true } : { status: code };
      elapsed += delay;
    }
    if (d.timeoutMs !== undefined && elapsed >= d.timeoutMs) return 504;
    if (outcome === "ok") return 200;
    if (!shouldRetry(d.retry, tryIndex, outcome)) {
      return "status" in outcome ? outcome.status : "backendTimeout" in outcome ? 504 : 503;
    }
    elapsed += d.retry?.backoffMs ?? 0;
  }
}

for (const t of table.tests) {
  describe(t.id, () => {
    const id: string = t.id;
    const fx = fixtureFor(t);
    const tl = tally(id);

    if (OUT_OF_SCOPE[id]) {
      const rows: Raw[] = t.tableCases?.length ? t.tableCases : t.cases;
      for (const r of rows) {
        const name = r.name ?? (r.serverName ? `SNI ${r.serverName} Host ${r.host}` : r.host ? `Host ${r.host}` : `${r.request?.method} ${r.request?.path}`);
        tl.outOfScope.push({ name, reason: OUT_OF_SCOPE[id]! });
      }
      return;
    }
    if (ATTACHMENT_ONLY[id]) {
      test(`no request rows; ${ATTACHMENT_ONLY[id]}`, () => {
        const own = fx.routes.filter((r) => t.manifests.some((m: string) => read(m).includes(`name: ${r.name}`)));
        expect(own.length).toBeGreaterThan(0);
        for (const gw of fx.gateways) {
          const v = gatewayAsService(fx, gw.namespace, gw.name);
          for (const r of own) expect(v.routes.some((x) => x.name === r.name && x.namespace === r.namespace)).toBe(false);
          for (const p of v.frontend.ports) {
            expect(routesForService(v.routes.filter((x) => own.includes(fx.routes.find((o) => o.name === x.name)!)), v.frontend, p.port)).toEqual([]);
          }
        }
      });
      tl.notes.push(ATTACHMENT_ONLY[id]!);
      return;
    }
    if (NO_ROWS[id]) {
      tl.notes.push(NO_ROWS[id]!);
      if (id === "httproute-observed-generation-bump") {
        test("the route attaches and forwards", () => {
          const v = view(fx, t);
          const s = send(fx, v, { method: "GET", path: "/" });
          expect(s.decision).toMatchObject({ kind: "forward", via: "route", backend: { name: "infra-backend-v1", port: 8080 } });
        });
      }
      return;
    }

    if (id.startsWith("httproute-retry")) {
      for (const tc of t.tableCases) {
        test(`${tc.name} (simulated echo backend)`, () => {
          const v = view(fx, t);
          const s = send(fx, v, { method: "GET", path: tc.args.path });
          expect(s.decision).toMatchObject({ kind: "forward", backend: { name: "infra-backend-v3" } });
          const got = simulateRetry(s.decision, tc.args.retrySimulationConfig);
          const want: number[] = tc.want.StatusCodes ?? [tc.want.StatusCode];
          expect(want).toContain(got);
        });
        tl.run++;
      }
      return;
    }

    if (id === "httproute-weight") {
      test("traffic splits by weight; weight 0 gets nothing (1000 evenly spread draws)", () => {
        const v = view(fx, t);
        const N = 1000;
        const counts = new Map<string, number>();
        for (let i = 0; i < N; i++) {
          const d = send(fx, v, t.cases[0].request, { random: () => (i + 0.5) / N }).decision;
          if (d.kind !== "forward") throw new Error(d.kind);
          counts.set(d.backend.name, (counts.get(d.backend.name) ?? 0) + 1);
        }
        for (const [backend, w] of Object.entries(t.expectedWeights as Record<string, number>)) {
          const share = (counts.get(backend) ?? 0) / N;
          if (w === 0) expect(share).toBe(0);
          else expect(Math.abs(share - w)).toBeLessThan(0.01);
        }
      });
      tl.run++;
      return;
    }

    if (id === "httproute-request-header-modifier-backend-weights") {
      test("each backend request carries exactly one Backend header naming the chosen backend", () => {
        const v = view(fx, t);
        const seen = new Set<string>();
        for (let i = 0; i < 100; i++) {
          const s = send(fx, v, t.cases[0].request, { random: () => (i + 0.5) / 100 });
          checkCase(t, t.cases[0], s);
          const d = s.decision;
          if (d.kind !== "forward") throw new Error(d.kind);
          expect(d.requestHeaders["backend"]).toHaveLength(1);
          expect(d.backend.name.startsWith(d.requestHeaders["backend"]![0]!)).toBe(true);
          seen.add(d.backend.name);
        }
        expect([...seen].sort()).toEqual(["infra-backend-v1", "infra-backend-v2"]);
      });
      tl.run++;
      return;
    }

    if (id === "httproute-service-types") {
      for (const sub of ["manual-endpointslices", "headless", "headless-manual-endpointslices"]) {
        test(`GET /${sub} reaches Service ${sub} (endpoint selection is the ztunnel's, not the route's)`, () => {
          const v = view(fx, t);
          const s = send(fx, v, { method: "GET", path: `/${sub}` });
          expect(clientStatus(s)).toBe(200);
          expect(s.decision).toMatchObject({ kind: "forward", backend: { namespace: "gateway-conformance-infra", name: sub, port: 8080 } });
        });
        tl.run++;
      }
      tl.notes.push("templated row expanded to its 3 paths; backend pods (infra-backend-v1) sit behind those Services");
      return;
    }

    let parsedByConfig: ConformanceFixture | undefined;
    t.cases.forEach((c: Raw, i: number) => {
      const label = `${c.group ? `${c.group}: ` : ""}${c.request.method ?? "GET"} ${c.request.path}` +
        `${c.request.host ? ` Host ${c.request.host}` : ""}${c.request.headers ? ` ${JSON.stringify(c.request.headers)}` : ""} -> ${(c.expect?.status ?? [200]).join("|")} #${i}`;
      test(label, () => {
        // Once with the manifests as loaded here, once as src/config normalizes them.
        for (const f of [fx, (parsedByConfig ??= configFixtureFor(t, fx))]) {
          const v = view(f, t, c);
          let grants: ReferenceGrant[] | undefined;
          if (id === "httproute-reference-grant" && /after deleting/.test(c.group ?? "")) {
            grants = f.grants.filter((g) => g.name !== "reference-grant");
          }
          checkCase(t, c, send(f, v, c.request, { grants }));
        }
      });
      tl.run++;
    });
    if (id === "httproute-backend-protocol-h2c") tl.notes.push("routing to the h2c port is checked; speaking h2c upstream is the waypoint's");
  });
}

// GAMMA (mesh profile) manifests attach to Services directly: no mapping at all.
describe("mesh profile manifests (Service parentRefs, no mapping)", () => {
  const meshBase = read("conformance/mesh/manifests.yaml");
  const load = (...files: string[]) => loadFixture([meshBase, ...files.map((f) => read(`conformance/tests/mesh/${f}`))]);
  const svc = (fx: ConformanceFixture, name: string) => fx.services.find((s) => s.name === name && s.namespace === "gateway-conformance-mesh")!;
  const go = (fx: ConformanceFixture, to: string, port: number, path: string, sourceNamespace?: string, headers: Record<string, string> = {}) =>
    routeRequest({
      routes: fx.routes as HttpRoute[],
      service: svc(fx, to),
      port,
      request: { method: "GET", path, host: `${to}:${port}`, headers },
      services: (ns, n) => fx.services.find((s) => s.namespace === ns && s.name === n),
      ...(sourceNamespace ? { sourceNamespace } : {}),
      random: () => 0.5,
    });
  const setHeader = (d: RouteDecision) => {
    if (d.kind !== "forward") return undefined;
    let h = normalizeHeaders({});
    for (const m of d.responseHeaderModifiers) h = applyHeaderModifier(h, m);
    return headerValue(h, "x-header-set");
  };

  test("mesh-split: /v1 and /v2 go to echo-v1 and echo-v2; others 404", () => {
    const fx = load("mesh-split.yaml");
    expect(go(fx, "echo", 80, "/v1")).toMatchObject({ kind: "forward", backend: { name: "echo-v1", port: 80 } });
    expect(go(fx, "echo", 80, "/v2")).toMatchObject({ kind: "forward", backend: { name: "echo-v2", port: 80 } });
    expect(go(fx, "echo", 80, "/v3")).toMatchObject({ kind: "error", status: 404 });
  });
  test("mesh-ports: a port-limited route applies to that port only; other ports use the Service itself", () => {
    const fx = load("mesh-ports.yaml");
    expect(setHeader(go(fx, "echo-v1", 80, "/"))).toBe("v1");
    expect(go(fx, "echo-v1", 8080, "/")).toMatchObject({ kind: "forward", via: "default", backend: { name: "echo-v1", port: 8080 } });
    expect(setHeader(go(fx, "echo-v2", 80, "/"))).toBe("v2");
    // A route without a port covers every port of the Service (its backendRef then picks port 80).
    expect(setHeader(go(fx, "echo-v2", 8080, "/"))).toBe("v2");
  });
  test("mesh-consumer-route: applies to callers in the consumer namespace only", () => {
    const fx = load("mesh-consumer-route.yaml");
    const grants = fx.grants;
    expect(grants).toEqual([]); // backendRef names its namespace explicitly
    const consumer = go(fx, "echo-v1", 80, "/", "gateway-conformance-mesh-consumer");
    // Its backendRef is its own parent Service in the producer namespace: no ReferenceGrant needed.
    expect(consumer).toMatchObject({ kind: "forward", via: "route", backend: { namespace: "gateway-conformance-mesh", name: "echo-v1" } });
    expect(setHeader(consumer)).toBe("set");
    expect(go(fx, "echo-v1", 80, "/", "gateway-conformance-mesh")).toMatchObject({ kind: "forward", via: "default" });
    expect(go(fx, "echo-v1", 80, "/")).toMatchObject({ kind: "forward", via: "default" });
  });
  test("mesh twins of gateway tests: same rules on Service echo (matching, redirects, rewrite, weight)", () => {
    const fx = load("httproute-matching.yaml", "httproute-redirect-path.yaml", "httproute-rewrite-path.yaml");
    expect(go(fx, "echo", 80, "/v2/example")).toMatchObject({ kind: "forward", backend: { name: "echo-v2" } });
    expect(go(fx, "echo", 80, "/v2example")).toMatchObject({ kind: "forward", backend: { name: "echo-v1" } });
    expect(go(fx, "echo", 80, "/", undefined, { version: "two" })).toMatchObject({ kind: "forward", backend: { name: "echo-v2" } });
    const w = load("httproute-weight.yaml");
    const names = Array.from({ length: 10 }, (_, i) =>
      routeRequest({
        routes: w.routes,
        service: svc(w, "echo"),
        port: 80,
        request: { method: "GET", path: "/", host: "echo", headers: {} },
        services: (ns, n) => w.services.find((s) => s.namespace === ns && s.name === n),
        random: () => (i + 0.5) / 10,
      })
    ).map((d) => (d.kind === "forward" ? d.backend.name : d.kind));
    expect(names.filter((n) => n === "echo-v1")).toHaveLength(7);
    expect(names.filter((n) => n === "echo-v2")).toHaveLength(3);
  });
});

afterAll(() => {
  const lines: string[] = ["", "Gateway API HTTPRoute conformance rows through the waypoint route engine:"];
  let run = 0, out = 0;
  for (const [id, t] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    run += t.run;
    out += t.outOfScope.length;
    lines.push(`  ${id.padEnd(58)} run ${String(t.run).padStart(3)}  out of scope ${t.outOfScope.length}${t.notes.length ? `  (${t.notes.join("; ")})` : ""}`);
  }
  lines.push(`  total: ${run} rows run, ${out} out of scope`);
  lines.push("  out of scope:");
  for (const [id, t] of tallies) for (const o of t.outOfScope) lines.push(`    ${id}: ${o.name} -- ${o.reason}`);
  console.log(lines.join("\n"));
});

describe("coverage", () => {
  test("every row is accounted for and the run share is high", () => {
    let run = 0, out = 0;
    for (const t of tallies.values()) {
      run += t.run;
      out += t.outOfScope.length;
    }
    const ids = new Set(table.tests.map((t) => t.id));
    expect(tallies.size).toBe(ids.size);
    expect(out).toBe(17 + 3 + 15); // CORS, HTTPS listener, misdirected requests: listed by name
    expect(run).toBeGreaterThanOrEqual(170);
  });
});
