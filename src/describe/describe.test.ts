import { describe as group, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../config/mod.ts";
import { indexModel, type ModelIndex } from "../model/mod.ts";
import {
  describe,
  formatDescription,
  type LiveFacts,
  parseAccessLog,
  parseTarget,
  type PolicyPlacementRow,
  type ServiceDescription,
  type WorkloadDescription,
} from "./mod.ts";

const ROOT = join(import.meta.dir, "..", "..");
function load(path: string): ModelIndex {
  return indexModel(parseConfig([{ path, text: readFileSync(join(ROOT, path), "utf8") }]).model);
}
const withWaypoint = load("config/mesh.yaml");
const noWaypoint = load("config/mesh-no-waypoint.yaml");
const mixed = load("src/describe/testdata/mixed.yaml");

const pod = (index: ModelIndex, ref: string, live?: LiveFacts) => describe(index, parseTarget("pod", ref), { live }) as WorkloadDescription;
const svc = (index: ModelIndex, ref: string, live?: LiveFacts) => describe(index, parseTarget("service", ref), { live }) as ServiceDescription;
const policy = (d: { policies: PolicyPlacementRow[] }, key: string) => d.policies.find((p) => p.policy === key);

group("parseTarget", () => {
  test.each([
    ["pod", "ambient-ns/product-api", { kind: "Pod", namespace: "ambient-ns", name: "product-api" }],
    ["po", "a/b", { kind: "Pod", namespace: "a", name: "b" }],
    ["workloadentry", "shop/vm-1", { kind: "WorkloadEntry", namespace: "shop", name: "vm-1" }],
    ["service", "product-api.ambient-ns", { kind: "Service", namespace: "ambient-ns", name: "product-api" }],
    ["svc", "product-api.ambient-ns.svc.cluster.local", { kind: "Service", namespace: "ambient-ns", name: "product-api" }],
    ["service", "ambient-ns/product-api", { kind: "Service", namespace: "ambient-ns", name: "product-api" }],
  ])("%s %s", (kind, ref, want) => expect(parseTarget(kind, ref)).toEqual(want as never));

  test.each([["pod", "product-api"], ["service", "product-api"], ["deployment", "a/b"]])("%s %s is a usage error", (kind, ref) => {
    expect(() => parseTarget(kind, ref)).toThrow(expect.objectContaining({ code: "MESH_USAGE" }));
  });

  test("an unknown workload names the close ones", () => {
    expect(() => pod(withWaypoint, "ambient-ns/product-ap")).toThrow(/No Pod ambient-ns\/product-ap in the configuration: did you mean ambient-ns\/product-api/);
  });
});

group("describe offline (config/mesh.yaml, config/mesh-no-waypoint.yaml, mixed fixture)", () => {
  test("captured pod whose Service has a waypoint: the waypoint enforces L4 and L7; the pod address is refused", () => {
    const d = pod(withWaypoint, "ambient-ns/product-api");
    expect(d.capture).toMatchObject({ captured: true, effective: null, namespace: { name: "ambient-ns", label: "ambient", enrolled: true } });
    expect(d.capture.reasons[0]).toBe("namespace ambient-ns is labelled istio.io/dataplane-mode=ambient");
    expect(d.ztunnel).toMatchObject({ proxy: "ztunnel/node-b", connected: null });
    expect(d.identity).toBe("spiffe://cluster.local/ns/ambient-ns/sa/product-api-sa");
    expect(d.services.map((s) => [s.host, s.vip, s.ports])).toEqual([["product-api.ambient-ns", "10.96.0.20", ["8000 -> 80 (http)"]]]);
    expect(d.waypoints).toEqual([expect.objectContaining({
      gateway: "ambient-ns/product-api-waypoint",
      binding: "service-label",
      via: "istio.io/use-waypoint on Service ambient-ns/product-api",
      servesFor: "Service product-api.ambient-ns",
      exists: true,
      addresses: ["10.244.2.20"],
    })]);
    expect(d.inbound.map((p) => [p.via, p.point, p.deniesAll])).toEqual([
      ["Service product-api.ambient-ns (10.96.0.20)", "waypoint", false],
      ["pod address 10.244.2.10", "ztunnel", true],
    ]);
    expect(policy(d, "ambient-ns/require-get-on-products")).toMatchObject({
      kind: "AuthorizationPolicy",
      action: "ALLOW",
      layer: "L7",
      attachment: "selector app=product-api",
      effect: "enforced",
      enforcedAt: ["waypoint ambient-ns/product-api-waypoint (traffic to Service product-api.ambient-ns)"],
    });
    expect(policy(d, "ambient-ns/jwt-on-product-api")).toMatchObject({ kind: "RequestAuthentication", effect: "enforced" });
    expect(d.peerAuthentication).toMatchObject({ mode: "PERMISSIVE", decidedBy: "default (no PeerAuthentication sets a mode)" });
    expect(d.connections).toBeNull();
    expect(d.warnings).toEqual([]);
  });

  test("pod behind an L7 policy with no waypoint: the ztunnel denies everything", () => {
    const d = pod(noWaypoint, "ambient-ns/product-api");
    expect(d.capture.captured).toBe(true);
    expect(d.waypoints).toEqual([]);
    expect(d.inbound.every((p) => p.point === "ztunnel" && p.deniesAll)).toBe(true);
    expect(policy(d, "ambient-ns/require-get-on-products")).toMatchObject({
      layer: "L7",
      effect: "denies everything: no waypoint",
      enforcedAt: ["ztunnel of node-b (every path)"],
    });
    expect(policy(d, "ambient-ns/jwt-on-product-api")!.effect).toBe("not enforced: the ztunnel reads no HTTP and no waypoint serves ambient-ns/product-api");
    expect(formatDescription(d)).toContain("denies everything: no waypoint");
  });

  test("the calling pod (product-viewer) has no policy and no waypoint", () => {
    const d = pod(withWaypoint, "ambient-ns/product-viewer");
    expect(d.capture.captured).toBe(true);
    expect(d.ztunnel!.proxy).toBe("ztunnel/node-a");
    expect(d.policies).toEqual([]);
    expect(d.waypoints).toEqual([]);
  });

  test("pod in a namespace that is not enrolled: not captured, and why", () => {
    const d = pod(mixed, "legacy/legacy-web");
    expect(d.capture).toMatchObject({ captured: false, namespace: { name: "legacy", declared: true, label: null, enrolled: false }, workloadLabel: null });
    expect(d.capture.reasons).toEqual(["namespace legacy has no istio.io/dataplane-mode label (label it istio.io/dataplane-mode=ambient to enroll it)"]);
    expect(d.inbound.every((p) => p.point === "none")).toBe(true);
    expect(d.peerAuthentication.meaning).toBe("not in the mesh: no ztunnel applies it");
    expect(formatDescription(d)).toContain("Captured: NO");
  });

  test("pod that opts out of its enrolled namespace", () => {
    const d = pod(mixed, "shop/opted-out");
    expect(d.capture).toMatchObject({ captured: false, workloadLabel: "none" });
    expect(d.capture.reasons[0]).toBe("the Pod opts out: it is labelled istio.io/dataplane-mode=none");
    expect(policy(d, "shop/audit-all")!.effect).toBe("audit only: never allows or denies");
  });

  test("L4 policy at the ztunnel, STRICT mTLS, and a waypoint label naming a missing Gateway", () => {
    const d = pod(mixed, "shop/cart");
    expect(policy(d, "shop/cart-from-viewer")).toMatchObject({ layer: "L4", effect: "enforced", enforcedAt: ["ztunnel of node-a (every path)"] });
    expect(d.peerAuthentication).toMatchObject({ mode: "STRICT", decidedBy: "shop/strict (namespace)" });
    expect(d.waypointNotes).toEqual(["Service shop/cart is labelled istio.io/use-waypoint=ghost, but there is no istio-waypoint Gateway shop/ghost: no waypoint is bound"]);
    expect(d.services[0]!.ports).toEqual(["80 -> 8080 (http)"]);
  });

  test("pod-level waypoint (istio.io/use-waypoint on the Pod, a workload waypoint)", () => {
    const d = pod(mixed, "shop/pinned");
    expect(d.waypoints).toEqual([expect.objectContaining({ gateway: "shop/wl-only", binding: "pod-label", servesFor: "the workload itself (traffic to its address)" })]);
    expect(d.inbound).toEqual([expect.objectContaining({ via: "pod address 10.244.2.42", point: "waypoint", waypoint: "shop/wl-only", deniesAll: false })]);
  });

  test("WorkloadEntry: its node is its own name; a targetRefs policy on its Service without a waypoint fails closed", () => {
    const d = describe(mixed, parseTarget("workloadentry", "shop/vm-1")) as WorkloadDescription;
    expect(d).toMatchObject({ kind: "WorkloadEntry", node: "vm-1", addresses: ["10.0.5.1"], identity: "spiffe://cluster.local/ns/shop/sa/orders" });
    expect(d.ztunnel!.proxy).toBe("ztunnel/vm-1");
    expect(d.capture.captured).toBe(true);
    expect(policy(d, "shop/orders-get-only")!.effect).toBe("denies everything: no waypoint");
    expect(d.waypointNotes[0]).toContain("Gateway shop/wl-only is for workload traffic (istio.io/waypoint-for: workload), not service traffic");
  });

  test("service with a waypoint: endpoints, policies at the waypoint", () => {
    const d = svc(withWaypoint, "product-api.ambient-ns");
    expect(d).toMatchObject({ hostname: "product-api.ambient-ns.svc.cluster.local", vip: "10.96.0.20", ports: ["8000 -> 80 (http)"] });
    expect(d.waypoint).toMatchObject({ gateway: "ambient-ns/product-api-waypoint", binding: "service-label", exists: true });
    expect(d.endpoints).toEqual([expect.objectContaining({ workload: "ambient-ns/product-api", node: "node-b", captured: true })]);
    expect(policy(d, "ambient-ns/require-get-on-products")).toMatchObject({ effect: "enforced", enforcedAt: ["waypoint ambient-ns/product-api-waypoint"] });
  });

  test("service without its waypoint: every endpoint is denied by the ztunnel", () => {
    const d = svc(noWaypoint, "product-api.ambient-ns");
    expect(d.waypoint).toBeNull();
    expect(d.endpoints[0]!.path.deniesAll).toBe(true);
    expect(policy(d, "ambient-ns/require-get-on-products")!.effect).toBe("denies everything: no waypoint");
  });
});

group("describe with live facts", () => {
  const now = Date.parse("2025-01-01T12:00:00Z");
  const cert = (identity: string, hours: number) => ({ identity, notAfter: new Date(now + hours * 3600_000).toISOString(), issuedAt: new Date(now - 3600_000).toISOString() });
  const base = (): LiveFacts => ({
    now,
    source: "control plane 10.99.0.2:15012",
    latestVersion: 7,
    proxies: [
      { id: "ztunnel/node-b", kind: "ztunnel", node: "node-b", remote: "10.99.0.11:40000", connectedSince: "2025-01-01T11:00:00Z", ackedVersion: 7, certificates: [cert("spiffe://cluster.local/ns/ambient-ns/sa/product-api-sa", 23)] },
      { id: "waypoint/ambient-ns/product-api-waypoint", kind: "waypoint", gateway: "ambient-ns/product-api-waypoint", remote: "10.244.2.20:40001", connectedSince: "2025-01-01T11:00:00Z", ackedVersion: 6, certificates: [] },
    ],
    readiness: { "ztunnel/node-b": { ready: true, reasons: [] } },
  });

  test("connected, ready, synced ztunnel; certificate expiry; a waypoint one version behind", () => {
    const d = pod(withWaypoint, "ambient-ns/product-api", base());
    expect(d.ztunnel).toMatchObject({ connected: true, ready: true, synced: true, ackedVersion: 7, latestVersion: 7 });
    expect(d.capture.effective).toBe(true);
    expect(d.certificate).toMatchObject({ issued: true, heldBy: "ztunnel/node-b", expires: "in 23h" });
    expect(d.waypoints[0]!.connected).toBe(true);
    expect(d.waypoints[0]!.state).toContain("acked v6 of v7");
    expect(d.basedOn).toBe("control plane 10.99.0.2:15012, configuration version 7");
  });

  test("killed ztunnel: captured in the configuration but not served; NACK and missing certificate are warned", () => {
    const live = base();
    live.proxies = live.proxies!.filter((p) => p.kind === "waypoint");
    const d = pod(withWaypoint, "ambient-ns/product-api", live);
    expect(d.ztunnel).toMatchObject({ connected: false, ready: false });
    expect(d.capture).toMatchObject({ captured: true, effective: false });
    expect(d.capture.reasons.at(-1)).toContain("not connected and ready");
    expect(d.warnings).toContain("the ztunnel of node-b is not connected to the control plane");
    expect(formatDescription(d)).toContain("Captured: YES in the configuration, but NOT SERVED now");

    const nacked = base();
    nacked.proxies![0] = { ...nacked.proxies![0]!, ackedVersion: 6, nack: { version: 7, reason: "bad view", at: "2025-01-01T11:59:00Z" }, certificates: [] };
    const n = pod(withWaypoint, "ambient-ns/product-api", nacked);
    expect(n.ztunnel).toMatchObject({ synced: false, nack: { version: 7, reason: "bad view" } });
    expect(n.warnings).toEqual(expect.arrayContaining([
      "the ztunnel of node-b refused configuration v7: bad view",
      "no certificate issued for spiffe://cluster.local/ns/ambient-ns/sa/product-api-sa yet: its ztunnel cannot serve it",
    ]));
  });

  test("recent connections from the access logs: accepted and denied, with the reason", () => {
    const lines = [
      JSON.stringify({ time: "2025-01-01T11:58:00Z", level: "info", scope: "access", msg: "connection complete", direction: "inbound", reporter: "destination", src: { addr: "10.244.1.10:5000", workload: "product-viewer", namespace: "ambient-ns", identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa" }, dst: { addr: "10.244.2.10:80", workload: "product-api", namespace: "ambient-ns" }, result: "ok" }),
      "not json at all",
      JSON.stringify({ time: "2025-01-01T11:59:00Z", level: "info", scope: "ztunnel", msg: "configuration applied" }),
      JSON.stringify({ time: "2025-01-01T11:59:30Z", level: "warn", scope: "access", msg: "connection refused", direction: "inbound", reporter: "destination", src: { addr: "10.244.1.10:5001", workload: "product-viewer", namespace: "ambient-ns" }, dst: { addr: "10.244.2.10:80", workload: "product-api", namespace: "ambient-ns" }, result: "denied", reason: "bypass refused", conn_id: "abc" }),
      JSON.stringify({ time: "2025-01-01T11:59:40Z", level: "info", scope: "access", msg: "connection complete", src: { addr: "10.244.1.10:5002", workload: "product-viewer", namespace: "ambient-ns" }, dst: { addr: "10.244.9.9:80", workload: "other", namespace: "x" }, result: "ok" }),
    ].join("\n");
    const waypointLines = [
      JSON.stringify({ time: "2025-01-01T11:59:50Z", level: "info", scope: "access", msg: "request", method: "GET", path: "/headers", status: 403, details: "rbac: no ALLOW policy matched", source: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", sourceAddress: "10.244.1.10", destination: "product-api.ambient-ns.svc.cluster.local:8000", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" }),
    ].join("\n");
    const live = { ...base(), accessLog: [...parseAccessLog(lines, "ztunnel/node-b"), ...parseAccessLog(waypointLines, "waypoint/ambient-ns/product-api-waypoint")] };
    expect(live.accessLog.length).toBe(4);
    const d = pod(withWaypoint, "ambient-ns/product-api", live);
    expect(d.connections).toEqual([
      { time: "2025-01-01T11:58:00Z", proxy: "ztunnel/node-b", reporter: "destination", direction: "inbound", peer: "ambient-ns/product-viewer (10.244.1.10:5000)", result: "accepted", request: null, reason: null, id: null },
      { time: "2025-01-01T11:59:30Z", proxy: "ztunnel/node-b", reporter: "destination", direction: "inbound", peer: "ambient-ns/product-viewer (10.244.1.10:5001)", result: "denied", request: null, reason: "bypass refused", id: "abc" },
      { time: "2025-01-01T11:59:50Z", proxy: "waypoint/ambient-ns/product-api-waypoint", reporter: null, direction: "inbound", peer: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa (10.244.1.10)", result: "denied (HTTP 403)", request: "GET /headers", reason: "rbac: no ALLOW policy matched", id: "4bf92f3577b34da6a3ce929d0e0e4736" },
    ]);
    const v = pod(withWaypoint, "ambient-ns/product-viewer", live);
    expect(v.connections!.map((c) => [c.direction, c.result])).toEqual([["outbound", "accepted"], ["outbound", "denied"], ["outbound", "accepted"], ["outbound", "denied (HTTP 403)"]]);
    expect(formatDescription(d)).toContain("DENIED (HTTP 403) GET /headers: rbac: no ALLOW policy matched  [id 4bf92f3577b34da6a3ce929d0e0e4736]");
    expect(formatDescription(d)).toContain("<- ambient-ns/product-viewer (10.244.1.10:5001): DENIED: bypass refused  [id abc]");
  });

  test("one connection across hops: the source ztunnel's trace_id, and the waypoint's request line with its tunnel's", () => {
    const T = "0af7651916cd43dd8448eb211c80319c";
    const R = "4bf92f3577b34da6a3ce929d0e0e4736";
    const ztunnelA = [
      JSON.stringify({ time: "2025-01-01T11:59:51Z", level: "info", scope: "access", msg: "connection complete", direction: "outbound", reporter: "source", trace_id: T, src: { addr: "10.244.1.10", workload: "product-viewer", namespace: "ambient-ns" }, dst: { addr: "10.96.0.20:8000", hbone_addr: "10.244.2.20:15008", service: "product-api.ambient-ns.svc.cluster.local" }, waypoint: "ambient-ns/product-api-waypoint", result: "ok" }),
      JSON.stringify({ time: "2025-01-01T11:59:52Z", level: "warn", scope: "access", msg: "connection refused", direction: "outbound", reporter: "source", trace_id: "1".repeat(32), src: { addr: "10.244.1.10", workload: "product-viewer", namespace: "ambient-ns" }, dst: { addr: "10.244.2.10:80", workload: "product-api", namespace: "ambient-ns" }, result: "denied", reason: "HBONE to 10.244.2.10:80 via 10.244.2.10:15008 refused with 401" }),
    ].join("\n");
    const ztunnelB = JSON.stringify({ time: "2025-01-01T11:59:52Z", level: "warn", scope: "access", msg: "connection refused", direction: "inbound", reporter: "destination", trace_id: "1".repeat(32), src: { addr: "10.244.1.10", workload: "product-viewer", namespace: "ambient-ns" }, dst: { addr: "10.244.2.10:80", workload: "product-api", namespace: "ambient-ns" }, result: "denied", reason: "401: bypass refused" });
    const waypoint = [
      JSON.stringify({ time: "2025-01-01T11:59:50Z", level: "info", scope: "access", msg: "request", method: "GET", path: "/get", status: 403, details: "rbac: no ALLOW policy matched", source: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", sourceAddress: "10.244.1.10", destination: "product-api.ambient-ns.svc.cluster.local:8000", trace_id: R, tunnel_trace_id: T }),
      JSON.stringify({ time: "2025-01-01T11:59:50.5Z", level: "info", scope: "access", msg: "request", method: "GET", path: "/headers", status: 403, source: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", sourceAddress: "10.244.1.10", destination: "product-api.ambient-ns.svc.cluster.local:8000", trace_id: T, tunnel_trace_id: T }),
    ].join("\n");
    const live = {
      ...base(),
      accessLog: [...parseAccessLog(ztunnelA, "ztunnel/node-a"), ...parseAccessLog(ztunnelB, "ztunnel/node-b"), ...parseAccessLog(waypoint, "waypoint/ambient-ns/product-api-waypoint")],
    };
    const d = pod(withWaypoint, "ambient-ns/product-api", live);
    const byId = (id: string) => d.connections!.filter((c) => c.id === id || c.tunnelId === id).map((c) => `${c.proxy} ${c.result}`);
    expect(byId(T)).toEqual(["waypoint/ambient-ns/product-api-waypoint denied (HTTP 403)", "waypoint/ambient-ns/product-api-waypoint denied (HTTP 403)", "ztunnel/node-a accepted"]);
    expect(byId("1".repeat(32))).toEqual(["ztunnel/node-a denied", "ztunnel/node-b denied"]);
    expect(d.connections!.find((c) => c.request === "GET /get")).toMatchObject({ id: R, tunnelId: T });
    expect(d.connections!.find((c) => c.request === "GET /headers")!.tunnelId).toBeUndefined();
    const text = formatDescription(d);
    expect(text).toContain(`DENIED (HTTP 403) GET /get: rbac: no ALLOW policy matched  [id ${R}, tunnel ${T}]`);
    expect(text).toContain(`DENIED (HTTP 403) GET /headers  [id ${T}]`);
  });
});
