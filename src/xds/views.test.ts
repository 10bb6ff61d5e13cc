import { describe, expect, test } from "bun:test";
import { emptyModel, type MeshModel } from "../model/mod.ts";
import { placeAll, viewOf } from "./views.ts";
import { service, waypoint, workload } from "../../test/support/mod.ts";

const wl = (name: string, ns: string, node: string, labels: Record<string, string>, waypoint?: string) =>
  workload(name, ns, [], node, { labels, waypoint: waypoint ? { gateway: waypoint, via: "pod-label" } : undefined });

function mesh(): MeshModel {
  const m = emptyModel();
  m.workloads = [
    wl("api", "shop", "n1", { app: "api" }),
    wl("web", "shop", "n2", { app: "web" }),
    wl("db", "data", "n2", { app: "db" }),
    wl("direct", "shop", "n3", { app: "direct" }, "shop/direct-wp"),
  ];
  m.services = [
    service("api", "shop", "10.96.0.1", [{ port: 80, targetPort: 8080 }], [m.workloads[0]!], { waypoint: { gateway: "shop/wp", via: "service-label" } }),
  ];
  m.waypoints = [waypoint("wp", "shop", "10.0.9.1"), waypoint("direct-wp", "shop", [], { waypointFor: "workload" })];
  const ap = (name: string, ns: string, scope: MeshModel["authorizationPolicies"][number]["scope"], hasL7 = false) =>
    ({ name, namespace: ns, action: "ALLOW" as const, scope, rules: [{}], hasL7 });
  m.authorizationPolicies = [
    ap("api-l4", "shop", { kind: "selector", matchLabels: { app: "api" } }),
    ap("shop-wide", "shop", { kind: "namespace" }),
    ap("mesh-wide", "istio-system", { kind: "root" }),
    ap("svc-l7", "shop", { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop" }] }, true),
    ap("gw-l7", "shop", { kind: "targetRefs", targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "direct-wp", namespace: "shop" }] }, true),
  ];
  m.peerAuthentications = [{ name: "strict", namespace: "data", scope: { kind: "namespace" }, mode: "STRICT" }];
  m.requestAuthentications = [{ name: "jwt", namespace: "shop", scope: { kind: "selector", matchLabels: { app: "api" } }, jwtRules: [{ issuer: "x" }] }];
  m.httpRoutes = [
    { name: "api-route", namespace: "shop", parentRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop" }], hostnames: [], rules: [] },
    { name: "other", namespace: "shop", parentRefs: [{ group: "", kind: "Service", name: "nope", namespace: "shop" }], hostnames: [], rules: [] },
  ];
  return m;
}

const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

describe("per-proxy views", () => {
  test("a ztunnel gets every workload and service, and only the policies that select its node's workloads", () => {
    const m = mesh();
    const n1 = viewOf(m, { kind: "ztunnel", node: "n1" });
    expect(n1.workloads.length).toBe(4);
    expect(n1.services.length).toBe(1);
    expect(names(n1.authorizationPolicies)).toEqual(["api-l4", "mesh-wide", "shop-wide"]);
    expect(n1.peerAuthentications).toEqual([]);
    expect(n1.requestAuthentications).toEqual([]);
    expect(n1.httpRoutes).toEqual([]);
    const n2 = viewOf(m, { kind: "ztunnel", node: "n2" });
    expect(names(n2.authorizationPolicies)).toEqual(["mesh-wide", "shop-wide"]);
    expect(names(n2.peerAuthentications)).toEqual(["strict"]);
    const empty = viewOf(m, { kind: "ztunnel", node: "unknown" });
    expect(empty.authorizationPolicies).toEqual([]);
    expect(empty.workloads.length).toBe(4);
  });

  test("a waypoint gets the policies, RequestAuthentications and routes of what it serves", () => {
    const m = mesh();
    const wp = viewOf(m, { kind: "waypoint", namespace: "shop", name: "wp" });
    expect(names(wp.authorizationPolicies)).toEqual(["api-l4", "mesh-wide", "shop-wide", "svc-l7"]);
    expect(names(wp.requestAuthentications)).toEqual(["jwt"]);
    expect(names(wp.httpRoutes)).toEqual(["api-route"]);
    const direct = viewOf(m, { kind: "waypoint", namespace: "shop", name: "direct-wp" });
    expect(names(direct.authorizationPolicies)).toEqual(["gw-l7", "mesh-wide", "shop-wide"]);
    expect(direct.httpRoutes).toEqual([]);
  });

  test("placement lists every node with workloads and every waypoint", () => {
    expect([...placeAll(mesh()).keys()].sort()).toEqual([
      "waypoint/shop/direct-wp",
      "waypoint/shop/wp",
      "ztunnel/n1",
      "ztunnel/n2",
      "ztunnel/n3",
    ]);
  });
});
