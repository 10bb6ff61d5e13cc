import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { explainRequest, parseSource, parseTarget } from "./mod.ts";

const yaml = `
apiVersion: mesh.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {outboundTrafficPolicy: deny}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {nodeName: node-a, containers: [{name: c}]}
status: {podIP: 10.244.1.10}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: egress, namespace: shop}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
  addresses: [{value: 10.244.1.50}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner-api, namespace: shop}
spec:
  hosts: [api.partner.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure, namespace: shop, labels: {istio.io/use-waypoint: egress}}
spec:
  hosts: [secure.partner.example]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure, namespace: shop}
spec:
  host: secure.partner.example
  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ca.pem}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: secure}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
`;

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
