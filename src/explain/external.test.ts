import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { explainRequest, parseSource, parseTarget } from "./mod.ts";
import {
  destinationRuleYaml,
  meshConfigYaml,
  namespaceYaml,
  podYaml,
  serviceEntryPolicyYaml,
  serviceEntryYaml,
  waypointYaml,
  yamlFile,
} from "../../test/support/mod.ts";

const HTTP = { number: 80, name: "http", protocol: "HTTP" };
const yaml = yamlFile(
  meshConfigYaml({ outboundTrafficPolicy: "deny" }),
  namespaceYaml("shop"),
  podYaml({ name: "client", ip: "10.244.1.10", serviceAccount: "default" }),
  waypointYaml({ name: "egress", addresses: ["10.244.1.50"] }),
  serviceEntryYaml({ name: "partner-api", hosts: ["api.partner.example"], ports: [HTTP], resolution: "DNS" }),
  serviceEntryYaml({ name: "secure", hosts: ["secure.partner.example"], ports: [{ ...HTTP, targetPort: 443 }], resolution: "DNS", waypoint: "egress" }),
  destinationRuleYaml({ name: "secure", host: "secure.partner.example", tls: { mode: "SIMPLE", caCertificates: "ca.pem" } }),
  serviceEntryPolicyYaml({ name: "get-only", serviceEntry: "secure", methods: ["GET"] }),
);

describe("mesh explain for ServiceEntry hosts", () => {
  const { model } = parseConfig([{ path: "mesh.yaml", text: yaml }]);
  const from = parseSource("shop/default");

  test("a host without a waypoint: the source ztunnel lets it out (outbound policy deny notwithstanding)", async () => {
    const e = await explainRequest(model, { from, to: parseTarget("api.partner.example:80") });
    expect(e.decision).toBe("allow");
    expect(e.enforcedBy).toBe("ztunnel");
    expect(e.destination.service).toBe("ServiceEntry shop/partner-api (api.partner.example)");
    expect(e.destination.address).toMatch(/^240\.240\./);
    expect(e.reason).toContain("addresses of api.partner.example");
    // By VIP, the same answer.
    const byVip = await explainRequest(model, { from, to: parseTarget(`${e.destination.address}:80`) });
    expect(byVip.destination.service).toBe(e.destination.service);
  });

  test("through the egress waypoint: the targetRefs ServiceEntry policy decides, TLS is originated", async () => {
    const get = await explainRequest(model, { from, to: parseTarget("secure.partner.example:80"), method: "GET" });
    expect(get).toMatchObject({ decision: "allow", enforcedBy: "waypoint", waypoint: "shop/egress", policy: "shop/get-only" });
    expect(get.hops.find((h) => h.point === "waypoint")!.steps.join("\n")).toContain("originates TLS (DestinationRule shop/secure): SNI secure.partner.example");
    expect(get.backend).toMatchObject({ targetPort: 443 });
    const post = await explainRequest(model, { from, to: parseTarget("secure.partner.example:80"), method: "POST" });
    expect(post).toMatchObject({ decision: "deny", status: 403, enforcedBy: "waypoint" });
  });

  test("an unknown host or port is a usage error", async () => {
    await expect(explainRequest(model, { from, to: parseTarget("nope.example.com:80") })).rejects.toThrow(/No Service or ServiceEntry host/);
    await expect(explainRequest(model, { from, to: parseTarget("api.partner.example:443") })).rejects.toThrow(/no port 443/);
  });
});
