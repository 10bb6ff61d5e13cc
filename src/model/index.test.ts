/**
 * Address lookups when several workloads claim one address (duplicate-address, which a live cluster can
 * produce): a Pod keeps its address against a WorkloadEntry whatever their order, and otherwise the first
 * claimant keeps it.
 */
import { describe, expect, test } from "bun:test";
import { indexModel } from "./index.ts";
import { emptyModel, type MeshModel, type Workload } from "./types.ts";

function workload(kind: Workload["kind"], name: string, ip: string, node: string): Workload {
  return {
    uid: `${kind}/shop/${name}`,
    kind,
    name,
    namespace: "shop",
    serviceAccount: name,
    identity: `spiffe://cluster.local/ns/shop/sa/${name}`,
    node,
    addresses: [ip],
    labels: {},
    ambient: true,
    ports: [],
    ready: true,
  };
}

const model = (workloads: Workload[]): MeshModel => ({ ...emptyModel(), workloads });

describe("workloadByAddress: one owner per address", () => {
  const victim = workload("Pod", "api", "10.244.2.10", "node-b");
  const squatter = workload("WorkloadEntry", "vm", "10.244.2.10", "vm-1");
  test("a WorkloadEntry written after a Pod does not take over the Pod's address", () => {
    expect(indexModel(model([victim, squatter])).workloadByAddress("10.244.2.10")?.uid).toBe("Pod/shop/api");
  });
  test("nor one written before it: Pods win over WorkloadEntries", () => {
    expect(indexModel(model([squatter, victim])).workloadByAddress("10.244.2.10")?.uid).toBe("Pod/shop/api");
  });
  test("between two of a kind, the first keeps it", () => {
    const second = workload("Pod", "api-2", "10.244.2.10", "node-c");
    expect(indexModel(model([victim, second])).workloadByAddress("10.244.2.10")?.uid).toBe("Pod/shop/api");
    const vm2 = workload("WorkloadEntry", "vm-2", "10.244.2.10", "vm-2");
    expect(indexModel(model([squatter, vm2])).workloadByAddress("10.244.2.10")?.uid).toBe("WorkloadEntry/shop/vm");
  });
  test("the other claimants are still workloads of their own node (only the address lookup is decided)", () => {
    const idx = indexModel(model([squatter, victim]));
    expect(idx.workloadsOnNode("vm-1").map((w) => w.uid)).toEqual(["WorkloadEntry/shop/vm"]);
    expect(idx.workloadByUid("WorkloadEntry/shop/vm")?.name).toBe("vm");
  });
});
