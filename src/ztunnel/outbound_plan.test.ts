import { describe, expect, test } from "bun:test";
import { indexModel } from "../model/mod.ts";
import { planOutbound, RoundRobin } from "./outbound_plan.ts";
import { meshModel, service, waypoint, workload } from "../../test/support/mod.ts";

const viewer = workload("product-viewer", "shop", "10.244.1.10", "node-a");
const api = workload("product-api", "shop", "10.244.2.10", "node-b");
const api2 = workload("product-api-2", "shop", "10.244.2.11", "node-b", { serviceAccount: "product-api" });
const local = workload("cart", "shop", "10.244.1.11", "node-a");
const legacy = workload("legacy", "old", "10.244.2.30", "node-b", { ambient: false });
const notReady = workload("product-api-3", "shop", "10.244.2.12", "node-b", { serviceAccount: "product-api", ready: false });
const apiSvc = service("product-api", "shop", "10.96.0.20", [{ port: 8000, targetPort: 80 }], [api, api2, notReady]);
const cartSvc = service("cart", "shop", "10.96.0.30", [{ port: 8000, targetPort: 8080 }], [local]);
const wp = waypoint("shop-waypoint", "shop", "10.244.3.5");
const base = { workloads: [viewer, api, api2, local, legacy, notReady], services: [apiSvc, cartSvc], waypoints: [wp] };

