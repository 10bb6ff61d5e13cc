import { expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { describe as describeTarget, formatDescription, parseTarget } from "./mod.ts";
import { destinationRuleYaml, serviceEntryPolicyYaml, serviceEntryRouteYaml, serviceEntryYaml, waypointYaml, yamlFile } from "../../test/support/mod.ts";

const yaml = yamlFile(
  waypointYaml({ name: "egress", addresses: ["10.244.1.50"] }),
  serviceEntryYaml({
    name: "partner",
    hosts: ["api.partner.example", "*.eu.partner.example"],
    ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 443 }],
    resolution: "DNS",
    waypoint: "egress",
  }),
  destinationRuleYaml({ name: "partner", host: "api.partner.example", tls: { mode: "SIMPLE", sni: "api.partner.example" } }),
  serviceEntryPolicyYaml({ name: "get-only", serviceEntry: "partner", methods: ["GET"] }),
  serviceEntryRouteYaml({ name: "partner", serviceEntry: "partner", set: { name: "x-a", value: "b" } }),
);

test("describe serviceentry: addresses the DNS proxy answers, waypoint, policies, routes and TLS", () => {
  const { model } = parseConfig([{ path: "mesh.yaml", text: yaml }]);
  const d = describeTarget(model, parseTarget("serviceentry", "shop/partner"));
  if (d.kind !== "ServiceEntry") throw new Error("expected a ServiceEntry description");
  expect(d.hosts[0]!.addresses[0]).toMatch(/^240\.240\./);
  expect(d.hosts[1]).toEqual({ host: "*.eu.partner.example", addresses: [] });
  expect(d.waypoint).toEqual({ gateway: "shop/egress", exists: true });
  expect(d.policies.map((p) => p.policy)).toEqual(["shop/get-only"]);
  expect(d.routes).toEqual(["shop/partner"]);
  expect(d.tls).toEqual([{ host: "api.partner.example", port: 80, mode: "SIMPLE", sni: "api.partner.example", caCertificates: null, rule: "shop/partner" }]);
  expect(formatDescription(d)).toContain("TLS to api.partner.example (port 80): SIMPLE");
  expect(() => describeTarget(model, parseTarget("se", "shop/partnr"))).toThrow(/did you mean shop\/partner/);
});
