/** Where connections to ServiceEntry destinations go, and what outboundTrafficPolicy deny admits. */
import { describe, expect, test } from "bun:test";
import { indexModel, type MeshConfig, type ServiceEntry, type Waypoint } from "../model/mod.ts";
import { meshModel as model, service, serviceEntry, workload as pod } from "../../test/support/mod.ts";
import { planOutbound, RoundRobin } from "./outbound_plan.ts";

const viewer = pod("viewer", "shop", "10.244.1.10", "node-a");
const api = service("api", "shop", "10.96.0.20", [{ port: 80, targetPort: 8080 }], []);
const se = (over: Partial<ServiceEntry>): ServiceEntry => serviceEntry("x", "shop", [], { ports: [{ number: 80, name: "http", protocol: "HTTP" }], ...over });
const dnsEntry = se({ name: "partner", hosts: ["api.partner.example"], vips: [{ host: "api.partner.example", address: "240.240.1.2" }], ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 8080 }] });
const staticEntry = se({
  name: "db", hosts: ["db.example"], resolution: "STATIC", vips: [{ host: "db.example", address: "240.240.3.4" }],
  endpoints: [{ address: "192.0.2.10", labels: {} }, { address: "192.0.2.11", ports: { http: 9090 }, labels: {} }],
});
const noneEntry = se({ name: "legacy", hosts: ["legacy.example"], resolution: "NONE", addresses: ["198.51.100.0/24"] });
const egress: Waypoint = {
  name: "egress", namespace: "shop", identity: "spiffe://cluster.local/ns/shop/sa/egress", serviceAccount: "egress",
  addresses: ["10.244.3.9"], waypointFor: "service", port: 15008,
};
const viaWaypoint = se({ name: "pay", hosts: ["pay.example"], vips: [{ host: "pay.example", address: "240.240.5.6" }], waypoint: { gateway: "shop/egress", via: "serviceentry-label" } });

function plan(address: string, port: number, policy: MeshConfig["outboundPolicy"] = "allow", rr = new RoundRobin()) {
  const m = model({ workloads: [viewer], services: [api], waypoints: [egress], serviceEntries: [dnsEntry, staticEntry, noneEntry, viaWaypoint] });
  m.meshConfig.outboundPolicy = policy;
  return planOutbound(indexModel(m), "node-a", { address, port }, rr);
}

describe("outbound to ServiceEntry destinations", () => {
  test("a DNS entry's VIP: resolve the host, connect to its targetPort", () => {
    expect(plan("240.240.1.2", 80)).toMatchObject({ kind: "external", resolveHost: "api.partner.example", port: 8080, external: { host: "api.partner.example" } });
  });

  test("a STATIC entry: its endpoints in turn, each on its own port for the port's name", () => {
    const rr = new RoundRobin();
    const picks = [0, 1, 2].map(() => plan("240.240.3.4", 80, "allow", rr));
    expect(picks.map((p) => p.kind === "external" && `${p.address}:${p.port}`)).toEqual(["192.0.2.10:80", "192.0.2.11:9090", "192.0.2.10:80"]);
  });

  test("a NONE entry: the original destination, matched by its CIDR", () => {
    expect(plan("198.51.100.77", 80)).toMatchObject({ kind: "external", address: "198.51.100.77", port: 80 });
  });

  test("a port the entry does not declare is refused", () => {
    expect(plan("240.240.1.2", 443)).toMatchObject({ kind: "deny", reason: expect.stringContaining("no port 443") });
  });

  test("an entry bound to an egress waypoint: HBONE to the waypoint, the VIP as the CONNECT target", () => {
    expect(plan("240.240.5.6", 80)).toMatchObject({
      kind: "hbone", hboneAddress: "10.244.3.9", hbonePort: 15008, authority: "240.240.5.6:80",
      expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/egress"], external: { host: "pay.example" },
    });
  });

  test("outboundTrafficPolicy deny: an unregistered address is refused, registered ones are admitted", () => {
    expect(plan("203.0.113.9", 80, "deny")).toMatchObject({ kind: "deny", reason: expect.stringContaining("outboundPolicy is deny") });
    expect(plan("203.0.113.9", 80, "allow").kind).toBe("passthrough");
    expect(plan("240.240.1.2", 80, "deny").kind).toBe("external");
    expect(plan("192.0.2.11", 80, "deny")).toMatchObject({ kind: "external", address: "192.0.2.11", port: 9090 });
    expect(plan("10.96.0.20", 80, "deny").kind).not.toBe("passthrough");
  });
});
