import { describe, expect, test } from "bun:test";
import { parseConfig } from "./mod.ts";
import { destinationRuleYaml, namespaceYaml, serviceEntryYaml, waypointYaml, yamlFile } from "../../test/support/mod.ts";

const yaml = yamlFile(
  namespaceYaml("shop"),
  waypointYaml({ name: "egress", addresses: ["10.0.9.9"] }),
  serviceEntryYaml({
    name: "partner",
    hosts: ["api.partner.example", "www.partner.example"],
    ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 8080 }],
    resolution: "DNS_ROUND_ROBIN",
    waypoint: "egress",
  }),
  serviceEntryYaml({
    name: "db",
    hosts: ["db.example"],
    ports: [{ number: 5432, name: "tcp" }],
    resolution: "STATIC",
    endpoints: [{ address: "192.0.2.5", labels: { zone: "a" } }],
  }),
  serviceEntryYaml({ name: "legacy", hosts: ["legacy.example"], addresses: ["198.51.100.0/24"], ports: [{ number: 443, name: "tls", protocol: "TLS" }] }),
  destinationRuleYaml({
    name: "partner",
    host: "api.partner.example",
    tls: { mode: "SIMPLE", sni: "api.partner.example", caCertificates: "/etc/ca.pem" },
    portTls: { 8443: { mode: "DISABLE" } },
  }),
);

describe("ServiceEntry and DestinationRule in the model", () => {
  const { model, diagnostics } = parseConfig([{ path: "mesh.yaml", text: yaml }]);

  test("checks clean", () => {
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  test("a DNS entry without addresses gets one VIP per host, a label binds its egress waypoint", () => {
    const se = model.serviceEntries!.find((s) => s.name === "partner")!;
    expect(se.resolution).toBe("DNS");
    expect(se.location).toBe("MESH_EXTERNAL");
    expect(se.vips.map((v) => v.host)).toEqual(["api.partner.example", "www.partner.example"]);
    expect(se.vips.every((v) => v.address.startsWith("240.240."))).toBe(true);
    expect(se.ports).toEqual([{ number: 80, name: "http", protocol: "HTTP", targetPort: 8080 }]);
    expect(se.waypoint).toEqual({ gateway: "shop/egress", via: "serviceentry-label" });
  });

  test("STATIC endpoints are kept; NONE with addresses gets no VIP", () => {
    const db = model.serviceEntries!.find((s) => s.name === "db")!;
    expect(db.endpoints).toEqual([{ address: "192.0.2.5", labels: { zone: "a" } }]);
    const legacy = model.serviceEntries!.find((s) => s.name === "legacy")!;
    expect(legacy.resolution).toBe("NONE");
    expect(legacy.vips).toEqual([]);
    expect(legacy.addresses).toEqual(["198.51.100.0/24"]);
  });

  test("DestinationRule TLS, per port too", () => {
    expect(model.destinationRules).toEqual([expect.objectContaining({
      host: "api.partner.example",
      tls: { mode: "SIMPLE", sni: "api.partner.example", caCertificates: "/etc/ca.pem" },
      portTls: { 8443: { mode: "DISABLE" } },
    })]);
  });
});
