import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hostsFile, inCidr, planFromYaml } from "./plan.ts";
import { diffPlans, describeDiff } from "./reconcile.ts";
import { labNames } from "./names.ts";

const fixture = readFileSync(join(import.meta.dir, "testdata", "two-nodes.yaml"), "utf8");
const pod = (name: string, node: string, ip: string, extra = "") => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ns }
spec:
  nodeName: ${node}
  containers: [{ name: c, command: ["sleep", "1"] ${extra} }]
status: { podIP: ${ip} }
---`;

describe("planFromYaml", () => {
  test("reads nodes, pods, commands, ports, waypoints and ClusterIPs", () => {
    const plan = planFromYaml(fixture);
    expect(plan.nodes).toEqual(["node-a", "node-b"]);
    expect(plan.pods.map((p) => [p.namespace, p.name, p.node, p.ip])).toEqual([
      ["shop", "client", "node-a", "10.244.1.10"],
      ["shop", "neighbour", "node-a", "10.244.1.11"],
      ["shop", "api", "node-b", "10.244.2.10"],
    ]);
    expect(plan.pods[2]!.command).toEqual(["mesh", "httpbin", "--port", "80"]); // command + args
    expect(plan.pods[2]!.ports).toEqual([80]);
    expect(plan.pods[0]!.ports).toEqual([]);
    // Behind node-b: its pods share the waypoint's /24.
    expect(plan.waypoints).toEqual([{ name: "api-waypoint", namespace: "shop", ip: "10.244.2.20", node: "node-b" }]);
    expect(plan.services).toEqual([{ name: "api", namespace: "shop", clusterIP: "10.96.0.20" }]);
  });

  test("reads the project's config/mesh.yaml", () => {
    const text = readFileSync(join(import.meta.dir, "..", "..", "config", "mesh.yaml"), "utf8");
    const plan = planFromYaml(text);
    expect(plan.nodes).toEqual(["node-a", "node-b"]);
    expect(plan.pods.find((p) => p.name === "product-api")?.command[0]).toBe("mesh");
    expect(plan.waypoints[0]).toMatchObject({ name: "product-api-waypoint", ip: "10.244.2.20", node: "node-b" });
  });

  test("a waypoint whose address matches no node's pods sits behind the first node", () => {
    const plan = planFromYaml(`${pod("a", "n2", "10.1.0.5")}${pod("b", "n1", "10.2.0.5")}
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: wp, namespace: ns }
spec: { gatewayClassName: istio-waypoint, addresses: [{ value: 10.3.0.1 }] }
`);
    expect(plan.waypoints[0]!.node).toBe("n2");
  });

  test("Gateways of other classes are not waypoints", () => {
    const plan = planFromYaml(`${pod("a", "n1", "10.1.0.5")}
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ingress, namespace: ns }
spec: { gatewayClassName: istio, addresses: [{ value: 10.3.0.1 }] }
`);
    expect(plan.waypoints).toEqual([]);
  });

  test.each([
    [pod("a", "n1", "10.1.0.5") + pod("b", "n1", "10.1.0.5"), /share the address 10.1.0.5/],
    [pod("a", "", "10.1.0.5"), /no spec.nodeName/],
    [`apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { nodeName: n }\n`, /no status.podIP/],
    [pod("a", "n1", "fd00::1"), /IPv4 only/],
    [pod("a", "n1", "10.99.0.7"), /10.99.0.0\/24, which the lab keeps/],
    [pod("a", "n1", "10.1.0.5") + pod("a", "n1", "10.1.0.6"), /declared twice/],
    [
      pod("a", "n1", "10.1.0.5") +
      `\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: wp, namespace: ns }\nspec: { gatewayClassName: istio-waypoint }\n`,
      /no spec.addresses/,
    ],
    [pod("a", "n1", "10.1.0.5") + `\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: ns }\nspec: { clusterIP: 10.1.0.5 }\n`, /ClusterIP 10.1.0.5/],
    ["kind: Pod\nmetadata: [unclosed", /mesh.yaml:\d+:\d+/],
  ])("refuses a topology it cannot build (%#)", (yaml, message) => {
    expect(() => planFromYaml(yaml)).toThrow(message);
  });
});

test("inCidr", () => {
  expect(inCidr("10.244.2.20", "10.244.2.10/24")).toBe(true);
  expect(inCidr("10.244.3.1", "10.244.2.0/24")).toBe(false);
  expect(inCidr("1.2.3.4", "0.0.0.0/0")).toBe(true);
});

test("hosts file names ClusterIPs, short names only within the pod's namespace", () => {
  const plan = planFromYaml(fixture);
  const mine = hostsFile(plan, { name: "client", namespace: "shop", ip: "10.244.1.10" });
  expect(mine).toContain("10.96.0.20 api.shop.svc.cluster.local api.shop.svc api.shop api\n");
  expect(mine).toContain("10.244.1.10 client\n");
  const other = hostsFile(plan, { name: "x", namespace: "other" });
  expect(other).toContain("10.96.0.20 api.shop.svc.cluster.local api.shop.svc api.shop\n");
});

test("names carry the prefix and cannot be read two ways", () => {
  const d = labNames();
  const p = labNames("t1");
  expect(d.node("a")).toBe("mlab-node-a");
  expect(p.node("a")).toBe("mlab.t1-node-a");
  expect(d.pod("ns", "p")).toBe("mlab-pod-ns.p");
  expect(d.pod("a-b", "c")).not.toBe(d.pod("a", "b-c"));
  expect(() => labNames("has-dash")).toThrow(/Invalid --prefix/);
  expect(() => labNames("")).toThrow(/Invalid --prefix/);
});

test("diffPlans: changed pods are removed and added again, nodes follow their pods", () => {
  const a = planFromYaml(fixture);
  const b = planFromYaml(fixture.replace("10.244.1.11", "10.244.1.12").replace(/nodeName: node-b/g, "nodeName: node-c"));
  const d = diffPlans(a, b);
  expect(d.addNodes).toEqual(["node-c"]);
  expect(d.removeNodes).toEqual(["node-b"]);
  expect(d.removePods.map((p) => p.name).sort()).toEqual(["api", "neighbour"]);
  expect(d.addPods.map((p) => p.name).sort()).toEqual(["api", "neighbour"]);
  // The waypoint follows the pods of its /24 to node-c.
  expect(d.addWaypoints.map((w) => w.node)).toEqual(["node-c"]);
  expect(describeDiff(diffPlans(a, a))).toBe("no topology change");
  const empty = { nodes: [], pods: [], waypoints: [], services: [] };
  expect(diffPlans(empty, a).addPods.length).toBe(3);
});
