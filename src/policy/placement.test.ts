/**
 * Enforcement points, as docs/design.md states them: with a waypoint, the waypoint enforces everything with
 * the client's identity and the destination ztunnel admits only that waypoint; without one, the ztunnel
 * enforces L4 policies and fails closed on any policy that needs L7.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseConfig } from "../config/mod.ts";
import { emptyModel, indexModel } from "../model/mod.ts";
import type { AuthorizationPolicy, MeshModel, PolicyScope, Service, Workload } from "../model/mod.ts";
import { readTestdata } from "./_test_fixture.ts";
import { admitRequest } from "./admit.ts";
import { policyHasL7 } from "./attributes.ts";
import { inlineKeySet } from "./jwt.ts";
import { authorizeAtZtunnel, placement, ztunnelInbound } from "./placement.ts";
import type { EnforcementPoint } from "./placement.ts";
import { service, waypoint, workload } from "../../test/support/mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";

const wl = (name: string, labels: Record<string, string>, extra: Partial<Workload> = {}) =>
  workload(name, "shop", `10.0.0.${name.length}`, "n1", { labels, ports: [{ port: 8080 }], ...extra });

function policy(
  name: string,
  action: AuthorizationPolicy["action"],
  scope: PolicyScope,
  rules: AuthorizationPolicy["rules"],
): AuthorizationPolicy {
  const p: AuthorizationPolicy = { name, namespace: "shop", action, scope, rules, hasL7: false };
  p.hasL7 = policyHasL7(p);
  return p;
}

const SEL: PolicyScope = { kind: "selector", matchLabels: { app: "api" } };
const TO_SVC: PolicyScope = {
  kind: "targetRefs",
  targetRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop" }],
};
const TO_GW: PolicyScope = {
  kind: "targetRefs",
  targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "wp", namespace: "shop" }],
};
const L4_ALLOW = policy("l4-allow", "ALLOW", SEL, [{
  from: [{ source: { principals: ["cluster.local/ns/shop/sa/viewer"] } }],
}]);
const L7_ALLOW = policy("l7-allow", "ALLOW", SEL, [{ to: [{ operation: { methods: ["GET"] } }] }]);
const L7_DENY = policy("l7-deny", "DENY", SEL, [{ to: [{ operation: { paths: ["/admin"] } }] }]);
const L7_AUDIT = policy("l7-audit", "AUDIT", SEL, [{ to: [{ operation: { paths: ["/x"] } }] }]);
const SVC_POLICY = policy("svc", "ALLOW", TO_SVC, [{ to: [{ operation: { methods: ["GET"] } }] }]);
const GW_POLICY = policy("gw", "DENY", TO_GW, [{ to: [{ operation: { methods: ["DELETE"] } }] }]);
const NS_POLICY = policy("ns", "ALLOW", { kind: "namespace" }, [{ from: [{ source: { namespaces: ["shop"] } }] }]);

interface Setup {
  serviceWaypoint?: string;
  workloadWaypoint?: string;
  ambient?: boolean;
  policies: AuthorizationPolicy[];
}

function mesh(s: Setup): { model: MeshModel; api: Workload; svc: Service } {
  const m = emptyModel();
  const api = wl("api", { app: "api" }, {
    ambient: s.ambient ?? true,
    waypoint: s.workloadWaypoint ? { gateway: s.workloadWaypoint, via: "pod-label" } : undefined,
  });
  m.workloads.push(api, wl("viewer", { app: "viewer" }));
  const svc = service("api", "shop", "10.96.0.1", [{ port: 80, targetPort: 8080 }], [api], {
    waypoint: s.serviceWaypoint ? { gateway: s.serviceWaypoint, via: "service-label" } : undefined,
  });
  m.services.push(svc);
  m.waypoints.push(waypoint("wp", "shop", "10.0.9.1", { waypointFor: "all" }));
  m.authorizationPolicies.push(...s.policies);
  return { model: m, api, svc };
}

const names = (ps: { name: string }[]) => ps.map((p) => p.name);

describe("placement: where each policy is enforced", () => {
  const rows: {
    name: string;
    setup: Setup;
    viaService: boolean;
    point: EnforcementPoint;
    policies: string[];
    failClosed: string[];
  }[] = [
    {
      name: "no waypoint: the ztunnel enforces an L4 selector policy",
      setup: { policies: [L4_ALLOW] },
      viaService: true,
      point: "ztunnel",
      policies: ["l4-allow"],
      failClosed: [],
    },
    {
      name: "no waypoint: an L7 ALLOW fails closed",
      setup: { policies: [L4_ALLOW, L7_ALLOW] },
      viaService: true,
      point: "ztunnel",
      policies: ["l4-allow", "l7-allow"],
      failClosed: ["l7-allow"],
    },
    {
      name: "no waypoint: an L7 DENY fails closed too",
      setup: { policies: [L7_DENY] },
      viaService: false,
      point: "ztunnel",
      policies: ["l7-deny"],
      failClosed: ["l7-deny"],
    },
    {
      name: "no waypoint: an L7 AUDIT is ignored",
      setup: { policies: [L7_AUDIT] },
      viaService: true,
      point: "ztunnel",
      policies: ["l7-audit"],
      failClosed: [],
    },
    {
      name: "no waypoint: a targetRefs policy on the Service fails closed; a Gateway one does not reach it",
      setup: { policies: [SVC_POLICY, GW_POLICY, NS_POLICY] },
      viaService: true,
      point: "ztunnel",
      policies: ["svc", "ns"],
      failClosed: ["svc"],
    },
    {
      name: "service waypoint: it enforces selector, namespace, Service and Gateway policies",
      setup: { serviceWaypoint: "shop/wp", policies: [L4_ALLOW, L7_ALLOW, SVC_POLICY, GW_POLICY, NS_POLICY] },
      viaService: true,
      point: "waypoint",
      policies: ["l4-allow", "l7-allow", "svc", "gw", "ns"],
      failClosed: [],
    },
    {
      name: "service waypoint, pod addressed directly: the ztunnel, which refuses the bypass",
      setup: { serviceWaypoint: "shop/wp", policies: [L4_ALLOW] },
      viaService: false,
      point: "ztunnel",
      policies: [],
      failClosed: [],
    },
    {
      name: "workload waypoint: it serves pod-addressed traffic",
      setup: { workloadWaypoint: "shop/wp", policies: [L7_ALLOW, SVC_POLICY] },
      viaService: false,
      point: "waypoint",
      policies: ["l7-allow"],
      failClosed: [],
    },
    {
      name: "not ambient and no waypoint: nothing enforces",
      setup: { ambient: false, policies: [L7_ALLOW] },
      viaService: true,
      point: "none",
      policies: ["l7-allow"],
      failClosed: [],
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const { model, api, svc } = mesh(r.setup);
      const pl = placement(indexModel(model), { workload: api, service: r.viaService ? svc : undefined });
      expect({ point: pl.point, policies: names(pl.policies), failClosed: pl.failClosed.map((f) => f.policy.name) })
        .toEqual({ point: r.point, policies: r.policies, failClosed: r.failClosed });
      expect(pl.summary.length).toBeGreaterThan(0);
    });
  }

  test("the fail-closed reason names the policy, its L7 attributes and the missing waypoint", () => {
    const { model, api, svc } = mesh({ policies: [L7_ALLOW] });
    const pl = placement(indexModel(model), { workload: api, service: svc });
    expect(pl.failClosed[0].reason).toContain("ALLOW policy shop/l7-allow uses methods");
    expect(pl.failClosed[0].reason).toContain("no waypoint serves shop/api");
    expect(pl.denyAll).toBeDefined();
  });

  test("pod-addressed traffic to a workload whose Service has a waypoint is refused, and placement says so", () => {
    const { model, api } = mesh({ serviceWaypoint: "shop/wp", policies: [L4_ALLOW] });
    expect(placement(indexModel(model), { workload: api }).denyAll).toContain(
      "served by waypoint shop/wp, which this traffic does not go through",
    );
  });

  test("a binding to a waypoint that does not exist denies everything", () => {
    const { model, api, svc } = mesh({ serviceWaypoint: "shop/missing", policies: [] });
    const pl = placement(indexModel(model), { workload: api, service: svc });
    expect(pl.point).toBe("waypoint");
    expect(pl.denyAll).toContain("shop/missing");
    const d = authorizeAtZtunnel(indexModel(model), api, {
      source: { principal: VIEWER },
      destination: { port: 8080 },
    });
    expect(d.allowed).toBe(false);
    expect(d.reason).toContain("does not exist");
  });
});

describe("destination ztunnel", () => {
  const conn = (principal?: string, ip = "10.0.0.6", peerIp?: string) => ({
    source: { ip, principal, ...(peerIp ? { peerIp } : {}) },
    destination: { ip: "10.0.0.3", port: 8080 },
  });
  const WP = "spiffe://cluster.local/ns/shop/sa/wp";
  const rows: { name: string; setup: Setup; from?: string; ip?: string; peerIp?: string; allowed: boolean; reason: string }[] = [
    {
      name: "no policy: allow",
      setup: { policies: [] },
      from: VIEWER,
      allowed: true,
      reason: "no ALLOW policy applies",
    },
    {
      name: "L4 ALLOW matches the client",
      setup: { policies: [L4_ALLOW] },
      from: VIEWER,
      allowed: true,
      reason: "allowed by ALLOW policy shop/l4-allow rule 0",
    },
    {
      name: "L4 ALLOW, plaintext client",
      setup: { policies: [L4_ALLOW] },
      allowed: false,
      reason: "no ALLOW policy matched (shop/l4-allow)",
    },
    {
      name: "L7 policy without waypoint: every connection denied",
      setup: { policies: [L4_ALLOW, L7_DENY] },
      from: VIEWER,
      allowed: false,
      reason: "DENY policy shop/l7-deny uses paths",
    },
    {
      name: "served by a waypoint: the waypoint is admitted",
      setup: { serviceWaypoint: "shop/wp", policies: [L7_ALLOW] },
      from: WP,
      ip: "10.0.9.1",
      allowed: true,
      reason: "from waypoint shop/wp",
    },
    {
      name: "served by a waypoint: the waypoint's identity from another address is not the waypoint",
      setup: { serviceWaypoint: "shop/wp", policies: [] },
      from: WP,
      ip: "10.0.0.6",
      allowed: false,
      reason: "identity of waypoint shop/wp came from 10.0.0.6, which is not one of its addresses (10.0.9.1)",
    },
    {
      name: "the peer's own address decides, not the client address the waypoint forwarded",
      setup: { serviceWaypoint: "shop/wp", policies: [] },
      from: WP,
      ip: "10.0.0.6",
      peerIp: "10.0.9.1",
      allowed: true,
      reason: "from waypoint shop/wp",
    },
    {
      name: "a forwarded address that is the waypoint's does not make an impostor the waypoint",
      setup: { serviceWaypoint: "shop/wp", policies: [] },
      from: WP,
      ip: "10.0.9.1",
      peerIp: "10.0.0.6",
      allowed: false,
      reason: "not one of its addresses",
    },
    {
      name: "served by a waypoint: a client going around it is refused",
      setup: { serviceWaypoint: "shop/wp", policies: [] },
      from: VIEWER,
      allowed: false,
      reason: "did not come through it (bypass refused)",
    },
    {
      name: "workload waypoint: bypass refused too",
      setup: { workloadWaypoint: "shop/wp", policies: [] },
      from: VIEWER,
      allowed: false,
      reason: "bypass refused",
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const { model, api } = mesh(r.setup);
      const d = authorizeAtZtunnel(indexModel(model), api, conn(r.from, r.ip, r.peerIp));
      expect(d.allowed).toBe(r.allowed);
      expect(d.reason).toContain(r.reason);
      expect(d.enforcedBy).toBe("ztunnel");
    });
  }

  test("in Kubernetes the waypoint's pods' addresses count as its own", () => {
    const { model, api } = mesh({ serviceWaypoint: "shop/wp", policies: [] });
    model.waypoints = model.waypoints.map((w) => ({ ...w, podAddresses: ["10.244.7.7"] }));
    expect(authorizeAtZtunnel(indexModel(model), api, conn(WP, "10.0.0.6", "10.244.7.7")).allowed).toBe(true);
    expect(authorizeAtZtunnel(indexModel(model), api, conn(WP, "10.0.0.6", "10.244.7.8")).allowed).toBe(false);
  });

  test("ztunnelInbound lists the waypoints of the workload and of its Services", () => {
    const { model, api } = mesh({ serviceWaypoint: "shop/wp", workloadWaypoint: "shop/wp", policies: [L7_ALLOW] });
    const inbound = ztunnelInbound(indexModel(model), api);
    expect(names(inbound.waypoints)).toEqual(["wp"]);
    expect(inbound.policies).toEqual([]);
  });

  test("PeerAuthentication STRICT refuses plaintext before any policy", () => {
    const { model, api } = mesh({ policies: [] });
    model.peerAuthentications.push({ name: "strict", namespace: "shop", scope: { kind: "namespace" }, mode: "STRICT" });
    const index = indexModel(model);
    expect(authorizeAtZtunnel(index, api, conn()).reason).toContain("STRICT");
    expect(authorizeAtZtunnel(index, api, conn(VIEWER)).allowed).toBe(true);
  });
});

describe("the seed article's walkthrough (config/mesh.yaml through parseConfig)", () => {
  const load = (file: string) => {
    const r = parseConfig([{ path: file, text: readFileSync(new URL(`../../${file}`, import.meta.url), "utf8") }]);
    const index = indexModel(r.model);
    const api = r.model.workloads.find((w) => w.name === "product-api")!;
    const svc = index.serviceByName("ambient-ns", "product-api")!;
    return { r, index, api, svc };
  };
  const demoJwt = readTestdata("demo.jwt").trim();
  const viewer = { ip: "10.244.1.10", principal: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa" };

  test("with the waypoint: GET /get with the demo token passes the waypoint, then the ztunnel admits the waypoint", async () => {
    const { index, api, svc } = load("config/mesh.yaml");
    const pl = placement(index, { workload: api, service: svc });
    expect(pl.point).toBe("waypoint");
    expect(names(pl.requestAuthentications)).toEqual(["jwt-on-product-api"]);
    const ask = (method: string, path: string, token?: string) =>
      admitRequest(index, pl.waypoint!, { workload: api, service: svc }, {
        source: viewer,
        destination: { ip: "10.244.2.10", port: 80 },
        http: {
          method,
          path,
          host: "product-api.ambient-ns:8000",
          headers: token ? { authorization: `Bearer ${token}` } : {},
        },
      }, inlineKeySet);
    const ok = await ask("GET", "/get", demoJwt);
    expect(ok.status).toBe(200);
    expect(ok.decision?.policy).toBe("ambient-ns/require-get-on-products");
    expect(ok.stripHeaders).toEqual(["authorization"]);
    expect((await ask("GET", "/get")).status).toBe(403);
    expect((await ask("POST", "/get", demoJwt)).status).toBe(403);
    expect((await ask("GET", "/headers", demoJwt)).status).toBe(403);
    const bad = await ask("GET", "/get", demoJwt.slice(0, -4) + "AAAA");
    expect({ status: bad.status, reason: bad.reason }).toEqual({
      status: 401,
      reason: "request authentication failed: Jwt verification fails",
    });
    const hop = authorizeAtZtunnel(index, api, {
      source: { ip: "10.244.2.20", principal: pl.waypoint!.identity },
      destination: { port: 80 },
    });
    expect(hop.allowed).toBe(true);
    const bypass = authorizeAtZtunnel(index, api, { source: viewer, destination: { port: 80 } });
    expect(bypass.allowed).toBe(false);
  });

  test("without the waypoint: the ztunnel denies every connection and says why", () => {
    const { index, api, svc } = load("config/mesh-no-waypoint.yaml");
    const pl = placement(index, { workload: api, service: svc });
    expect(pl.point).toBe("ztunnel");
    expect(pl.failClosed.map((f) => f.policy.name)).toEqual(["require-get-on-products"]);
    const d = authorizeAtZtunnel(index, api, { source: viewer, destination: { port: 80 } });
    expect(d.allowed).toBe(false);
    expect(d.policy).toBe("ambient-ns/require-get-on-products");
    expect(d.reason).toContain("no waypoint serves ambient-ns/product-api");
  });
});
