/**
 * `mesh check`, `mesh explain` and the proxies must give one answer for every way a policy can attach to a
 * destination: every attachment kind x waypoint present / absent / not ready x L4 / L7 rules. Each row
 * builds a configuration from YAML (as a user writes it) and asks all three: check's diagnostics, explain's
 * verdict, and the functions the ztunnel and the waypoint run on each connection.
 */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { indexModel } from "../model/mod.ts";
import { authorizeAtWaypoint, authorizeAtZtunnel, placement } from "../policy/mod.ts";
import { explainRequest, parseSource, parseTarget } from "./mod.ts";
import { waypointYaml } from "../../test/support/mod.ts";

type Attachment = "selector" | "namespace" | "root" | "Service" | "Gateway" | "GatewayClass";
type WaypointState = "present" | "absent" | "not ready";
type Layer = "L4" | "L7";

const L4_RULE = `  - from:\n    - source: {principals: ["cluster.local/ns/shop/sa/viewer"]}`;
const L7_RULE = `  - to:\n    - operation: {methods: ["GET"]}`;

function attach(kind: Attachment): { namespace: string; scope: string } {
  switch (kind) {
    case "selector":
      return { namespace: "shop", scope: "  selector:\n    matchLabels: {app: api}\n" };
    case "namespace":
      return { namespace: "shop", scope: "" };
    case "root":
      return { namespace: "istio-system", scope: "" };
    case "Service":
      return { namespace: "shop", scope: `  targetRefs:\n  - {kind: Service, group: "", name: api}\n` };
    case "Gateway":
      return { namespace: "shop", scope: `  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: wp}\n` };
    case "GatewayClass":
      return {
        namespace: "istio-system",
        scope: `  targetRefs:\n  - {kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}\n`,
      };
  }
}

function config(kind: Attachment, wp: WaypointState, layer: Layer): string {
  const a = attach(kind);
  const label = wp === "absent" ? "" : "\n  labels: {istio.io/use-waypoint: wp}";
  // Not ready: the Gateway has no address yet.
  const gateway = wp === "absent" ? "" : `---\n${waypointYaml({ name: "wp", addresses: wp === "present" ? ["10.244.2.20"] : [] })}\n`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Pod
metadata: {name: viewer, namespace: shop, labels: {app: viewer}}
spec: {nodeName: node-a, serviceAccountName: viewer, containers: [{name: c, image: c}]}
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {nodeName: node-b, serviceAccountName: api, containers: [{name: c, image: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.2.10}
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop${label}
spec:
  clusterIP: 10.96.0.10
  selector: {app: api}
  ports: [{port: 80}]
${gateway}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: ${a.namespace}}
spec:
${a.scope}  action: ALLOW
  rules:
${layer === "L4" ? L4_RULE : L7_RULE}
`;
}

/**
 * The one answer: with a ready waypoint it enforces everything (the request matches the rule: allowed);
 * bound to a waypoint that is not ready, nothing gets through; without a waypoint, the ztunnel enforces
 * L4 rules of policies selecting the workload, and fails closed on L7 rules and on targetRefs to the
 * Service; Gateway and GatewayClass refs only reach traffic through a waypoint, so none here.
 */
function expected(kind: Attachment, wp: WaypointState, layer: Layer): { allowed: boolean; checkError?: string } {
  if (wp === "present") return { allowed: true };
  if (wp === "not ready") return { allowed: false };
  if (kind === "Gateway" || kind === "GatewayClass") return { allowed: true };
  if (layer === "L7") return { allowed: false, checkError: "l7-without-waypoint" };
  if (kind === "Service") return { allowed: false, checkError: "targetrefs-without-waypoint" };
  return { allowed: true };
}

const FAIL_CLOSED_RULES = new Set(["l7-without-waypoint", "targetrefs-without-waypoint"]);

describe("check, explain and the data path agree on every attachment", () => {
  const kinds: Attachment[] = ["selector", "namespace", "root", "Service", "Gateway", "GatewayClass"];
  const states: WaypointState[] = ["present", "absent", "not ready"];
  for (const kind of kinds) {
    for (const wp of states) {
      for (const layer of ["L4", "L7"] as Layer[]) {
        test(`${kind} x waypoint ${wp} x ${layer}`, async () => {
          const want = expected(kind, wp, layer);
          const { model, diagnostics } = parseConfig([{ path: "mesh.yaml", text: config(kind, wp, layer) }]);

          // mesh check: a fail-closed error about api exactly when its data path fails closed because of the
          // policy (a namespace or root policy also reaches viewer, which no waypoint serves in any row).
          const failClosed = diagnostics.filter((d) => FAIL_CLOSED_RULES.has(d.rule) && d.message.includes("shop/api"))
            .map((d) => d.rule);
          expect(failClosed).toEqual(want.checkError ? [want.checkError] : []);

          // The data path: the functions the ztunnel and the waypoint call on each connection.
          const index = indexModel(model);
          const api = model.workloads.find((w) => w.name === "api")!;
          const svc = index.serviceByName("shop", "api")!;
          const viewer = { ip: "10.244.1.10", principal: "spiffe://cluster.local/ns/shop/sa/viewer" };
          const pl = placement(index, { workload: api, service: svc });
          let dataPath: boolean;
          if (pl.point === "waypoint") {
            if (pl.denyAll !== undefined) dataPath = false;
            else {
              const atWaypoint = authorizeAtWaypoint(index, pl.waypoint!, { workload: api, service: svc }, {
                source: viewer,
                destination: { ip: "10.244.2.10", port: 80 },
                http: { method: "GET", path: "/", host: "api.shop:80", headers: {} },
              });
              const hop = authorizeAtZtunnel(index, api, {
                source: { ip: "10.244.2.20", principal: pl.waypoint!.identity },
                destination: { port: 80 },
              });
              dataPath = atWaypoint.allowed && hop.allowed;
            }
          } else {
            dataPath = authorizeAtZtunnel(index, api, { source: viewer, destination: { port: 80 } }).allowed;
          }
          expect(dataPath).toBe(want.allowed);

          // mesh explain, for the same request.
          const e = await explainRequest(model, {
            from: parseSource("shop/viewer"),
            to: parseTarget("api.shop:80"),
            method: "GET",
            path: "/",
          });
          expect(e.decision === "allow").toBe(want.allowed);
        });
      }
    }
  }
});
