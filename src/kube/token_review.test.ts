/**
 * TokenReview authentication against the fake API server (which signs and reviews service-account tokens
 * as kube-apiserver does): a ztunnel's projected token binds it to its pod's node, a waypoint's to its
 * Gateway, and everything else is refused with a reason.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLevel } from "../core/mod.ts";
import { mayIssue } from "../identity/mod.ts";
import { FakeApiServer } from "./_test_apiserver.ts";
import { namespace, pod, seedShop, serviceAccount, waypointDeploymentAndPod, waypointGateway } from "./_test_cluster.ts";
import { KubeClient } from "./client.ts";
import { fromKubeconfig } from "./connection.ts";
import { KubernetesSource } from "./source.ts";
import { isBootstrapToken, TokenReviewer } from "./token_review.ts";
import { isWaypointGateway } from "./edge.ts";
import { DEPLOYMENTS, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";
import { waitFor } from "../../test/support/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-kube-tr-"));
let api: FakeApiServer;
let client: KubeClient;
let source: KubernetesSource;
let reviewer: TokenReviewer;

beforeAll(async () => {
  setLevel("kube", "error");
  api = await FakeApiServer.start();
  client = new KubeClient(fromKubeconfig(api.writeKubeconfig(join(dir, "kubeconfig"))));
  api.put(namespace("mesh-system"));
  api.put(serviceAccount("mesh-system", "ztunnel"));
  seedShop(api);
  api.put(pod({ ns: "mesh-system", name: "ztunnel-aaaaa", node: "node-a", sa: "ztunnel", ip: "192.168.0.11", hostNetwork: true }));
  api.put(pod({ ns: "mesh-system", name: "ztunnel-bbbbb", node: "node-b", sa: "ztunnel", ip: "192.168.0.12", hostNetwork: true }));
  api.put(waypointGateway("shop", "wp"));
  api.put(serviceAccount("shop", "wp"));
  // The waypoint's own pod, as its Deployment runs it; and pods that merely run as its service account.
  const wp = waypointDeploymentAndPod(api.get("Gateway", "shop", "wp")!, { name: "wp-5f7d9c-x2k4q", node: "node-b", ip: "10.244.2.40" });
  api.put(wp.deployment);
  api.put(wp.pod);
  api.put(pod({ name: "wp-5f7d", node: "node-b", sa: "wp", ip: "10.244.2.30" }));
  api.put({ ...wp.pod, metadata: { ...wp.pod.metadata, name: "copycat", ownerReferences: undefined } });
  const sidecar = structuredClone(wp.pod);
  sidecar.metadata.name = "wp-5f7d9c-sidecar";
  (sidecar.spec as { containers: unknown[] }).containers.push({ name: "reader", image: "attacker.example/x" });
  api.put(sidecar);
  source = new KubernetesSource({
    client,
    namespace: "mesh-system",
    onUpdate() {},
    onError() {},
    debounceMs: 10,
    extra: [{ resource: DEPLOYMENTS, labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` }],
  });
  await source.start(5000);
  reviewer = new TokenReviewer({
    client,
    ztunnelServiceAccounts: ["mesh-system/ztunnel"],
    pod: (ns, n) => source.get("Pod", ns, n),
    isWaypoint: (ns, n) => {
      const g = source.get("Gateway", ns, n);
      return !!g && isWaypointGateway(g);
    },
    gateway: (ns, n) => source.get("Gateway", ns, n),
    deployment: (ns, n) => source.get("Deployment", ns, n),
  });
});
afterAll(async () => {
  await source.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const ztunnelToken = (podName: string, audiences = ["istio-ca"]) =>
  api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "ztunnel", pod: { name: podName }, audiences });

describe("TokenReviewer", () => {
  test("a ztunnel's projected token names the node of the pod it is bound to", async () => {
    const before = api.requests.filter((r) => r.resource.endsWith("tokenreviews")).length;
    expect(await reviewer.authenticate(await ztunnelToken("ztunnel-aaaaa"))).toEqual({ kind: "node", node: "node-a" });
    expect(await reviewer.authenticate(await ztunnelToken("ztunnel-bbbbb"))).toEqual({ kind: "node", node: "node-b" });
    const reviews = api.requests.filter((r) => r.resource.endsWith("tokenreviews")).length - before;
    expect(reviews).toBe(2);
  });

  test("node authorization: the node-a token gets node-a identities only", async () => {
    const caller = await reviewer.authenticate(await ztunnelToken("ztunnel-aaaaa"));
    const model = source.lastGood!;
    expect(mayIssue(caller, "spiffe://cluster.local/ns/shop/sa/viewer", model)).toEqual({ ok: true });
    const other = mayIssue(caller, "spiffe://cluster.local/ns/shop/sa/api", model);
    expect(other.ok).toBe(false);
    expect((other as { reason: string }).reason).toMatch(/only on other nodes/);
  });

  test("a waypoint's token (its Gateway's service account, from its Deployment's pod) names the Gateway", async () => {
    const t = await api.serviceAccountToken({ namespace: "shop", serviceAccount: "wp", pod: { name: "wp-5f7d9c-x2k4q" }, audiences: ["istio-ca"] });
    expect(await reviewer.authenticate(t)).toEqual({ kind: "gateway", namespace: "shop", name: "wp" });
  });

  test("another pod running as the waypoint's service account is no waypoint (so it never gets the waypoint's certificate)", async () => {
    const refusal = async (podName: string) => {
      const t = await api.serviceAccountToken({ namespace: "shop", serviceAccount: "wp", pod: { name: podName }, audiences: ["istio-ca"] });
      const e = await reviewer.authenticate(t).then(() => undefined, (x) => x);
      expect(e?.code).toBe("MESH_TOKEN_INVALID");
      return String(e?.message);
    };
    expect(await refusal("wp-5f7d")).toMatch(/lacks the label gateway.networking.k8s.io\/gateway-name=wp/);
    expect(await refusal("copycat")).toMatch(/not controlled by a ReplicaSet of Deployment shop\/wp/);
    expect(await refusal("wp-5f7d9c-sidecar")).toMatch(/does not run exactly the containers/);
    // Without a view of the waypoint Deployments nothing can be shown to be the waypoint's: refused.
    const blind = new TokenReviewer({ client, pod: (ns, n) => source.get("Pod", ns, n), isWaypoint: () => true });
    const t = await api.serviceAccountToken({ namespace: "shop", serviceAccount: "wp", pod: { name: "wp-5f7d9c-x2k4q" }, audiences: ["istio-ca"] });
    await expect(blind.authenticate(t)).rejects.toThrow(/no istio-waypoint Gateway|no Deployment/);
  });

  test("refused: wrong audience, unbound token, other service accounts, a deleted pod, a forged token", async () => {
    const refuse = async (t: string | Promise<string>, re: RegExp) => {
      const e = await reviewer.authenticate(await t).then(() => undefined, (x) => x);
      expect(e?.code).toBe("MESH_TOKEN_INVALID");
      expect(e?.message).toMatch(re);
    };
    await refuse(ztunnelToken("ztunnel-aaaaa", ["https://kubernetes.default.svc.cluster.local"]), /did not authenticate|audiences/);
    await refuse(api.serviceAccountToken({ namespace: "mesh-system", serviceAccount: "ztunnel", audiences: ["istio-ca"] }), /not bound to a pod/);
    await refuse(api.serviceAccountToken({ namespace: "shop", serviceAccount: "viewer", pod: { name: "viewer" }, audiences: ["istio-ca"] }), /neither a ztunnel's/);
    // A pod that runs as another account cannot borrow the ztunnel's account through a token bound to it.
    await refuse(api.serviceAccountToken({ namespace: "shop", serviceAccount: "api", pod: { name: "viewer" }, audiences: ["istio-ca"] }), /does not run as api|neither/);
    const gone = await ztunnelToken("ztunnel-bbbbb");
    api.put(pod({ ns: "mesh-system", name: "ztunnel-ccccc", node: "node-c", sa: "ztunnel", hostNetwork: true }));
    const c = await ztunnelToken("ztunnel-ccccc");
    api.remove("Pod", "mesh-system", "ztunnel-ccccc");
    await refuse(c, /did not authenticate.*no longer exists|does not exist/);
    // A JWT with the right claims but not signed by the cluster.
    const [h, p] = gone.split(".");
    await refuse(`${h}.${p}.${"A".repeat(86)}`, /did not authenticate/);
    await refuse("not-a-jwt", /did not authenticate/);
  });

  test("a cached review ends when the watch sees the pod go", async () => {
    api.put(pod({ ns: "mesh-system", name: "ztunnel-ddddd", node: "node-d", sa: "ztunnel", hostNetwork: true }));
    await waitFor("the pod in the watch", () => source.get("Pod", "mesh-system", "ztunnel-ddddd"), 5000);
    const t = await ztunnelToken("ztunnel-ddddd");
    expect(await reviewer.authenticate(t)).toEqual({ kind: "node", node: "node-d" });
    api.remove("Pod", "mesh-system", "ztunnel-ddddd");
    await waitFor("the pod gone from the watch", () => !source.get("Pod", "mesh-system", "ztunnel-ddddd"), 5000);
    await expect(reviewer.authenticate(t)).rejects.toThrow(/Service-account token refused/);
  });

  test("bootstrap tokens and Kubernetes tokens are told apart by issuer", async () => {
    expect(isBootstrapToken(await ztunnelToken("ztunnel-aaaaa"))).toBe(false);
    const payload = Buffer.from(JSON.stringify({ iss: "mesh-control" })).toString("base64url");
    expect(isBootstrapToken(`e30.${payload}.sig`)).toBe(true);
  });
});
