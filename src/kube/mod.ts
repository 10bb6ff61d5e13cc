/**
 * Kubernetes for the control role: reaching the API server (in-cluster or kubeconfig), list+watch of every
 * kind the mesh model is built from (converted at the edge, normalized by src/config as in file mode),
 * TokenReview authentication of proxies bound to their node, and the waypoint Deployments/Services and
 * status conditions it writes back.
 *
 * @example
 * ```ts
 * const kube = new KubernetesPlane({ onUpdate: (u) => push(u.model), onError: (e) => report(e) });
 * await kube.start();
 * const caller = await kube.authenticate(projectedToken); // { kind: "node", node: "worker-a" }
 * ```
 */
export { CONTROL_SERVICE, KubernetesPlane, type KubernetesOptions } from "./cluster.ts";
export { apiVersionOf, collectionPath, KubeApiError, KubeClient, type KubeObject, type ResourceType, type WatchEvent } from "./client.ts";
export { type ClusterConnection, fromKubeconfig, inCluster, IN_CLUSTER_DIR, resolveConnection } from "./connection.ts";
export { KubernetesSource, type ModelError, type ModelUpdate } from "./source.ts";
export { isBootstrapToken, PROXY_TOKEN_AUDIENCE, TokenReviewer } from "./token_review.ts";
export { ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY, waypointObjects, type WaypointSettings } from "./waypoints.ts";
export { MESH_CONFIGMAP, MESH_CONFIGMAP_KEY } from "./edge.ts";
