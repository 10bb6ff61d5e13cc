import { describe, expect, test } from "bun:test";
import { indexModel } from "../../model/mod.ts";
import { captureRules, captureSpecFor, DEFAULT_CAPTURE_PORTS, restoreInput, type RuleSet } from "./mod.ts";
import { meshModel, service, workload } from "../../../test/support/mod.ts";

const ports = DEFAULT_CAPTURE_PORTS;

describe("node mode", () => {
  const a = workload("product-viewer", "shop", "10.244.1.10", "node-a");
  const b = workload("product-api", "shop", "10.244.2.10", "node-b");
  const legacy = workload("legacy", "old", "10.244.1.30", "node-a", { ambient: false });
  const idx = indexModel(meshModel({ workloads: [a, b, legacy] }));

  test("captures only this node's ambient pods: outbound from them, HBONE and plaintext to them", () => {
    const [v4, ...rest] = captureRules(captureSpecFor(idx, "node-a", { mode: "node", ports, exemptGid: 1337 }));
    expect(rest).toEqual([]);
    expect(v4!.chains).toEqual({
      "MESH-PREROUTING": [
        "-A MESH-PREROUTING -s 10.244.1.10/32 -p tcp -j REDIRECT --to-ports 15001",
        "-A MESH-PREROUTING -d 10.244.1.10/32 -p tcp -m tcp --dport 15008 -j REDIRECT --to-ports 15008",
        "-A MESH-PREROUTING -d 10.244.1.10/32 -p tcp -j REDIRECT --to-ports 15006",
      ],
    });
    expect(v4!.jumps).toEqual([{ table: "nat", from: "PREROUTING", to: "MESH-PREROUTING" }]);
  });

  test("every source rule comes before every destination rule (pod to pod on one node is outbound)", () => {
    const c = workload("cart", "shop", "10.244.1.11", "node-a");
    const [v4] = captureRules(captureSpecFor(indexModel(meshModel({ workloads: [a, c] })), "node-a", { mode: "node", ports, exemptGid: 0 }));
    const rules = v4!.chains["MESH-PREROUTING"]!;
    const lastSource = Math.max(...rules.map((r, i) => (r.includes(" -s ") ? i : -1)));
    const firstDest = rules.findIndex((r) => r.includes(" -d "));
    expect(lastSource).toBeLessThan(firstDest);
    expect(rules.length).toBe(6);
  });

  test("with the DNS proxy: UDP and TCP to port 53 from each pod go to 15053, before its outbound rule; an opted-out pod keeps its DNS", () => {
    const quiet = workload("quiet", "shop", "10.244.1.20", "node-a", { dnsCapture: false });
    const i = indexModel(meshModel({ workloads: [a, quiet] }));
    const [v4] = captureRules(captureSpecFor(i, "node-a", { mode: "node", ports: { ...ports, dns: 15053 }, exemptGid: 0 }));
    expect(v4!.chains["MESH-PREROUTING"]!.slice(0, 4)).toEqual([
      "-A MESH-PREROUTING -s 10.244.1.10/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053",
      "-A MESH-PREROUTING -s 10.244.1.10/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053",
      "-A MESH-PREROUTING -s 10.244.1.10/32 -p tcp -j REDIRECT --to-ports 15001",
      "-A MESH-PREROUTING -s 10.244.1.20/32 -p tcp -j REDIRECT --to-ports 15001",
    ]);
    expect(v4!.chains["MESH-PREROUTING"]!.filter((r) => r.includes("10.244.1.20") && r.includes("53"))).toEqual([]);
  });

  test("a node with no ambient pods gets an empty chain (and still its jump)", () => {
    const [v4] = captureRules(captureSpecFor(idx, "node-c", { mode: "node", ports, exemptGid: 0 }));
    expect(v4!.chains["MESH-PREROUTING"]).toEqual([]);
    expect(v4!.jumps.length).toBe(1);
  });

  test("IPv6 pod addresses get an ip6tables rule set", () => {
    const dual = workload("dual", "shop", "10.244.1.12", "node-a", { addresses: ["10.244.1.12", "fd00::12"] });
    const sets = captureRules(captureSpecFor(indexModel(meshModel({ workloads: [dual] })), "node-a", { mode: "node", ports, exemptGid: 0 }));
    expect(sets.map((s) => s.family)).toEqual([4, 6]);
    expect(sets[1]!.chains["MESH-PREROUTING"]![0]).toBe("-A MESH-PREROUTING -s fd00::12/128 -p tcp -j REDIRECT --to-ports 15001");
  });
});

