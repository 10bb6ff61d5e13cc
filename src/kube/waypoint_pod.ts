/**
 * Is a pod one of the waypoint's own pods, the ones the Deployment this control role made for the Gateway
 * runs (./waypoints.ts)? Only such a pod may act as the waypoint: its token makes a gateway caller (the
 * waypoint's certificate), and its address is where the destination ztunnels accept the waypoint's
 * traffic from. Any other pod of the waypoint's service account is an ordinary pod. Pure.
 *
 * What is checked is what the reconciler and the Deployment controller write:
 * - the pod runs as the Gateway's service account and carries the label gateway-name=<gateway>;
 * - its controller is a ReplicaSet named <deployment>-<pod-template-hash>, as the Deployment controller
 *   names them;
 * - the Deployment named after the Gateway is ours (app.kubernetes.io/managed-by=mesh) and is controlled
 *   by this very Gateway (its uid);
 * - it runs exactly the containers the Deployment's template names: no extra container or init container
 *   that would share the pod's token.
 *
 * Limit: labels and owner references are written by whoever creates the pod, and the ReplicaSet itself is
 * not read (the control role neither watches nor gets ReplicaSets). Someone allowed to create pods in a
 * waypoint's namespace as its service account could copy all of this; in Kubernetes that right is already
 * the waypoint's (it can mount the account's token), so restrict it with RBAC or an admission policy.
 */
import type { KubeObject } from "./client.ts";
import { isWaypointGateway } from "./edge.ts";
import { LABEL_GATEWAY_NAME, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";

const POD_TEMPLATE_HASH = "pod-template-hash";

type PodSpec = {
  serviceAccountName?: string;
  serviceAccount?: string;
  containers?: { name?: string }[];
  initContainers?: { name?: string }[];
  ephemeralContainers?: { name?: string }[];
};

function names(list: { name?: string }[] | undefined): string {
  return (list ?? []).map((c) => c.name ?? "").sort().join(",");
}

/**
 * Why `pod` is not a pod of the waypoint of `gateway`, or "" when it is.
 * @param gateway the Gateway the pod's service account names (undefined: none)
 * @param deployment the Deployment named after that Gateway, as the watch saw it (undefined: none)
 */
export function waypointPodProblem(pod: KubeObject, gateway: KubeObject | undefined, deployment: KubeObject | undefined): string {
  const ns = pod.metadata.namespace;
  const who = `pod ${ns}/${pod.metadata.name}`;
  if (!gateway || !isWaypointGateway(gateway)) return `${who}: no istio-waypoint Gateway it could belong to`;
  const name = gateway.metadata.name;
  if (gateway.metadata.namespace !== ns) return `${who} is not in the namespace of Gateway ${gateway.metadata.namespace}/${name}`;
  const spec = (pod.spec ?? {}) as PodSpec;
  if ((spec.serviceAccountName || spec.serviceAccount || "default") !== name) return `${who} does not run as the waypoint's service account ${ns}/${name}`;
  if (pod.metadata.labels?.[LABEL_GATEWAY_NAME] !== name) return `${who} lacks the label ${LABEL_GATEWAY_NAME}=${name}`;
  if (!deployment) return `${who}: the control role has no Deployment ${ns}/${name} for the waypoint`;
  if (deployment.metadata.namespace !== ns || deployment.metadata.name !== name) return `${who}: Deployment ${deployment.metadata.namespace}/${deployment.metadata.name} is not the waypoint's`;
  if (deployment.metadata.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY) return `${who}: Deployment ${ns}/${name} was not made by the control role`;
  const gwOwner = deployment.metadata.ownerReferences?.find((r) => r.controller);
  if (!gwOwner || gwOwner.kind !== "Gateway" || !gateway.metadata.uid || gwOwner.uid !== gateway.metadata.uid) {
    return `${who}: Deployment ${ns}/${name} is not controlled by Gateway ${ns}/${name}`;
  }
  const hash = pod.metadata.labels?.[POD_TEMPLATE_HASH];
  const owner = pod.metadata.ownerReferences?.find((r) => r.controller);
  if (!hash || !owner || owner.kind !== "ReplicaSet" || owner.name !== `${name}-${hash}`) {
    return `${who} is not controlled by a ReplicaSet of Deployment ${ns}/${name}`;
  }
  const tpl = ((deployment.spec as { template?: { spec?: PodSpec } } | undefined)?.template?.spec ?? {}) as PodSpec;
  if (names(spec.containers) !== names(tpl.containers) || names(spec.initContainers) !== names(tpl.initContainers) || (spec.ephemeralContainers?.length ?? 0) > 0) {
    return `${who} does not run exactly the containers of Deployment ${ns}/${name} (${names(tpl.containers)})`;
  }
  return "";
}
