import { expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { describe as describeTarget, formatDescription, parseTarget } from "./mod.ts";

const yaml = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: egress, namespace: shop}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}], addresses: [{value: 10.244.1.50}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner, namespace: shop, labels: {istio.io/use-waypoint: egress}}
spec:
  hosts: [api.partner.example, "*.eu.partner.example"]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: partner, namespace: shop}
spec: {host: api.partner.example, trafficPolicy: {tls: {mode: SIMPLE, sni: api.partner.example}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: partner, namespace: shop}
spec:
  parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: b}]}}]}]
`;

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