describe("host mode", () => {
  const vm = workload("ratings-vm", "shop", "10.0.0.21", "vm-1", { kind: "WorkloadEntry", uid: "WorkloadEntry/shop/ratings-vm", ports: [{ port: 9080 }] });
  const svc = service("ratings", "shop", "10.96.0.30", [{ port: 80, targetPort: 9090 }], [vm]);
  const idx = indexModel(meshModel({ workloads: [vm], services: [svc] }));

  test("outbound: everything local but the ztunnel's group and loopback; inbound: the workload's ports", () => {
    const [v4] = captureRules(captureSpecFor(idx, "vm-1", { mode: "host", ports, exemptGid: 1337 }));
    expect(v4!.chains["MESH-OUTPUT"]).toEqual([
      "-A MESH-OUTPUT -p tcp -m owner --gid-owner 1337 -j RETURN",
      "-A MESH-OUTPUT -d 127.0.0.0/8 -p tcp -j RETURN",
      "-A MESH-OUTPUT -p tcp -j REDIRECT --to-ports 15001",
    ]);
    expect(v4!.chains["MESH-PREROUTING"]).toEqual([
      "-A MESH-PREROUTING -d 10.0.0.21/32 -p tcp -m multiport --dports 9080,9090 -j REDIRECT --to-ports 15006",
    ]);
    expect(v4!.jumps.map((j) => j.from)).toEqual(["OUTPUT", "PREROUTING"]);
  });

  test("the uid exemption is added only when asked for", () => {
    const [v4] = captureRules(captureSpecFor(idx, "vm-1", { mode: "host", ports, exemptGid: 1337, exemptUid: 999 }));
    expect(v4!.chains["MESH-OUTPUT"]![0]).toBe("-A MESH-OUTPUT -p tcp -m owner --uid-owner 999 -j RETURN");
  });

  test("a workload with no known ports: every port but the mesh's own goes to 15006", () => {
    const bare = workload("bare", "shop", "10.0.0.22", "vm-2", { kind: "WorkloadEntry" });
    const [v4] = captureRules(captureSpecFor(indexModel(meshModel({ workloads: [bare] })), "vm-2", { mode: "host", ports, exemptGid: 1337 }));
    expect(v4!.chains["MESH-PREROUTING"]).toEqual([
      "-A MESH-PREROUTING -d 10.0.0.22/32 -p tcp -m multiport --dports 15000,15001,15006,15008,15020,15021 -j RETURN",
      "-A MESH-PREROUTING -d 10.0.0.22/32 -p tcp -j REDIRECT --to-ports 15006",
    ]);
  });

  test("more than 15 ports are split over several multiport rules", () => {
    const many = workload("many", "shop", "10.0.0.23", "vm-3", { ports: Array.from({ length: 20 }, (_, i) => ({ port: 8000 + i })) });
    const [v4] = captureRules(captureSpecFor(indexModel(meshModel({ workloads: [many] })), "vm-3", { mode: "host", ports, exemptGid: 1 }));
    const pre = v4!.chains["MESH-PREROUTING"]!;
    expect(pre.length).toBe(2);
    expect(pre[0]!.split("--dports ")[1]!.split(" ")[0]!.split(",").length).toBe(15);
  });
});

test("restore input declares (and so flushes) only our chains, and has no jump", () => {
  const set: RuleSet = {
    family: 4,
    chains: { "MESH-PREROUTING": ["-A MESH-PREROUTING -s 10.1.1.1/32 -p tcp -j REDIRECT --to-ports 15001"] },
    jumps: [{ table: "nat", from: "PREROUTING", to: "MESH-PREROUTING" }],
  };
  expect(restoreInput(set)).toBe(
    "*nat\n:MESH-PREROUTING - [0:0]\n-A MESH-PREROUTING -s 10.1.1.1/32 -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n",
  );
});
