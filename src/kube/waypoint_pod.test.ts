/** Which pods are a waypoint's own (its Deployment's): table of what each check refuses. */
import { describe, expect, test } from "bun:test";
import type { KubeObject } from "./client.ts";
import { waypointDeploymentAndPod, waypointGateway } from "./_test_cluster.ts";
import { waypointPodProblem } from "./waypoint_pod.ts";

const gw: KubeObject = { ...waypointGateway("shop", "wp"), metadata: { ...waypointGateway("shop", "wp").metadata, uid: "gw-uid" } };
const { deployment, pod } = waypointDeploymentAndPod(gw, { name: "wp-5f7d9c-abcde", node: "node-b", ip: "10.244.2.40" });

function variant(change: (p: KubeObject, d: KubeObject, g: KubeObject) => void): [KubeObject, KubeObject, KubeObject] {
  const [p, d, g] = [structuredClone(pod), structuredClone(deployment), structuredClone(gw)];
  change(p, d, g);
  return [p, d, g];
}

describe("waypointPodProblem", () => {
  test("the Deployment's pod is the waypoint's", () => {
    expect(waypointPodProblem(pod, gw, deployment)).toBe("");
  });
  const rows: [string, [KubeObject, KubeObject, KubeObject], string][] = [
    ["another service account", variant((p) => ((p.spec as { serviceAccountName: string }).serviceAccountName = "api")), "does not run as the waypoint's service account"],
    ["no gateway-name label", variant((p) => delete p.metadata.labels!["gateway.networking.k8s.io/gateway-name"]), "lacks the label"],
    ["no controller", variant((p) => (p.metadata.ownerReferences = [])), "not controlled by a ReplicaSet"],
    ["a ReplicaSet of another Deployment", variant((p) => (p.metadata.ownerReferences![0]!.name = "other-5f7d9c")), "not controlled by a ReplicaSet"],
    ["no pod-template-hash", variant((p) => delete p.metadata.labels!["pod-template-hash"]), "not controlled by a ReplicaSet"],
    ["a Deployment not made by the control role", variant((_p, d) => delete d.metadata.labels!["app.kubernetes.io/managed-by"]), "not made by the control role"],
    ["a Deployment controlled by another Gateway (uid)", variant((_p, d) => (d.metadata.ownerReferences![0]!.uid = "old-gw")), "not controlled by Gateway shop/wp"],
    ["an extra container", variant((p) => (p.spec as { containers: unknown[] }).containers.push({ name: "reader" })), "does not run exactly the containers"],
    ["an init container", variant((p) => ((p.spec as { initContainers: unknown[] }).initContainers = [{ name: "setup" }])), "does not run exactly the containers"],
    ["an ephemeral container", variant((p) => ((p.spec as { ephemeralContainers: unknown[] }).ephemeralContainers = [{ name: "debug" }])), "does not run exactly the containers"],
    ["a Gateway of another class", variant((_p, _d, g) => ((g.spec as { gatewayClassName: string }).gatewayClassName = "istio")), "no istio-waypoint Gateway"],
  ];
  for (const [name, [p, d, g], why] of rows) {
    test(`refused: ${name}`, () => expect(waypointPodProblem(p, g, d)).toContain(why));
  }
  test("refused without the Gateway or the Deployment", () => {
    expect(waypointPodProblem(pod, undefined, deployment)).toContain("no istio-waypoint Gateway");
    expect(waypointPodProblem(pod, gw, undefined)).toContain("no Deployment shop/wp");
  });
});
