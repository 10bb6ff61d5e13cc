/**
 * The Kubernetes source against the fake API server: the model equals file mode's for the same objects,
 * changes arrive debounced, nothing is published before every kind is listed, the last good model keeps
 * serving through an outage and through an unreadable security policy, and the edge rules (finished and
 * host-network pods, readiness, the MeshConfig ConfigMap, waypoint addresses from status).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { parseConfig } from "../config/mod.ts";
import { setLevel } from "../core/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { FakeApiServer } from "./_test_apiserver.ts";
import { allowPolicy, namespace, pod, seedShop, service, serviceAccount, waypointDeploymentAndPod, waypointGateway } from "./_test_cluster.ts";
import { DEPLOYMENTS, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";
import { KubeClient } from "./client.ts";
import { fromKubeconfig } from "./connection.ts";
import { type ModelError, type ModelUpdate, KubernetesSource } from "./source.ts";
import { waitFor } from "../../test/support/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-kube-src-"));
let api: FakeApiServer;
let client: KubeClient;
const sources: KubernetesSource[] = [];

function open(extra: Partial<ConstructorParameters<typeof KubernetesSource>[0]> = {}) {
  const updates: ModelUpdate[] = [];
  const errors: ModelError[] = [];
  const s = new KubernetesSource({
    client,
    namespace: "mesh-system",
    onUpdate: (u) => updates.push(u),
    onError: (e) => errors.push(e),
    debounceMs: 20,
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  sources.push(s);
  return { s, updates, errors, last: () => updates[updates.length - 1]?.model };
}

beforeAll(async () => {
  setLevel("kube", "error");
  api = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
  client = new KubeClient(fromKubeconfig(api.writeKubeconfig(join(dir, "kubeconfig"))));
  api.put(namespace("mesh-system"));
  seedShop(api);
});
afterAll(async () => {
  for (const s of sources) await s.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function strip(m: MeshModel): unknown {
  // Positions differ (a file has line numbers, the cluster has none); everything else must match.
  return JSON.parse(JSON.stringify(m, (k, v) => (k === "source" ? undefined : v)));
}

describe("KubernetesSource", () => {
  test("the model equals file mode's model for the same objects", async () => {
    const { s, updates, last } = open();
    await s.start(5000);
    expect(updates.length).toBe(1);
    const fromCluster = last()!;
    // The same objects, as a user would write them in mesh.yaml.
    const docs = [
      namespace("shop", { "istio.io/dataplane-mode": "ambient" }),
      serviceAccount("shop", "viewer"),
      serviceAccount("shop", "api"),
      { apiVersion: "v1", kind: "Pod", metadata: { name: "viewer", namespace: "shop", labels: { app: "viewer" } }, spec: { nodeName: "node-a", serviceAccountName: "viewer", containers: [{ name: "app", ports: [{ containerPort: 8080, protocol: "TCP" }] }] }, status: { podIP: "10.244.1.10", podIPs: [{ ip: "10.244.1.10" }] } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "api", namespace: "shop", labels: { app: "api" } }, spec: { nodeName: "node-b", serviceAccountName: "api", containers: [{ name: "app", ports: [{ containerPort: 8080, protocol: "TCP" }] }] }, status: { podIP: "10.244.2.10", podIPs: [{ ip: "10.244.2.10" }] } },
      { apiVersion: "v1", kind: "Service", metadata: { name: "api", namespace: "shop" }, spec: { clusterIP: "10.96.0.20", selector: { app: "api" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] } },
      allowPolicy("shop", "api-from-viewer", "api", ["cluster.local/ns/shop/sa/viewer"]),
    ];
    const file = parseConfig([{ path: "mesh.yaml", text: docs.map((d) => stringify(d)).join("---\n") }]);
    expect(file.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const byName = <T extends { name: string }>(l: T[]) => [...l].sort((x, y) => x.name.localeCompare(y.name));
    const sortByName = (m: MeshModel) => ({ ...m, namespaces: byName(m.namespaces), workloads: byName(m.workloads), serviceAccounts: byName(m.serviceAccounts) });
    const a = strip(sortByName(fromCluster)) as MeshModel;
    const b = strip(sortByName(file.model)) as MeshModel;
    // The cluster also has default, kube-system and mesh-system.
    expect(a.namespaces.map((n) => n.name)).toEqual(["default", "kube-system", "mesh-system", "shop"]);
    expect({ ...a, namespaces: a.namespaces.filter((n) => n.name === "shop") }).toEqual(b);
    expect(fromCluster.workloads.find((w) => w.name === "api")).toMatchObject({ node: "node-b", identity: "spiffe://cluster.local/ns/shop/sa/api", addresses: ["10.244.2.10"], ready: true, ambient: true });
  });

  test("changes reach the model debounced; status-only writes and bookmarks do not make a new model", async () => {
    const { s, updates, last } = open();
    await s.start(5000);
    const n = updates.length;
    api.put(pod({ name: "api-2", node: "node-a", sa: "api", ip: "10.244.1.11", labels: { app: "api" } }));
    api.put(pod({ name: "api-3", node: "node-b", sa: "api", ip: "10.244.2.11", labels: { app: "api" } }));
    await waitFor("both pods", () => last()!.workloads.some((w) => w.name === "api-3") && last()!.workloads.some((w) => w.name === "api-2"), 5000);
    expect(updates.length - n).toBeLessThanOrEqual(2);
    expect(last()!.services.find((x) => x.name === "api")!.endpoints.map((e) => e.workloadUid).sort()).toEqual(["Pod/shop/api", "Pod/shop/api-2", "Pod/shop/api-3"]);
    // Readiness from the Ready condition.
    api.put(pod({ name: "api-3", node: "node-b", sa: "api", ip: "10.244.2.11", ready: false, labels: { app: "api" } }));
    await waitFor("not ready", () => last()!.workloads.find((w) => w.name === "api-3")?.ready === false, 5000);
    const m = updates.length;
    // A status write to a policy (what the controller does) changes no configuration.
    const ap = api.get("AuthorizationPolicy", "shop", "api-from-viewer")!;
    api.put({ ...ap, status: { conditions: [{ type: "ZtunnelAccepted", status: "True" }] } });
    await Bun.sleep(400); // debounce + at least one bookmark
    expect(updates.length).toBe(m);
    api.remove("Pod", "shop", "api-2");
    api.remove("Pod", "shop", "api-3");
    await waitFor("removed", () => !last()!.workloads.some((w) => w.name === "api-2" || w.name === "api-3"), 5000);
  });

  test("finished and host-network pods are left out; a pod without status is not ready", async () => {
    const { s, last } = open();
    await s.start(5000);
    api.put(pod({ name: "done", node: "node-a", sa: "api", ip: "10.244.1.50", phase: "Succeeded" }));
    api.put(pod({ name: "hostnet", ns: "kube-system", node: "node-a", sa: "default", ip: "192.168.0.10", hostNetwork: true }));
    api.put(pod({ name: "hostnet-2", ns: "kube-system", node: "node-a", sa: "default", ip: "192.168.0.10", hostNetwork: true }));
    const fresh = pod({ name: "fresh", node: "node-a", sa: "api" });
    delete fresh.status;
    api.put(fresh);
    await waitFor("fresh", () => last()!.workloads.some((w) => w.name === "fresh"), 5000);
    const names = last()!.workloads.map((w) => w.name);
    expect(names).not.toContain("done");
    expect(names).not.toContain("hostnet");
    expect(last()!.workloads.find((w) => w.name === "fresh")!.ready).toBe(false);
    for (const [ns, n] of [["shop", "done"], ["kube-system", "hostnet"], ["kube-system", "hostnet-2"], ["shop", "fresh"]]) api.remove("Pod", ns, n!);
  });

  test("a WorkloadEntry with a pod's address is left out, with a diagnostic; the pod keeps its address", async () => {
    const { s, last, updates } = open();
    await s.start(5000);
    const we = (name: string, address: string) => ({
      apiVersion: "networking.istio.io/v1",
      kind: "WorkloadEntry",
      metadata: { name, namespace: "shop" },
      spec: { address, serviceAccount: "viewer", labels: { app: "api" } },
    });
    api.put(we("squatter", "10.244.2.10")); // product api's pod IP (seedShop)
    api.put(we("vm-1", "10.10.0.5"));
    await waitFor("vm-1", () => last()!.workloads.some((w) => w.name === "vm-1"), 5000);
    const m = last()!;
    expect(m.workloads.some((w) => w.name === "squatter")).toBe(false);
    expect(m.workloads.filter((w) => w.addresses.includes("10.244.2.10")).map((w) => w.uid)).toEqual(["Pod/shop/api"]);
    expect(m.services.find((x) => x.name === "api")!.endpoints.map((e) => e.workloadUid)).not.toContain("WorkloadEntry/shop/squatter");
    const d = updates[updates.length - 1]!.warnings.find((x) => x.file === "kubernetes:WorkloadEntry/shop/squatter");
    expect(d).toMatchObject({ severity: "error", rule: "duplicate-address" });
    expect(d!.message).toContain("10.244.2.10");
    expect(d!.message).toContain("Pod shop/api");
    api.remove("WorkloadEntry", "shop", "vm-1");
    api.remove("WorkloadEntry", "shop", "squatter");
    await waitFor("gone", () => !last()!.workloads.some((w) => w.name === "vm-1"), 5000);
  });

  test("the MeshConfig comes from the ConfigMap mesh in the control namespace", async () => {
    api.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "mesh", namespace: "mesh-system" }, data: { "mesh.yaml": "apiVersion: mesh.dev/v1alpha1\nkind: MeshConfig\nmetadata:\n  name: mesh\nspec:\n  certificateTTL: 12h\n" } });
    const { s, last } = open();
    await s.start(5000);
    expect(last()!.meshConfig.certTtlSeconds).toBe(12 * 3600);
    // A broken one keeps the last good model and says where.
    const { s: s2, errors } = open();
    await s2.start(5000);
    api.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "mesh", namespace: "mesh-system" }, data: { "mesh.yaml": "kind: MeshConfig\n  bad: [" } });
    await waitFor("error", () => errors.length > 0, 5000);
    expect(errors[0]!.diagnostics[0]!.file).toBe("kubernetes:ConfigMap/mesh-system/mesh");
    expect(s2.lastGood!.meshConfig.certTtlSeconds).toBe(12 * 3600);
    api.remove("ConfigMap", "mesh-system", "mesh");
  });

  test("an unreadable security policy keeps the last good model; a lint error elsewhere does not hold the mesh back", async () => {
    const { s, errors, last, updates } = open();
    await s.start(5000);
    api.put({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "broken", namespace: "shop" }, spec: { action: "MAYBE", rules: [{}] } });
    await waitFor("error", () => errors.length > 0, 5000);
    expect(errors[errors.length - 1]!.diagnostics[0]).toMatchObject({ file: "kubernetes:AuthorizationPolicy/shop/broken", severity: "error", rule: "invalid-value" });
    const n = updates.length;
    api.put(pod({ name: "during-error", node: "node-a", sa: "viewer", ip: "10.244.1.77" }));
    await Bun.sleep(200);
    expect(updates.length).toBe(n); // held back while the policy cannot be read
    api.remove("AuthorizationPolicy", "shop", "broken");
    await waitFor("recovered", () => last()!.workloads.some((w) => w.name === "during-error"), 5000);
    // An L7 policy with no waypoint is an error for `mesh check`, but the engines fail closed on it: served.
    api.put({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "l7", namespace: "shop" }, spec: { selector: { matchLabels: { app: "api" } }, rules: [{ to: [{ operation: { methods: ["GET"] } }] }] } });
    await waitFor("served with l7", () => last()!.authorizationPolicies.some((p) => p.name === "l7"), 5000);
    expect(updates[updates.length - 1]!.warnings.some((d) => d.rule === "l7-without-waypoint" && d.severity === "error")).toBe(true);
    api.remove("AuthorizationPolicy", "shop", "l7");
    api.remove("Pod", "shop", "during-error");
  });

  test("nothing is published before every kind is listed; the outage keeps the last model", async () => {
    try {
      api.setUnavailable(true);
      const { s, updates, last } = open();
      await s.start(300);
      expect(updates.length).toBe(0);
      expect(s.synced).toBe(false);
      api.setUnavailable(false);
      await waitFor("first model", () => updates.length > 0, 8000);
      const before = last()!;
      api.setUnavailable(true);
      // The dropped watches come back to a 503 (after a backoff that a loaded machine stretches)...
      await waitFor("a 503 seen", () => s.health().some((h) => h.lastError?.includes("503")), 5000);
      // ...and the outage goes on for a while: the last model keeps serving.
      await Bun.sleep(300);
      expect(last()).toBe(before);
      api.setUnavailable(false);
      api.put(pod({ name: "after-outage", node: "node-a", sa: "viewer", ip: "10.244.1.78" }));
      await waitFor("after outage", () => last()!.workloads.some((w) => w.name === "after-outage"), 8000);
      api.remove("Pod", "shop", "after-outage");
    } finally {
      api.setUnavailable(false); // a failure here must not leave the next tests without an API server
    }
  });

  test("a waypoint Gateway's address comes from its status; the waypoint's own Service stays out of the model", async () => {
    const { s, last } = open();
    await s.start(5000);
    const gw = api.put(waypointGateway("shop", "wp"));
    api.put({ ...gw, status: { addresses: [{ type: "IPAddress", value: "10.96.0.99" }] } });
    api.put({
      ...service("shop", "wp", "10.96.0.99", { "gateway.networking.k8s.io/gateway-name": "wp" }, { "gateway.networking.k8s.io/gateway-name": "wp", "app.kubernetes.io/managed-by": "mesh" }),
      metadata: { name: "wp", namespace: "shop", labels: { "gateway.networking.k8s.io/gateway-name": "wp", "app.kubernetes.io/managed-by": "mesh" }, ownerReferences: [{ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "wp", uid: gw.metadata.uid!, controller: true }] },
    });
    await waitFor("waypoint address", () => last()!.waypoints.find((w) => w.name === "wp")?.addresses[0] === "10.96.0.99", 5000);
    expect(last()!.services.map((x) => x.name)).not.toContain("wp");
    api.remove("Gateway", "shop", "wp");
    await waitFor("gone with its Service", () => !last()!.waypoints.length && !api.get("Service", "shop", "wp"), 5000);
  });

  test("the waypoint's own pods are no workloads: their addresses are the waypoint's podAddresses; another pod of its account stays a workload", async () => {
    const { s, last, updates } = open({ extra: [{ resource: DEPLOYMENTS, labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` }] });
    await s.start(5000);
    const gw = api.put(waypointGateway("shop", "wp2"));
    const { deployment, pod: own } = waypointDeploymentAndPod(gw, { name: "wp2-5f7d9c-abcde", node: "node-b", ip: "10.244.2.60" });
    api.put(deployment);
    api.put(own);
    api.put(pod({ name: "impostor", node: "node-b", sa: "wp2", ip: "10.244.2.61", labels: { "gateway.networking.k8s.io/gateway-name": "wp2" } }));
    // Both puts reach the model, maybe in two pushes: wait for the second as well.
    await waitFor("pod addresses and the impostor", () =>
      last()!.waypoints.find((w) => w.name === "wp2")?.podAddresses?.[0] === "10.244.2.60" && last()!.workloads.some((w) => w.name === "impostor"), 5000);
    const m = last()!;
    expect(m.waypoints.find((w) => w.name === "wp2")!.podAddresses).toEqual(["10.244.2.60"]);
    expect(m.workloads.some((w) => w.name === "wp2-5f7d9c-abcde")).toBe(false);
    expect(m.workloads.find((w) => w.name === "impostor")).toMatchObject({ identity: "spiffe://cluster.local/ns/shop/sa/wp2" });
    expect(updates[updates.length - 1]!.warnings.some((d) => d.rule === "waypoint-service-account" && d.file === "kubernetes:Pod/shop/impostor")).toBe(true);
    // Without the watch of the waypoint Deployments, no pod is shown to be the waypoint's.
    const { s: blind, last: blindLast } = open();
    await blind.start(5000);
    expect(blindLast()!.waypoints.find((w) => w.name === "wp2")!.podAddresses).toBeUndefined();
    for (const [k, n] of [["Pod", "impostor"], ["Pod", "wp2-5f7d9c-abcde"], ["Deployment", "wp2"], ["Gateway", "wp2"]] as const) api.remove(k, "shop", n);
    await waitFor("gone", () => !last()!.waypoints.some((w) => w.name === "wp2"), 5000);
  });
});
