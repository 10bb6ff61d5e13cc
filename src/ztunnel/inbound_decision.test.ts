import { describe, expect, test } from "bun:test";
import { indexModel } from "../model/mod.ts";
import type { AuthorizationPolicy, PeerAuthentication, PolicyRule } from "../model/mod.ts";
import { trustedSource } from "../policy/mod.ts";
import { decideHboneInbound, decidePlaintextInbound } from "./inbound_decision.ts";
import { meshModel, waypoint, workload } from "../../test/support/mod.ts";

const viewer = workload("product-viewer", "shop", "10.244.1.10", "node-a");
const api = workload("product-api", "shop", "10.244.2.10", "node-b");
const other = workload("intruder", "other", "10.244.1.20", "node-a");
const VIEWER = viewer.identity;
const INTRUDER = other.identity;

function policy(name: string, action: AuthorizationPolicy["action"], rules: PolicyRule[]): AuthorizationPolicy {
  return { name, namespace: "shop", action, scope: { kind: "selector", matchLabels: { app: "product-api" } }, rules, hasL7: false };
}

function decide(policies: AuthorizationPolicy[], peer: string, peerIp = "10.99.0.11", forwarded?: string, port = 80) {
  const idx = indexModel(meshModel({ workloads: [viewer, api, other], authorizationPolicies: policies }));
  return decideHboneInbound(idx, "node-b", {
    authority: `10.244.2.10:${port}`,
    peerIdentity: peer,
    peerIp,
    forwarded,
    connectionIp: "10.244.2.10",
  });
}

