import { describe, expect, test } from "bun:test";
import { emptyModel, type MeshModel } from "../model/mod.ts";
import { mayIssue } from "./authorize.ts";
import type { Caller } from "./caller.ts";
import { waypoint, workload } from "../../test/support/mod.ts";

const pod = (name: string, sa: string, node: string) => workload(name, "shop", "10.0.0.1", node, { serviceAccount: sa, labels: {} });

const model: MeshModel = {
  ...emptyModel(),
  workloads: [
    pod("api-1", "product-api", "worker-a"),
    pod("api-2", "product-api", "worker-b"),
    pod("viewer-1", "product-viewer", "worker-b"),
    // A pod that runs as the waypoint's service account (a user can create one): not the waypoint.
    pod("fake-wp", "inventory-waypoint", "worker-b"),
  ],
  waypoints: [waypoint("inventory-waypoint", "shop", "10.0.9.1")],
};

const nodeA: Caller = { kind: "node", node: "worker-a" };
const nodeB: Caller = { kind: "node", node: "worker-b" };
const wp: Caller = { kind: "gateway", namespace: "shop", name: "inventory-waypoint" };
const otherWp: Caller = { kind: "gateway", namespace: "shop", name: "missing" };
const admin: Caller = { kind: "admin" };
const api = "spiffe://cluster.local/ns/shop/sa/product-api";
const viewer = "spiffe://cluster.local/ns/shop/sa/product-viewer";
const wpId = "spiffe://cluster.local/ns/shop/sa/inventory-waypoint";

// [caller, identity, allowed, reason fragment]
const table: [string, Caller, string, boolean, string?][] = [
  ["a node gets an identity of a workload on it", nodeA, api, true],
  ["the same identity on another node is allowed there too", nodeB, api, true],
  ["a node is refused an identity that runs only on another node", nodeA, viewer, false, "only on other nodes"],
  ["a node is refused an identity nobody has", nodeA, "spiffe://cluster.local/ns/shop/sa/ghost", false, "no workload in the configuration"],
  ["a node is refused the waypoint's identity", nodeA, wpId, false, "identity of waypoint shop/inventory-waypoint"],
  ["even the node of a pod running as the waypoint's service account", nodeB, wpId, false, "identity of waypoint shop/inventory-waypoint"],
  ["a node is refused another trust domain", nodeA, "spiffe://evil.example/ns/shop/sa/product-api", false, "trust domain"],
  ["a node is refused a malformed identity", nodeA, "spiffe://cluster.local/ns/shop/sa/product-api/", false, "not a valid SPIFFE ID"],
  ["a waypoint gets its own identity", wp, wpId, true],
  ["a waypoint is refused a workload identity", wp, api, false, "may only get its own identity"],
  ["an unknown gateway is refused", otherWp, wpId, false, "no waypoint Gateway shop/missing"],
  ["admin gets no workload identity", admin, api, false, "admin"],
];

describe("mayIssue (node authorization)", () => {
  for (const [name, caller, identity, allowed, why] of table) {
    test(name, () => {
      const d = mayIssue(caller, identity, model);
      expect(d.ok).toBe(allowed);
      if (!d.ok) expect(d.reason).toContain(why!);
    });
  }
  test("follows the current model: a workload moving away revokes the node's right", () => {
    const moved = { ...model, workloads: model.workloads.map((w) => (w.name === "api-1" ? { ...w, node: "worker-c" } : w)) };
    expect(mayIssue(nodeA, api, model).ok).toBe(true);
    expect(mayIssue(nodeA, api, moved).ok).toBe(false);
  });
});