describe("planOutbound", () => {
  test("a Service VIP resolves round robin over ready endpoints, to HBONE at podIP:15008", () => {
    const idx = indexModel(meshModel(base));
    const rr = new RoundRobin();
    const picks = [0, 1, 2, 3].map(() => planOutbound(idx, "node-a", { address: "10.96.0.20", port: 8000 }, rr));
    expect(picks.map((p) => p.kind === "hbone" && p.authority)).toEqual(["10.244.2.10:80", "10.244.2.11:80", "10.244.2.10:80", "10.244.2.11:80"]);
    const p = picks[0]!;
    if (p.kind !== "hbone") throw new Error("expected hbone");
    expect(p.hboneAddress).toBe("10.244.2.10");
    expect(p.hbonePort).toBe(15008);
    expect(p.expectedIdentities).toEqual(["spiffe://cluster.local/ns/shop/sa/product-api"]);
    expect(p.service?.name).toBe("product-api");
    expect(p.sameNode).toBe(false);
  });

  test("a destination on this node is marked same-node (served in-process)", () => {
    const p = planOutbound(indexModel(meshModel(base)), "node-a", { address: "10.96.0.30", port: 8000 }, new RoundRobin());
    expect(p).toMatchObject({ kind: "hbone", sameNode: true, authority: "10.244.1.11:8080", targetPort: 8080 });
  });

  test("a pod address is tunnelled to itself with its own port", () => {
    const p = planOutbound(indexModel(meshModel(base)), "node-a", { address: "10.244.2.11", port: 9090 }, new RoundRobin());
    expect(p).toMatchObject({ kind: "hbone", authority: "10.244.2.11:9090", hboneAddress: "10.244.2.11" });
  });

  test("a Service served by a waypoint goes to the waypoint with the VIP as target", () => {
    const svc = { ...apiSvc, waypoint: { gateway: "shop/shop-waypoint", via: "service-label" as const } };
    const idx = indexModel(meshModel({ ...base, services: [svc, cartSvc] }));
    const p = planOutbound(idx, "node-a", { address: "10.96.0.20", port: 8000 }, new RoundRobin());
    expect(p).toMatchObject({
      kind: "hbone",
      hboneAddress: "10.244.3.5",
      hbonePort: 15008,
      authority: "10.96.0.20:8000",
      expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/shop-waypoint"],
      sameNode: false,
    });
  });

  test("a workload with its own waypoint is reached through it", () => {
    const w = { ...api, waypoint: { gateway: "shop/shop-waypoint", via: "pod-label" as const } };
    const idx = indexModel(meshModel({ ...base, workloads: [viewer, w] }));
    const p = planOutbound(idx, "node-a", { address: "10.244.2.10", port: 80 }, new RoundRobin());
    expect(p).toMatchObject({ kind: "hbone", hboneAddress: "10.244.3.5", authority: "10.244.2.10:80" });
  });

  test("a missing waypoint fails closed", () => {
    const svc = { ...apiSvc, waypoint: { gateway: "shop/nope", via: "namespace-label" as const } };
    const p = planOutbound(indexModel(meshModel({ ...base, services: [svc] })), "node-a", { address: "10.96.0.20", port: 8000 }, new RoundRobin());
    expect(p.kind).toBe("deny");
    expect(p.kind === "deny" && p.reason).toContain("shop/nope does not exist");
  });

  test("outside the mesh: passthrough, or deny under outboundPolicy deny", () => {
    const dst = { address: "192.0.2.7", port: 443 };
    expect(planOutbound(indexModel(meshModel(base)), "node-a", dst, new RoundRobin())).toMatchObject({ kind: "passthrough", address: "192.0.2.7", port: 443 });
    const m = meshModel(base);
    m.meshConfig.outboundPolicy = "deny";
    expect(planOutbound(indexModel(m), "node-a", dst, new RoundRobin()).kind).toBe("deny");
  });

  test("a known workload outside ambient is reached directly, even under outboundPolicy deny", () => {
    const m = meshModel(base);
    m.meshConfig.outboundPolicy = "deny";
    expect(planOutbound(indexModel(m), "node-a", { address: "10.244.2.30", port: 80 }, new RoundRobin())).toMatchObject({
      kind: "passthrough",
      workload: { name: "legacy" },
    });
  });

  test("unknown service port, no ready endpoint, or a ztunnel port as target are refused", () => {
    const idx = indexModel(meshModel(base));
    expect(planOutbound(idx, "node-a", { address: "10.96.0.20", port: 9999 }, new RoundRobin()).kind).toBe("deny");
    expect(planOutbound(idx, "node-a", { address: "10.244.2.10", port: 15008 }, new RoundRobin()).kind).toBe("deny");
    const down = service("down", "shop", "10.96.0.40", [{ port: 80, targetPort: 80 }], [notReady]);
    const idx2 = indexModel(meshModel({ ...base, services: [down] }));
    expect(planOutbound(idx2, "node-a", { address: "10.96.0.40", port: 80 }, new RoundRobin())).toMatchObject({
      kind: "deny",
      reason: expect.stringContaining("no ready endpoint"),
    });
  });

  test("a named targetPort resolves on each endpoint", () => {
    const named = workload("named", "shop", "10.244.2.40", "node-b", { ports: [{ name: "http", port: 8081 }] });
    const svc = service("named", "shop", "10.96.0.50", [{ port: 80, targetPort: 0 }], [named]);
    svc.ports[0]!.targetPort = "http";
    svc.endpoints[0]!.ports = {};
    const p = planOutbound(indexModel(meshModel({ workloads: [named], services: [svc] })), "node-a", { address: "10.96.0.50", port: 80 }, new RoundRobin());
    expect(p).toMatchObject({ kind: "hbone", authority: "10.244.2.40:8081" });
  });
});

test("endpoint readiness follows the configuration version even when the Service object is reused", () => {
  const a = workload("a", "shop", "10.244.2.50", "node-b");
  const svc = service("s", "shop", "10.96.0.60", [{ port: 80, targetPort: 80 }], [a]);
  const rr = new RoundRobin();
  const v1 = indexModel(meshModel({ workloads: [a], services: [svc] }));
  expect(planOutbound(v1, "node-a", { address: "10.96.0.60", port: 80 }, rr).kind).toBe("hbone");
  // Same Service object, the pod became unready in the next version.
  const v2 = indexModel(meshModel({ workloads: [{ ...a, ready: false }], services: [svc] }));
  expect(planOutbound(v2, "node-a", { address: "10.96.0.60", port: 80 }, rr).kind).toBe("deny");
});