describe("HBONE inbound: L4 authorization at the destination ztunnel", () => {
  const cases: { name: string; policies: AuthorizationPolicy[]; peer: string; fwd?: string; port?: number; allowed: boolean }[] = [
    { name: "no policy allows", policies: [], peer: VIEWER, allowed: true },
    { name: "ALLOW by principal admits the named client", policies: [policy("p", "ALLOW", [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/product-viewer"] } }] }])], peer: VIEWER, allowed: true },
    { name: "ALLOW by principal refuses anyone else", policies: [policy("p", "ALLOW", [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/product-viewer"] } }] }])], peer: INTRUDER, allowed: false },
    { name: "DENY by namespace refuses that namespace", policies: [policy("d", "DENY", [{ from: [{ source: { namespaces: ["other"] } }] }])], peer: INTRUDER, allowed: false },
    { name: "DENY by namespace admits another namespace", policies: [policy("d", "DENY", [{ from: [{ source: { namespaces: ["other"] } }] }])], peer: VIEWER, allowed: true },
    { name: "ALLOW by port admits that port", policies: [policy("p", "ALLOW", [{ to: [{ operation: { ports: ["80"] } }] }])], peer: VIEWER, allowed: true },
    { name: "ALLOW by port refuses another port", policies: [policy("p", "ALLOW", [{ to: [{ operation: { ports: ["80"] } }] }])], peer: VIEWER, port: 8080, allowed: false },
    { name: "DENY by ipBlocks uses the client's address from a trusted forwarded header", policies: [policy("d", "DENY", [{ from: [{ source: { ipBlocks: ["10.244.1.0/24"] } }] }])], peer: VIEWER, fwd: 'for="10.244.1.10:40000"', allowed: false },
    { name: "ALLOW by ipBlocks: a forwarded address the peer does not own is ignored", policies: [policy("p", "ALLOW", [{ from: [{ source: { ipBlocks: ["10.244.1.10/32"] } }] }])], peer: INTRUDER, fwd: 'for="10.244.1.10"', allowed: false },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decide(c.policies, c.peer, "10.99.0.11", c.fwd, c.port);
      expect(d.ok).toBe(c.allowed);
      if (!d.ok) expect(d.status).toBe(401);
    });
  }

  test("a policy with L7 attributes and no waypoint fails closed", () => {
    const p = { ...policy("l7", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }]), hasL7: true };
    const d = decide([p], VIEWER);
    expect(d).toMatchObject({ ok: false, status: 401 });
    expect(!d.ok && d.reason).toContain("waypoint");
  });
});

describe("HBONE inbound: target checks", () => {
  const idx = indexModel(meshModel({ workloads: [viewer, api, other] }));
  test("the target must be the address the connection was made to", () => {
    const d = decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:80", peerIdentity: VIEWER, peerIp: "10.99.0.11", connectionIp: "10.244.2.99" });
    expect(d).toMatchObject({ ok: false, status: 400 });
  });
  test("a workload of another node, or an unknown address, is not served here", () => {
    expect(decideHboneInbound(idx, "node-b", { authority: "10.244.1.10:80", peerIdentity: VIEWER, peerIp: "10.99.0.11" })).toMatchObject({ ok: false, status: 503 });
    expect(decideHboneInbound(idx, "node-b", { authority: "10.9.9.9:80", peerIdentity: VIEWER, peerIp: "10.99.0.11" })).toMatchObject({ ok: false, status: 503 });
  });
  test("a hostname or garbage target is a bad request; a ztunnel port is refused", () => {
    expect(decideHboneInbound(idx, "node-b", { authority: "api.shop:80", peerIdentity: VIEWER, peerIp: "x" })).toMatchObject({ status: 400 });
    expect(decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:15006", peerIdentity: VIEWER, peerIp: "x" })).toMatchObject({ status: 400 });
  });
});

describe("waypoint: the destination ztunnel admits only the waypoint", () => {
  const wp = waypoint("api-waypoint", "shop", "10.244.3.5", { waypointFor: "workload" });
  const served = { ...api, waypoint: { gateway: "shop/api-waypoint", via: "pod-label" as const } };
  const idx = indexModel(meshModel({ workloads: [viewer, served], waypoints: [wp] }));
  test("a client that bypasses the waypoint gets 401", () => {
    const d = decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:80", peerIdentity: VIEWER, peerIp: "10.99.0.11" });
    expect(d).toMatchObject({ ok: false, status: 401 });
    expect(!d.ok && d.reason).toContain("bypass");
  });
  test("the waypoint is admitted, and its forwarded client address is believed", () => {
    const d = decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:80", peerIdentity: wp.identity, peerIp: "10.244.3.5", forwarded: 'for="10.244.1.10:5000"' });
    expect(d).toMatchObject({ ok: true, sourceIp: "10.244.1.10" });
  });
  // The finding: a Pod running as the waypoint's service account (here with its certificate, as if it
  // had one) dials the destination pod directly.
  const impostorIp = "10.244.2.30";
  test("the waypoint's identity from another address is not the waypoint: 401, whatever it forwards", () => {
    const d = decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:80", peerIdentity: wp.identity, peerIp: impostorIp, forwarded: 'for="10.244.1.10:5000"', connectionIp: "10.244.2.10" });
    expect(d).toMatchObject({ ok: false, status: 401, sourceIp: impostorIp });
    expect(!d.ok && d.reason).toContain("not one of its addresses (10.244.3.5)");
    expect(trustedSource(idx, wp.identity, impostorIp, 'for="10.244.1.10:5000"').ip).toBe(impostorIp);
  });
  test("also toward a workload no waypoint serves", () => {
    const d = decideHboneInbound(idx, "node-a", { authority: "10.244.1.10:80", peerIdentity: wp.identity, peerIp: impostorIp });
    expect(d).toMatchObject({ ok: false, status: 401 });
  });
  test("in Kubernetes, the waypoint's pods (podAddresses) are the waypoint too", () => {
    const k8s = indexModel(meshModel({ workloads: [viewer, served], waypoints: [{ ...wp, addresses: ["10.96.0.99"], podAddresses: ["10.244.3.7"] }] }));
    const d = decideHboneInbound(k8s, "node-b", { authority: "10.244.2.10:80", peerIdentity: wp.identity, peerIp: "10.244.3.7", forwarded: 'for="10.244.1.10"' });
    expect(d).toMatchObject({ ok: true, sourceIp: "10.244.1.10" });
    expect(decideHboneInbound(k8s, "node-b", { authority: "10.244.2.10:80", peerIdentity: wp.identity, peerIp: impostorIp })).toMatchObject({ ok: false, status: 401 });
  });
});

describe("a WorkloadEntry written with a pod's address takes nothing from the pod", () => {
  const squatter = workload("squatter", "other", "10.244.2.10", "vm-1", { kind: "WorkloadEntry", uid: "WorkloadEntry/other/squatter" });
  for (const order of ["after", "before"] as const) {
    const workloads = order === "after" ? [viewer, api, squatter] : [squatter, viewer, api];
    const idx = indexModel(meshModel({ workloads }));
    test(`(listed ${order} the pod) the pod's own ztunnel still serves the pod`, () => {
      const d = decideHboneInbound(idx, "node-b", { authority: "10.244.2.10:80", peerIdentity: VIEWER, peerIp: "10.99.0.11", connectionIp: "10.244.2.10" });
      expect(d).toMatchObject({ ok: true, workload: { uid: "Pod/shop/product-api" } });
    });
    test(`(listed ${order} the pod) a forwarded for= with the pod's address is not believed from the entry's identity`, () => {
      expect(trustedSource(idx, squatter.identity, "10.99.0.11", 'for="10.244.2.10"').ip).toBe("10.99.0.11");
    });
  }
});

describe("plaintext inbound (15006)", () => {
  const outsider = "10.244.1.50";
  const pa = (mode: PeerAuthentication["mode"]): PeerAuthentication => ({ name: "pa", namespace: "shop", scope: { kind: "namespace" }, mode });
  test("STRICT refuses a client outside the mesh", () => {
    const idx = indexModel(meshModel({ workloads: [api], peerAuthentications: [pa("STRICT")] }));
    const d = decidePlaintextInbound(idx, "node-b", { address: "10.244.2.10", port: 80 }, outsider);
    expect(d).toMatchObject({ ok: false, status: 401 });
    expect(!d.ok && d.reason).toContain("STRICT");
  });
  test("PERMISSIVE admits it with no principal, and L4 policies still apply", () => {
    const byIp = policy("ip", "DENY", [{ from: [{ source: { ipBlocks: ["10.244.1.50/32"] } }] }]);
    const idx = indexModel(meshModel({ workloads: [api], peerAuthentications: [pa("PERMISSIVE")] }));
    expect(decidePlaintextInbound(idx, "node-b", { address: "10.244.2.10", port: 80 }, outsider).ok).toBe(true);
    const idx2 = indexModel(meshModel({ workloads: [api], peerAuthentications: [pa("PERMISSIVE")], authorizationPolicies: [byIp] }));
    expect(decidePlaintextInbound(idx2, "node-b", { address: "10.244.2.10", port: 80 }, outsider).ok).toBe(false);
    const needsPrincipal = policy("pr", "ALLOW", [{ from: [{ source: { principals: ["*"] } }] }]);
    const idx3 = indexModel(meshModel({ workloads: [api], authorizationPolicies: [needsPrincipal] }));
    expect(decidePlaintextInbound(idx3, "node-b", { address: "10.244.2.10", port: 80 }, outsider).ok).toBe(false);
  });
});
