import { describe, expect, test } from "bun:test";
import {
  authorizationPoliciesFor,
  emptyModel,
  indexModel,
  peerAuthenticationModeFor,
  requestAuthenticationsFor,
  scopeSelectsWorkload,
  targetRefsSelect,
} from "./mod.ts";
import type {
  AuthorizationPolicy,
  MeshModel,
  PeerAuthentication,
  PolicyScope,
  Service,
} from "./mod.ts";
import { service, waypoint, workload } from "../../test/support/mod.ts";

const wl = (ns: string, name: string, labels: Record<string, string> = {}) => workload(name, ns, "10.0.0.1", "n1", { labels });
const svc = (ns: string, name: string) => service(name, ns, "10.96.0.1", [], []);
const wp = (ns: string, name: string) => waypoint(name, ns, "10.1.0.1");
const ap = (ns: string, name: string, scope: PolicyScope): AuthorizationPolicy => ({
  name,
  namespace: ns,
  action: "ALLOW",
  scope,
  rules: [{}],
  hasL7: false,
});
const mc = emptyModel().meshConfig;

describe("scopeSelectsWorkload", () => {
  const b = wl("ns1", "b", { app: "b", version: "v1" });
  const cases: [string, PolicyScope, string, boolean][] = [
    ["root scope selects every workload", { kind: "root" }, "istio-system", true],
    ["namespace scope selects its namespace", { kind: "namespace" }, "ns1", true],
    ["namespace scope ignores other namespaces", { kind: "namespace" }, "ns2", false],
    ["selector subset matches", { kind: "selector", matchLabels: { app: "b" } }, "ns1", true],
    ["selector with a missing label", { kind: "selector", matchLabels: { app: "b", tier: "x" } }, "ns1", false],
    ["selector in another namespace", { kind: "selector", matchLabels: { app: "b" } }, "ns2", false],
    [
      "selector in the root namespace applies mesh-wide",
      { kind: "selector", matchLabels: { app: "b" } },
      "istio-system",
      true,
    ],
    [
      "targetRefs never select a workload",
      { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "b", namespace: "ns1" }] },
      "ns1",
      false,
    ],
  ];
  for (const [name, scope, ns, want] of cases) {
    test(name, () => expect(scopeSelectsWorkload(scope, ns, b, mc)).toBe(want));
  }
});

describe("targetRefsSelect", () => {
  const s = svc("ns1", "b");
  const w = wp("ns1", "waypoint");
  test("Service ref", () => {
    expect(
      targetRefsSelect(
        { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "b", namespace: "" }] },
        "ns1",
        { service: s },
      ),
    ).toBe(true);
    expect(
      targetRefsSelect(
        { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "c", namespace: "ns1" }] },
        "ns1",
        { service: s },
      ),
    ).toBe(false);
    expect(
      targetRefsSelect(
        { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "b", namespace: "ns1" }] },
        "ns1",
        { waypoint: w },
      ),
    ).toBe(false);
  });
  test("Gateway ref", () => {
    const scope: PolicyScope = {
      kind: "targetRefs",
      targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint", namespace: "ns1" }],
    };
    expect(targetRefsSelect(scope, "ns1", { waypoint: w })).toBe(true);
    expect(targetRefsSelect(scope, "ns1", { service: s })).toBe(false);
    expect(targetRefsSelect(scope, "ns1", { waypoint: wp("ns2", "waypoint") })).toBe(false);
  });
  test("non-targetRefs scopes select no service", () => {
    expect(targetRefsSelect({ kind: "namespace" }, "ns1", { service: s, waypoint: w })).toBe(false);
  });
});

describe("policiesFor and peer authentication", () => {
  const m: MeshModel = emptyModel();
  const b = wl("ns1", "b", { app: "b" });
  m.workloads.push(b);
  m.services.push(svc("ns1", "b"));
  m.waypoints.push(wp("ns1", "waypoint"));
  m.authorizationPolicies.push(
    ap("istio-system", "global", { kind: "root" }),
    ap("ns1", "ns-wide", { kind: "namespace" }),
    ap("ns1", "sel", { kind: "selector", matchLabels: { app: "b" } }),
    ap("ns1", "sel-other", { kind: "selector", matchLabels: { app: "c" } }),
    ap("ns2", "other-ns", { kind: "namespace" }),
    ap("ns1", "svc", { kind: "targetRefs", targetRefs: [{ group: "", kind: "Service", name: "b", namespace: "ns1" }] }),
    ap("ns1", "gw", {
      kind: "targetRefs",
      targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint", namespace: "ns1" }],
    }),
  );
  m.requestAuthentications.push({
    name: "jwt",
    namespace: "ns1",
    scope: { kind: "selector", matchLabels: { app: "b" } },
    jwtRules: [],
  });
  const idx = indexModel(m);
  const names = (ps: { name: string }[]) => ps.map((p) => p.name);
  test("workload only", () =>
    expect(names(authorizationPoliciesFor(idx, { workload: b }))).toEqual(["global", "ns-wide", "sel"]));
  test("workload through service and waypoint", () =>
    expect(names(authorizationPoliciesFor(idx, { workload: b, service: m.services[0], waypoint: m.waypoints[0] })))
      .toEqual(["global", "ns-wide", "sel", "svc", "gw"]));
  test("request authentications", () =>
    expect(names(requestAuthenticationsFor(idx, { workload: b }))).toEqual(["jwt"]));

  const pa = (
    ns: string,
    name: string,
    scope: PolicyScope,
    mode: PeerAuthentication["mode"],
    portLevelMtls?: Record<number, PeerAuthentication["mode"]>,
  ): PeerAuthentication => ({ name, namespace: ns, scope, mode, portLevelMtls });
  const modeWith = (pas: PeerAuthentication[], port?: number) => {
    const mm = emptyModel();
    mm.workloads.push(b);
    mm.peerAuthentications.push(...pas);
    return peerAuthenticationModeFor(indexModel(mm), b, port);
  };
  test("default PERMISSIVE", () => expect(modeWith([])).toBe("PERMISSIVE"));
  test("mesh-wide STRICT", () =>
    expect(modeWith([pa("istio-system", "m", { kind: "root" }, "STRICT")])).toBe("STRICT"));
  test("namespace overrides mesh", () =>
    expect(
      modeWith([
        pa("istio-system", "m", { kind: "root" }, "STRICT"),
        pa("ns1", "n", { kind: "namespace" }, "PERMISSIVE"),
      ]),
    ).toBe("PERMISSIVE"));
  test("workload overrides namespace", () =>
    expect(
      modeWith([
        pa("ns1", "w", { kind: "selector", matchLabels: { app: "b" } }, "STRICT"),
        pa("ns1", "n", { kind: "namespace" }, "PERMISSIVE"),
      ]),
    ).toBe("STRICT"));
  test("UNSET inherits", () =>
    expect(
      modeWith([
        pa("ns1", "w", { kind: "selector", matchLabels: { app: "b" } }, "UNSET"),
        pa("ns1", "n", { kind: "namespace" }, "STRICT"),
      ]),
    ).toBe("STRICT"));
  test("other namespace ignored", () =>
    expect(modeWith([pa("ns2", "n", { kind: "namespace" }, "STRICT")])).toBe("PERMISSIVE"));
  test("portLevelMtls", () => {
    const list = [pa("ns1", "w", { kind: "selector", matchLabels: { app: "b" } }, "STRICT", { 8080: "PERMISSIVE" })];
    expect(modeWith(list, 8080)).toBe("PERMISSIVE");
    expect(modeWith(list, 9090)).toBe("STRICT");
    expect(modeWith(list)).toBe("STRICT");
  });
});
