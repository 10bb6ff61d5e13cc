/** Test objects for src/kube and test/k8s*: a small ambient mesh as a cluster holds it (private to tests). */
import type { FakeApiServer } from "./_test_apiserver.ts";
import type { KubeObject } from "./client.ts";
import { waypointObjects } from "./waypoints.ts";

export function namespace(name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

export function serviceAccount(ns: string, name: string): KubeObject {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: ns } };
}

export interface PodInput {
  ns?: string;
  name: string;
  node: string;
  sa: string;
  ip?: string;
  labels?: Record<string, string>;
  ready?: boolean;
  phase?: string;
  hostNetwork?: boolean;
  ports?: number[];
  image?: string;
}

/** A Pod as the API server returns it: defaulted fields, kubelet status, managedFields. */
export function pod(p: PodInput): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: p.name,
      namespace: p.ns ?? "shop",
      labels: { app: p.name, ...(p.labels ?? {}) },
      managedFields: [{ manager: "kubelet", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:status": {} } }],
    },
    spec: {
      nodeName: p.node,
      serviceAccountName: p.sa,
      serviceAccount: p.sa,
      hostNetwork: p.hostNetwork || undefined,
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
      tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }],
      containers: [{
        name: "app",
        image: p.image ?? "registry.example/app:1",
        imagePullPolicy: "IfNotPresent",
        ports: (p.ports ?? [8080]).map((containerPort) => ({ containerPort, protocol: "TCP" })),
        resources: {},
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
        volumeMounts: [{ name: "kube-api-access", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }],
      }],
      volumes: [{ name: "kube-api-access", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }] } }],
    },
    status: {
      phase: p.phase ?? "Running",
      ...(p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }], hostIP: "192.168.0.10" } : {}),
      conditions: [
        { type: "Initialized", status: "True" },
        { type: "Ready", status: p.ready === false ? "False" : "True" },
        { type: "ContainersReady", status: p.ready === false ? "False" : "True" },
        { type: "PodScheduled", status: "True" },
      ],
      qosClass: "BestEffort",
      startTime: "2026-01-01T00:00:00Z",
    },
  };
}

export function service(ns: string, name: string, clusterIP: string, selector: Record<string, string>, labels: Record<string, string> = {}, port = 80, targetPort = 8080): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: ns, labels },
    spec: {
      type: "ClusterIP",
      clusterIP,
      clusterIPs: [clusterIP],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      internalTrafficPolicy: "Cluster",
      sessionAffinity: "None",
      selector,
      ports: [{ name: "http", port, targetPort, protocol: "TCP" }],
    },
    status: { loadBalancer: {} },
  };
}

export function waypointGateway(ns: string, name: string, labels: Record<string, string> = { "istio.io/waypoint-for": "service" }): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace: ns, labels },
    spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }] },
  };
}

export function allowPolicy(ns: string, name: string, app: string, principals: string[]): KubeObject {
  return {
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: ns },
    spec: { selector: { matchLabels: { app } }, action: "ALLOW", rules: [{ from: [{ source: { principals } }] }] },
  };
}

/** Namespace shop (ambient), pods viewer (node-a) and api (node-b), Service api, an L4 ALLOW for viewer. */
export function seedShop(api: FakeApiServer): void {
  api.put(namespace("shop", { "istio.io/dataplane-mode": "ambient" }));
  for (const sa of ["viewer", "api"]) api.put(serviceAccount("shop", sa));
  api.put(pod({ name: "viewer", node: "node-a", sa: "viewer", ip: "10.244.1.10" }));
  api.put(pod({ name: "api", node: "node-b", sa: "api", ip: "10.244.2.10" }));
  api.put(service("shop", "api", "10.96.0.20", { app: "api" }));
  api.put(allowPolicy("shop", "api-from-viewer", "api", ["cluster.local/ns/shop/sa/viewer"]));
}

/**
 * The waypoint Deployment the control role makes for `gw` (as stored: `gw` must carry its uid), and a pod
 * of it as the Deployment controller would create one: the template's labels and spec, pod-template-hash,
 * a ReplicaSet <name>-<hash> as controller, a node and an address.
 */
export function waypointDeploymentAndPod(gw: KubeObject, pod: { name: string; node: string; ip: string; hash?: string }): { deployment: KubeObject; pod: KubeObject } {
  const { deployment } = waypointObjects(gw, { image: "registry.example/mesh:1", controlPlane: "mesh-control.mesh-system.svc:15012" });
  const hash = pod.hash ?? "5f7d9c";
  const tpl = (deployment.spec as { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } }).template;
  return {
    deployment,
    pod: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: pod.name,
        namespace: gw.metadata.namespace,
        labels: { ...tpl.metadata.labels, "pod-template-hash": hash },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `${gw.metadata.name}-${hash}`, uid: crypto.randomUUID(), controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...structuredClone(tpl.spec), nodeName: pod.node },
      status: { phase: "Running", podIP: pod.ip, podIPs: [{ ip: pod.ip }], conditions: [{ type: "Ready", status: "True" }] },
    },
  };
}
