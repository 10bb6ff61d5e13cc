/** Normalization: the MeshModel built from YAML, as the data plane and the control plane read it. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hasErrors, modelFromObjects, parseConfig } from "./mod.ts";
import type { Diagnostic } from "./mod.ts";

const repo = join(import.meta.dir, "..", "..");
const load = (text: string, path = "m.yaml") => parseConfig([{ path, text }]);
const file = (p: string) => ({ path: p, text: readFileSync(join(repo, p), "utf8") });
const rules = (ds: Diagnostic[]) => ds.map((d) => d.rule);

describe("config/mesh.yaml (the seed's scenario)", () => {
  const { model, diagnostics } = parseConfig([file("config/mesh.yaml")]);

  test("checks clean", () => {
    expect(diagnostics).toEqual([]);
  });

  test("workloads: identity, node, address, ports and command", () => {
    const viewer = model.workloads.find((w) => w.name === "product-viewer")!;
    const api = model.workloads.find((w) => w.name === "product-api")!;
    expect(viewer).toMatchObject({
      uid: "Pod/ambient-ns/product-viewer",
      identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa",
      node: "node-a",
      addresses: ["10.244.1.10"],
      ambient: true,
      ready: true,
      command: ["sleep", "infinity"],
    });
    expect(api).toMatchObject({
      identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-api-sa",
      node: "node-b",
      addresses: ["10.244.2.10"],
      ports: [{ name: "http", port: 80 }],
      command: ["mesh", "httpbin", "--port", "80"],
    });
    expect(api.waypoint).toBeUndefined(); // bound through its Service, not directly
  });

  test("services: VIP, target port per endpoint, waypoint from the Service label", () => {
    const api = model.services.find((s) => s.name === "product-api")!;
    expect(api.vip).toBe("10.96.0.20");
    expect(api.hostname).toBe("product-api.ambient-ns.svc.cluster.local");
    expect(api.endpoints).toEqual([{ workloadUid: "Pod/ambient-ns/product-api", ports: { 8000: 80 } }]);
    expect(api.waypoint).toEqual({ gateway: "ambient-ns/product-api-waypoint", via: "service-label" });
    expect(model.services.find((s) => s.name === "product-viewer")!.waypoint).toBeUndefined();
  });

  test("the waypoint, the JWT rule with its inline JWKS, and the L7 policy", () => {
    expect(model.waypoints).toEqual([expect.objectContaining({
      name: "product-api-waypoint",
      namespace: "ambient-ns",
      identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-api-waypoint",
      addresses: ["10.244.2.20"],
      waypointFor: "service",
      port: 15008,
    })]);
    const ra = model.requestAuthentications[0]!;
    expect(ra.scope).toEqual({ kind: "selector", matchLabels: { app: "product-api" } });
    expect(ra.jwtRules[0]!.issuer).toBe("testing@secure.istio.io");
    const jwks = JSON.parse(ra.jwtRules[0]!.jwks!);
    const reference = JSON.parse(readFileSync(join(import.meta.dir, "../policy/testdata/istio/samples-jwks.json"), "utf8"));
    expect(jwks).toEqual(reference);
    const ap = model.authorizationPolicies[0]!;
    expect(ap).toMatchObject({ name: "require-get-on-products", action: "ALLOW", hasL7: true });
    expect(ap.rules).toEqual([{
      from: [{ source: { requestPrincipals: ["testing@secure.istio.io/*"] } }],
      to: [{ operation: { methods: ["GET"], paths: ["/get"] } }],
    }]);
    expect(model.meshConfig).toEqual({
      trustDomain: "cluster.local",
      rootNamespace: "istio-system",
      certTtlSeconds: 86400,
      rotationFraction: 0.5,
      outboundPolicy: "allow",
    });
  });

  test("the model is plain JSON", () => {
    expect(JSON.parse(JSON.stringify(model))).toEqual(model);
  });

  test("config/mesh-no-waypoint.yaml: the L7 policy has no waypoint, and check says so", () => {
    const r = parseConfig([file("config/mesh-no-waypoint.yaml")]);
    expect(hasErrors(r.diagnostics)).toBe(true);
    const l7 = r.diagnostics.filter((d) => d.rule === "l7-without-waypoint");
    expect(l7.length).toBe(1);
    expect(l7[0]!.message).toContain("deny every request");
    expect(l7[0]!.message).toContain("istio.io/use-waypoint=");
    expect(r.model.waypoints).toEqual([]);
    expect(r.model.services.every((s) => !s.waypoint)).toBe(true);
  });
});

describe("the article's own manifests (workloads.yaml + l7-policy.yaml + waypoint.yaml)", () => {
  test("give the Deployment warnings, the Gateway class problems, L7 without waypoint, and no crash", () => {
    const { diagnostics, model } = parseConfig([file("src/config/testdata/article.yaml")]);
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.rule}`)).toEqual([
      "21:7 warning ignored-kind", // Deployment product-viewer
      "61:7 warning ignored-kind", // Deployment product-api
      "92:3 warning jwt-without-waypoint",
      "109:9 error l7-without-waypoint", // requestPrincipals of require-get-on-products
      "122:21 error waypoint-class", // gatewayClassName: istio
      "130:7 error policy-attachment",
      "152:5 error waypoint-class", // the gateway-class annotation
    ]);
    const l7 = diagnostics[3]!.message;
    expect(l7).toContain("require-get-on-products");
    expect(l7).toContain("Deployment ambient-ns/product-api");
    expect(l7).toContain("Gateway ambient-ns/product-api-waypoint is not one");
    // The issuer keeps the web page's e-mail-obfuscation artifact as written there (with its no-break space).
    expect(model.requestAuthentications[0]!.jwtRules[0]!.issuer).toBe("[email\u00a0protected]");
    expect(model.workloads).toEqual([]);
    expect(model.waypoints).toEqual([]);
  });
});

describe("waypoint binding", () => {
  const base = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: ns-wp}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ns-wp, namespace: shop, labels: {istio.io/waypoint-for: all}}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: svc-wp, namespace: shop}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra, labels: {istio.io/waypoint-for: workload}}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {clusterIP: 10.96.1.1, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop, labels: {istio.io/use-waypoint: svc-wp}}
spec: {clusterIP: 10.96.1.2, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: c, namespace: shop, labels: {istio.io/use-waypoint: none}}
spec: {clusterIP: 10.96.1.3, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: shop}
spec: {nodeName: n, containers: [{name: x}]}
status: {podIP: 10.244.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, namespace: shop, labels: {istio.io/use-waypoint: shared, istio.io/use-waypoint-namespace: infra}}
spec: {nodeName: n, containers: [{name: x}]}
status: {podIP: 10.244.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: p3, namespace: shop, labels: {istio.io/use-waypoint: none}}
spec: {nodeName: n, containers: [{name: x}]}
status: {podIP: 10.244.0.3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm1, namespace: shop}
spec: {address: 192.168.0.5, labels: {istio.io/use-waypoint: svc-wp}}
`;
  const { model, diagnostics } = load(base);
  const svc = (n: string) => model.services.find((s) => s.name === n)!;
  const wl = (n: string) => model.workloads.find((w) => w.name === n)!;

  test("a Service label wins over the namespace's; none opts out", () => {
    expect(svc("a").waypoint).toEqual({ gateway: "shop/ns-wp", via: "namespace-label" });
    expect(svc("b").waypoint).toEqual({ gateway: "shop/svc-wp", via: "service-label" });
    expect(svc("c").waypoint).toBeUndefined();
  });

  test("a pod label wins over the namespace's, across namespaces with use-waypoint-namespace; none opts out", () => {
    expect(wl("p1").waypoint).toEqual({ gateway: "shop/ns-wp", via: "namespace-label" });
    expect(wl("p2").waypoint).toEqual({ gateway: "infra/shared", via: "pod-label" });
    expect(wl("p3").waypoint).toBeUndefined();
  });

  test("a waypoint for services only does not bind a workload (and check warns)", () => {
    expect(wl("vm1").waypoint).toBeUndefined();
    expect(diagnostics.filter((d) => d.rule === "waypoint-for").map((d) => d.line)).toEqual([57]); // vm1's spec.labels
  });
});

describe("services and workloads", () => {
  const text = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-a
  containers:
  - name: app
    command: [mesh, httpbin]
    args: [--port, "8080"]
    ports: [{name: http, containerPort: 8080}]
status:
  podIP: 10.244.1.1
  podIPs: [{ip: 10.244.1.1}, {ip: "fd00::1"}]
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-b
  containers: [{name: app, ports: [{name: http, containerPort: 9090}]}]
status: {podIP: 10.244.2.1}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec:
  address: 192.168.10.5
  serviceAccount: web-vm
  labels: {app: web}
  ports: {http: 7070}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: vm-2, namespace: shop, labels: {app: web, mesh.dev/node: vm-host}}
spec:
  address: 192.168.10.6
---
apiVersion: v1
kind: Pod
metadata: {name: other-ns, namespace: elsewhere, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: x}]}
status: {podIP: 10.244.1.9}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.1
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
`;
  const { model, diagnostics } = load(text);
  const wl = (n: string) => model.workloads.find((w) => w.name === n)!;

  test("Pods: dual-stack addresses, readiness from conditions, command + args, default service account", () => {
    expect(wl("web-1")).toMatchObject({
      addresses: ["10.244.1.1", "fd00::1"],
      ready: false,
      command: ["mesh", "httpbin", "--port", "8080"],
      serviceAccount: "default",
      identity: "spiffe://cluster.local/ns/shop/sa/default",
      ambient: true,
    });
    expect(wl("web-2").ready).toBe(true);
    expect(wl("other-ns").ambient).toBe(false);
  });

  test("WorkloadEntries: address, service account, labels from spec and metadata, node by label or name", () => {
    expect(wl("vm-1")).toMatchObject({
      uid: "WorkloadEntry/shop/vm-1",
      kind: "WorkloadEntry",
      addresses: ["192.168.10.5"],
      identity: "spiffe://cluster.local/ns/shop/sa/web-vm",
      node: "vm-1",
      ports: [{ name: "http", port: 7070 }],
      ready: true,
    });
    expect(wl("vm-2").node).toBe("vm-host");
  });

  test("a named targetPort resolves per workload; a WorkloadEntry's ports map overrides it; other namespaces stay out", () => {
    const web = model.services[0]!;
    expect(web.endpoints).toEqual([
      { workloadUid: "Pod/shop/web-1", ports: { 80: 8080 } },
      { workloadUid: "Pod/shop/web-2", ports: { 80: 9090 } },
      { workloadUid: "WorkloadEntry/shop/vm-1", ports: { 80: 7070 } },
    ]);
    // vm-2 has no port named http: it cannot serve port 80 of the Service. Pod other-ns is in a
    // namespace nobody declared, which check points out.
    expect(rules(diagnostics)).toEqual(["undeclared-namespace"]);
  });
});

describe("policies", () => {
  const text = `
apiVersion: mesh.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {rootNamespace: mesh-root, trustDomain: example.org, certificateTTL: 1h30m, rotationFraction: 0.8, outboundTrafficPolicy: deny}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-wide, namespace: mesh-root}
spec: {action: DENY, rules: [{from: [{source: {notNamespaces: [shop]}}], to: [{operation: {ports: [9000, "9001"]}}]}]}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: ns-wide, namespace: shop, annotations: {istio.io/dry-run: "true"}}
spec: {selector: {}, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-ref, namespace: shop}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: wp}
  action: AUDIT
  rules: [{to: [{operation: {notPaths: ["/private/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  mtls: {mode: STRICT}
  portLevelMtls: {"5432": {mode: PERMISSIVE}}
`;
  const { model } = load(text);
  const ap = (n: string) => model.authorizationPolicies.find((p) => p.name === n)!;

  test("MeshConfig: trust domain, root namespace, TTL as a duration, rotation, outbound policy", () => {
    expect(model.meshConfig).toEqual({
      trustDomain: "example.org",
      rootNamespace: "mesh-root",
      certTtlSeconds: 5400,
      rotationFraction: 0.8,
      outboundPolicy: "deny",
    });
  });

  test("scopes: root namespace, namespace (an empty selector too), targetRef", () => {
    expect(ap("mesh-wide").scope).toEqual({ kind: "root" });
    expect(ap("ns-wide").scope).toEqual({ kind: "namespace" });
    expect(ap("by-ref").scope).toEqual({
      kind: "targetRefs",
      targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "wp", namespace: "shop" }],
    });
  });

  test("actions, rules, dry run; ports become strings", () => {
    expect(ap("mesh-wide").action).toBe("DENY");
    expect(ap("mesh-wide").rules[0]!.to).toEqual([{ operation: { ports: ["9000", "9001"] } }]);
    expect(ap("mesh-wide").hasL7).toBe(false);
    expect(ap("ns-wide")).toMatchObject({ rules: [{}], dryRun: true, action: "ALLOW" });
    expect(ap("allow-nothing").rules).toEqual([]);
    expect(ap("by-ref").hasL7).toBe(true);
  });

  test("PeerAuthentication: mode and per-port modes", () => {
    expect(model.peerAuthentications[0]).toMatchObject({
      scope: { kind: "selector", matchLabels: { app: "db" } },
      mode: "STRICT",
      portLevelMtls: { 5432: "PERMISSIVE" },
    });
  });

  test("identities use the configured trust domain", () => {
    const r = load(text + `
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec: {serviceAccountName: sa, nodeName: n, containers: [{name: x}]}
status: {podIP: 10.244.0.1}
`);
    expect(r.model.workloads[0]!.identity).toBe("spiffe://example.org/ns/shop/sa/sa");
  });

  test("an invalid certificateTTL is an error at its position", () => {
    const r = load("apiVersion: mesh.dev/v1alpha1\nkind: MeshConfig\nspec:\n  certificateTTL: 24 hours\n");
    expect(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.rule}`)).toEqual(["4:19 invalid-value"]);
    expect(r.model.meshConfig.certTtlSeconds).toBe(86400);
  });
});

describe("hasL7", () => {
  const cases: [string, string, boolean][] = [
    ["principals only", "{from: [{source: {principals: [a]}}]}", false],
    ["namespaces and ipBlocks", "{from: [{source: {namespaces: [a], notIpBlocks: [10.0.0.0/8]}}]}", false],
    ["ports only", "{to: [{operation: {ports: ['80'], notPorts: ['81']}}]}", false],
    ["L4 condition keys", "{when: [{key: source.ip, values: [1.2.3.4]}, {key: destination.port, values: ['80']}]}", false],
    ["methods", "{to: [{operation: {methods: [GET]}}]}", true],
    ["notMethods", "{to: [{operation: {notMethods: [POST]}}]}", true],
    ["paths", "{to: [{operation: {paths: [/a]}}]}", true],
    ["notPaths", "{to: [{operation: {notPaths: [/a]}}]}", true],
    ["hosts", "{to: [{operation: {hosts: [a.com]}}]}", true],
    ["notHosts", "{to: [{operation: {notHosts: [a.com]}}]}", true],
    ["requestPrincipals", "{from: [{source: {requestPrincipals: ['*']}}]}", true],
    ["notRequestPrincipals", "{from: [{source: {notRequestPrincipals: ['*']}}]}", true],
    ["remoteIpBlocks", "{from: [{source: {remoteIpBlocks: [1.2.3.4]}}]}", true],
    ["request.auth claims", "{when: [{key: 'request.auth.claims[iss]', values: [x]}]}", true],
    ["request.headers", "{when: [{key: 'request.headers[x-a]', notValues: [x]}]}", true],
    ["remote.ip", "{when: [{key: remote.ip, values: [1.2.3.4]}]}", true],
    ["request.auth.principal", "{when: [{key: request.auth.principal, values: [a/b]}]}", true],
    ["any other request.* key", "{when: [{key: request.method, values: [GET]}]}", true],
    ["an unknown key", "{when: [{key: experimental.foo, values: [x]}]}", false],
    ["source.trustDomain", "{when: [{key: source.trustDomain, values: [td]}]}", false],
    ["an empty L7 field", "{to: [{operation: {methods: [], ports: ['80']}}]}", false],
  ];
  for (const [name, rule, want] of cases) {
    test(`${name} -> ${want ? "L7" : "L4"}`, () => {
      const { model } = load(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: shop}
spec: {rules: [${rule}]}
`);
      expect(model.authorizationPolicies[0]!.hasL7).toBe(want);
    });
  }
});

describe("HTTPRoute and ReferenceGrant", () => {
  test("defaults filled: parent group/kind/namespace, match PathPrefix /, backend kind and namespace", () => {
    const { model, diagnostics } = load(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop, creationTimestamp: "2024-05-01T00:00:00Z"}
spec:
  parentRefs: [{name: wp}]
  hostnames: [api.shop]
  rules:
  - backendRefs: [{name: api, port: 80, weight: 3}]
  - matches: [{path: {value: /v2}, headers: [{name: x-v, value: "2"}], method: GET}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}, fraction: {numerator: 1, denominator: 10}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: b}]}
    backendRefs: [{name: api-v2, namespace: other, port: 80}]
    timeouts: {request: 5s}
    retry: {codes: [503], attempts: 2}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
`);
    expect(diagnostics).toEqual([]);
    const r = model.httpRoutes[0]!;
    expect(r.parentRefs).toEqual([{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "wp", namespace: "shop" }]);
    expect(r.creationTimestamp).toBe("2024-05-01T00:00:00Z");
    expect(r.rules[0]).toEqual({
      matches: [{ path: { type: "PathPrefix", value: "/" } }],
      filters: [],
      backendRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop", port: 80, weight: 3 }],
    });
    expect(r.rules[1]!.matches).toEqual([{
      path: { type: "PathPrefix", value: "/v2" },
      headers: [{ type: "Exact", name: "x-v", value: "2" }],
      method: "GET",
    }]);
    expect(r.rules[1]!.filters).toEqual([
      {
        type: "RequestMirror",
        requestMirror: {
          backendRef: { group: "", kind: "Service", name: "shadow", namespace: "shop", port: 80 },
          fraction: { numerator: 1, denominator: 10 },
        },
      },
      { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-a", value: "b" }] } },
    ]);
    expect(r.rules[1]!.timeouts).toEqual({ request: "5s" });
    expect(r.rules[1]!.retry).toEqual({ codes: [503], attempts: 2 });
    expect(model.referenceGrants).toEqual([expect.objectContaining({
      name: "g",
      namespace: "other",
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "shop" }],
      to: [{ group: "", kind: "Service" }],
    })]);
  });

  /** HTTPRoute shop/r with `rules` (the lines under spec.rules): its first rule is on line 7. */
  const route = (rules: string) => load(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
${rules}`);

  test("a RequestMirror filter without requestMirror is an error at the filter, not a crash", () => {
    const { model, diagnostics } = route(`  - filters:
    - type: RequestMirror
    backendRefs:
    - name: api
      filters: [{type: RequestMirror}]
`);
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.rule}`)).toEqual(["8:7 invalid-value", "11:17 invalid-value"]);
    expect(diagnostics[0]!.message).toBe(
      'Invalid value for "spec.rules[0].filters[0]" in HTTPRoute: A RequestMirror filter needs requestMirror with the backendRef to mirror to',
    );
    expect(diagnostics[1]!.message).toContain('"spec.rules[0].backendRefs[0].filters[0]"');
    expect(model.httpRoutes).toEqual([]);
  });

  test("a RequestMirror filter with a misspelt requestMirror: the unknown field is reported, the filter left out", () => {
    const { model, diagnostics } = route(`  - filters:
    - type: RequestMirror
      requestMirorr: {backendRef: {name: shadow}}
`);
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.rule}`)).toEqual(["9:7 unknown-field"]);
    expect(diagnostics[0]!.message).toContain('did you mean "requestMirror"?');
    expect(model.httpRoutes[0]!.rules[0]!.filters).toEqual([]);
  });
});

describe("several files, lists, and Kubernetes API objects", () => {
  test("files form one configuration; each diagnostic names its own file and line", () => {
    const r = parseConfig([
      { path: "a.yaml", text: "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n" },
      { path: "b.yaml", text: "# comment\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n" },
    ]);
    expect(r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.rule}`)).toEqual(["b.yaml:5:9 duplicate-object"]);
    expect(r.diagnostics[0]!.message).toContain("a.yaml:1:1");
  });

  test("kind: List (kubectl get -o yaml) holds objects, positions inside it are kept", () => {
    const r = load("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Namespce\n  metadata: {name: b}\n");
    expect(r.model.namespaces.map((n) => n.name)).toEqual(["a"]);
    expect(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.rule}`)).toEqual(["8:9 unknown-kind"]);
  });

  test("a YAML syntax error in one file is a diagnostic, the other files still load", () => {
    const r = parseConfig([
      { path: "bad.yaml", text: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [a\n" },
      { path: "good.yaml", text: "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n" },
    ]);
    expect(r.diagnostics.every((d) => d.file === "bad.yaml" && d.rule === "yaml-syntax")).toBe(true);
    expect(r.diagnostics.length).toBeGreaterThan(0);
    expect(r.model.namespaces.map((n) => n.name)).toEqual(["b"]);
  });

  test("modelFromObjects: same normalization without positions; controllers and unknown fields are not warned about", () => {
    const r = modelFromObjects([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { "istio.io/dataplane-mode": "ambient" } } },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace: "shop", labels: { app: "p" }, uid: "1234", resourceVersion: "9" },
        spec: { nodeName: "n1", serviceAccountName: "sa", containers: [{ name: "c", image: "i", env: [] }], tolerations: [] },
        status: { podIP: "10.1.0.5", phase: "Running", hostIP: "192.168.0.2" },
      },
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d", namespace: "shop" }, spec: {} },
      { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "x", namespace: "shop" }, spec: { action: "DENNY" } },
      // Fields of newer Kubernetes versions are not typos here.
      { apiVersion: "v1", kind: "Service", metadata: { name: "s", namespace: "shop" }, spec: { ports: [{ port: 80 }], futureField: true } },
    ]);
    expect(r.model.workloads[0]).toMatchObject({ identity: "spiffe://cluster.local/ns/shop/sa/sa", node: "n1", addresses: ["10.1.0.5"], ambient: true });
    expect(r.model.workloads[0]!.source).toBeUndefined();
    expect(r.model.services.map((s) => s.name)).toEqual(["s"]);
    expect(r.diagnostics).toEqual([{
      file: "kubernetes:AuthorizationPolicy/shop/x",
      line: 0,
      col: 0,
      severity: "error",
      message: 'Invalid value for "spec.action" in AuthorizationPolicy: Invalid type: Expected ("ALLOW" | "DENY" | "AUDIT" | "CUSTOM") but received "DENNY": did you mean "DENY"?',
      rule: "invalid-value",
    }]);
  });
});

describe("buildModel over parseFile (what a watcher re-parses)", () => {
  test("re-parsing only the changed file gives the same model as parsing everything", async () => {
    const { buildModel, parseFile } = await import("./mod.ts");
    const a = { path: "a.yaml", text: readFileSync(join(repo, "config/mesh.yaml"), "utf8") };
    const b1 = { path: "b.yaml", text: "apiVersion: v1\nkind: Namespace\nmetadata: {name: extra}\n" };
    const b2 = { path: "b.yaml", text: "apiVersion: v1\nkind: Namespace\nmetadata: {name: extra2}\n" };
    const pa = parseFile(a);
    expect(buildModel([pa, parseFile(b1)]).model.namespaces.map((n) => n.name)).toEqual(["ambient-ns", "extra"]);
    const next = buildModel([pa, parseFile(b2)]);
    expect(next).toEqual(parseConfig([a, b2]));
    expect(next.model.namespaces.map((n) => n.name)).toEqual(["ambient-ns", "extra2"]);
  });

  test("an HTTPRoute parent Service without a group is the core Service", () => {
    const { model } = load("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: s}\nspec:\n  parentRefs: [{kind: Service, name: api}]\n");
    expect(model.httpRoutes[0]!.parentRefs).toEqual([{ group: "", kind: "Service", name: "api", namespace: "s" }]);
  });
});
