/**
 * The control role's cluster side (src/kube KubernetesPlane) running as the service account of
 * k8s/rbac.yaml, against the fake API server enforcing exactly those rules: waypoints get their
 * ServiceAccount, Deployment and Service (owned by the Gateway, so deleting it cleans up), Gateways and
 * policies get Istio's status conditions, the trust bundle is published, proxies' tokens are reviewed. No
 * request is forbidden, and every granted verb is used (least privilege, both ways).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLevel } from "../src/core/mod.ts";
import { FakeApiServer } from "../src/kube/_test_apiserver.ts";
import { namespace, pod, seedShop, serviceAccount, waypointGateway } from "../src/kube/_test_cluster.ts";
import { KubeClient, KubernetesPlane, type KubeObject, TokenReviewer } from "../src/kube/mod.ts";
import { fromKubeconfig } from "../src/kube/mod.ts";
import { grantedTriples, rbacGrants, waitFor } from "./support/mod.ts";

const CONTROL_USER = "system:serviceaccount:mesh-system:mesh-control";
const dir = mkdtempSync(join(tmpdir(), "mesh-k8s-rbac-"));
let api: FakeApiServer;
let plane: KubernetesPlane;
let kubeconfig: string;
const grants = rbacGrants();

beforeAll(async () => {
  setLevel("kube", "warn");
  api = await FakeApiServer.start({ rbac: grants, bookmarkIntervalMs: 500 });
  api.put(namespace("mesh-system"));
  api.put(serviceAccount("mesh-system", "mesh-control"));
  api.put(serviceAccount("mesh-system", "ztunnel"));
  seedShop(api);
  api.put({ ...namespace("shop", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "wp" }) });
  api.put(waypointGateway("shop", "wp"));
  api.put({
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name: "api-get-only", namespace: "shop" },
    spec: { targetRefs: [{ kind: "Service", group: "", name: "api" }], action: "ALLOW", rules: [{ to: [{ operation: { methods: ["GET"] } }] }] },
  });
  api.put({
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name: "to-nowhere", namespace: "shop" },
    spec: { targetRefs: [{ kind: "Service", group: "", name: "missing" }], action: "ALLOW", rules: [{}] },
  });
  const token = await api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "mesh-control" });
  kubeconfig = api.writeKubeconfig(join(dir, "kubeconfig"), { kind: "token", token });
  plane = new KubernetesPlane({
    kubeconfig,
    onUpdate() {},
    onError() {},
    debounceMs: 20,
    waypointImage: "registry.example/mesh:0.1.0",
    backoff: { initialMs: 50, maxMs: 500 },
    resyncMs: 300,
  });
  await plane.start();
  plane.setTrustBundle("-----BEGIN CERTIFICATE-----\nroot-1\n-----END CERTIFICATE-----\n");
});
afterAll(async () => {
  await plane?.close();
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

const gw = () => api.get("Gateway", "shop", "wp")!;
const conds = (o: KubeObject | undefined) => ((o?.status ?? {}) as { conditions?: { type: string; status: string; reason: string; message: string }[] }).conditions ?? [];

describe("control role on a cluster, under k8s/rbac.yaml", () => {
  test("the control role's namespace comes from its kubeconfig context; its Service names are in its certificate", () => {
    expect(plane.namespace).toBe("mesh-system");
    expect(plane.serverNames).toContain("mesh-control.mesh-system.svc");
  });

  test("a waypoint Gateway gets a ServiceAccount, a Deployment and a Service, owned by the Gateway", async () => {
    const dep = await waitFor("deployment", () => api.get("Deployment", "shop", "wp"));
    const svc = await waitFor("service", () => api.get("Service", "shop", "wp"));
    const sa = await waitFor("service account", () => api.get("ServiceAccount", "shop", "wp"));
    for (const o of [dep, svc, sa]) {
      expect(o.metadata.ownerReferences).toEqual([{ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "wp", uid: gw().metadata.uid!, controller: true, blockOwnerDeletion: true }]);
    }
    const tpl = (dep.spec as { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } }).template;
    expect(tpl.metadata.labels["istio.io/dataplane-mode"]).toBe("none");
    expect(tpl.spec.serviceAccountName).toBe("wp");
    const c = (tpl.spec.containers as { args: string[]; image: string }[])[0]!;
    expect(c.image).toBe("registry.example/mesh:0.1.0");
    expect(c.args.join(" ")).toContain("--role waypoint --gateway shop/wp --control-plane mesh-control.mesh-system.svc:15012");
    expect((svc.spec as { clusterIP: string }).clusterIP).toMatch(/^10\.96\./);
  });

  test("Gateway status: Programmed once the Deployment is ready, with the Service's address", async () => {
    await waitFor("accepted, pending", () => conds(gw()).some((c) => c.type === "Programmed" && c.reason === "Pending"));
    expect(conds(gw()).find((c) => c.type === "Accepted")?.status).toBe("True");
    // The deployment controller reports a ready replica.
    const dep = api.get("Deployment", "shop", "wp")!;
    api.put({ ...dep, status: { replicas: 1, readyReplicas: 1 } });
    const ip = (api.get("Service", "shop", "wp")!.spec as { clusterIP: string }).clusterIP;
    await waitFor("programmed", () => conds(gw()).find((c) => c.type === "Programmed")?.status === "True");
    expect((gw().status as { addresses: unknown[] }).addresses).toEqual([{ type: "IPAddress", value: ip }]);
    const listeners = (gw().status as { listeners: { name: string; conditions: { type: string; status: string }[] }[] }).listeners;
    expect(listeners.map((l) => l.name)).toEqual(["mesh"]);
    // The model's waypoint now has that address (where ztunnels send HBONE to it).
    await waitFor("model address", () => plane.source.lastGood?.waypoints.find((w) => w.name === "wp")?.addresses[0] === ip);
  });

  test("policy status: bound to the waypoint, not bound, and ztunnel-attached", async () => {
    await waitFor("bound", () => conds(api.get("AuthorizationPolicy", "shop", "api-get-only")).find((c) => c.type === "WaypointAccepted")?.status === "True");
    expect(conds(api.get("AuthorizationPolicy", "shop", "api-get-only"))[0]!.message).toBe("bound to shop/wp");
    const nowhere = conds(api.get("AuthorizationPolicy", "shop", "to-nowhere"));
    expect(nowhere[0]).toMatchObject({ type: "WaypointAccepted", status: "False", reason: "TargetNotFound" });
    expect(conds(api.get("AuthorizationPolicy", "shop", "api-from-viewer"))[0]).toMatchObject({ type: "ZtunnelAccepted", status: "True", reason: "Accepted" });
  });

  test("drift is repaired: an edited waypoint Service and Deployment are put back", async () => {
    const svc = api.get("Service", "shop", "wp")!;
    const ip = (svc.spec as { clusterIP: string }).clusterIP;
    api.put({ ...svc, spec: { ...(svc.spec as object), selector: { app: "something-else" } } });
    const dep = api.get("Deployment", "shop", "wp")!;
    const spec = structuredClone(dep.spec) as { template: { spec: { containers: { image: string }[] } } };
    spec.template.spec.containers[0]!.image = "evil:latest";
    api.put({ ...dep, spec });
    await waitFor("service selector back", () => (api.get("Service", "shop", "wp")!.spec as { selector: Record<string, string> }).selector["gateway.networking.k8s.io/gateway-name"] === "wp");
    expect((api.get("Service", "shop", "wp")!.spec as { clusterIP: string }).clusterIP).toBe(ip);
    await waitFor("image back", () => (api.get("Deployment", "shop", "wp")!.spec as typeof spec).template.spec.containers[0]!.image === "registry.example/mesh:0.1.0");
  });

  test("the trust bundle is published in mesh-system and in each waypoint namespace, and follows a new root", async () => {
    for (const ns of ["mesh-system", "shop"]) {
      await waitFor(`bundle in ${ns}`, () => (api.get("ConfigMap", ns, "mesh-ca-root-cert")?.data as Record<string, string> | undefined)?.["root-cert.pem"]?.includes("root-1"));
    }
    plane.setTrustBundle("-----BEGIN CERTIFICATE-----\nroot-1\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nroot-2\n-----END CERTIFICATE-----\n");
    await waitFor("bundle updated", () => (api.get("ConfigMap", "shop", "mesh-ca-root-cert")?.data as Record<string, string>)["root-cert.pem"].includes("root-2"));
  });

  test("proxy tokens are reviewed (a pod not watched yet is read directly)", async () => {
    api.put(pod({ ns: "mesh-system", name: "ztunnel-x", node: "node-a", sa: "ztunnel", hostNetwork: true }));
    const t = await api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "ztunnel", pod: { name: "ztunnel-x" }, audiences: ["istio-ca"] });
    expect(await plane.authenticate(t)).toEqual({ kind: "node", node: "node-a" });
    // Without the watch's copy, the reviewer reads the pod (pods get).
    const direct = new TokenReviewer({ client: new KubeClient(fromKubeconfig(kubeconfig)), isWaypoint: () => false });
    expect(await direct.authenticate(t)).toEqual({ kind: "node", node: "node-a" });
  });

  test("deleting the Gateway deletes its Deployment, Service and ServiceAccount (owner references)", async () => {
    api.remove("Gateway", "shop", "wp");
    expect(api.get("Deployment", "shop", "wp")).toBeUndefined();
    expect(api.get("Service", "shop", "wp")).toBeUndefined();
    expect(api.get("ServiceAccount", "shop", "wp")).toBeUndefined();
    await waitFor("model without waypoint", () => plane.source.lastGood && !plane.source.lastGood.waypoints.length);
    await Bun.sleep(400); // a resync later, nothing is recreated
    expect(api.get("Deployment", "shop", "wp")).toBeUndefined();
  });

  test("least privilege: nothing was forbidden, and every granted verb was used", () => {
    const mine = api.requests.filter((r) => r.user === CONTROL_USER);
    expect(mine.length).toBeGreaterThan(20);
    expect(mine.filter((r) => r.status === 403).map((r) => `${r.verb} ${r.resource}`)).toEqual([]);
    const used = new Set(mine.map((r) => {
      const [group, ...res] = r.resource.split("/");
      return `${group}|${res.join("/")}|${r.verb}`;
    }));
    const unused = grantedTriples(grants.get(CONTROL_USER)!).filter((t) => !used.has(t));
    expect(unused).toEqual([]);
  });
});
