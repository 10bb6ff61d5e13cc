/**
 * Cluster objects -> the objects src/config normalizes (modelFromObjects), so the model is built by the same
 * code as in file mode. What differs on a live cluster is settled here, and only here:
 * - Pods are projected to the fields the model reads (the rest of a live Pod is large and irrelevant);
 *   finished Pods (Succeeded, Failed) are dropped, since their addresses go back to the pool; host-network
 *   Pods are dropped, since they share their node's address and have no identity of their own;
 * - readiness comes from each Pod's Ready condition (EndpointSlices are not read: the model keeps readiness
 *   per workload, and the EndpointSlice controller derives its `ready` from the same condition);
 * - a waypoint Gateway without spec.addresses gets the addresses its status names (the waypoint Service's
 *   ClusterIP, written by this control role), and the waypoint's own Service is left out of the model (it
 *   is the waypoint's plumbing, not a destination, and would claim the same address);
 * - the mesh-wide MeshConfig comes from the ConfigMap `mesh` (key mesh.yaml) in the control role's namespace.
 */
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./client.ts";
import { LABEL_GATEWAY_NAME, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";

export const WAYPOINT_CLASS = "istio-waypoint";
/** The ConfigMap holding the MeshConfig (trust domain, certificate TTL...), and its key. */
export const MESH_CONFIGMAP = "mesh";
export const MESH_CONFIGMAP_KEY = "mesh.yaml";

export interface ClusterObjects {
  /** By kind: "Pod", "Service"... */
  byKind: ReadonlyMap<string, readonly KubeObject[]>;
  /** The `mesh` ConfigMap, if any. */
  meshConfigMap?: KubeObject;
}

export interface EdgeResult {
  objects: unknown[];
  /** Problems found at the edge (an unreadable mesh.yaml in the ConfigMap). */
  problems: string[];
}

export function isWaypointGateway(o: KubeObject): boolean {
  return (o.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName === WAYPOINT_CLASS;
}

/** A Service this control role created for a waypoint (owned by its Gateway). */
export function isWaypointService(o: KubeObject): boolean {
  const l = o.metadata.labels ?? {};
  return l[LABEL_MANAGED_BY] === MANAGED_BY && !!l[LABEL_GATEWAY_NAME] &&
    !!o.metadata.ownerReferences?.some((r) => r.kind === "Gateway");
}

function meta(o: KubeObject): KubeObject["metadata"] {
  const { managedFields: _m, ...rest } = o.metadata;
  return rest as KubeObject["metadata"];
}

type Container = { name?: string; ports?: { name?: string; containerPort: number; protocol?: string }[] };

function projectPod(o: KubeObject): KubeObject | undefined {
  const spec = (o.spec ?? {}) as {
    nodeName?: string;
    serviceAccountName?: string;
    serviceAccount?: string;
    hostNetwork?: boolean;
    containers?: Container[];
  };
  const status = (o.status ?? {}) as { podIP?: string; podIPs?: { ip: string }[]; phase?: string; conditions?: { type: string; status: string }[] };
  if (spec.hostNetwork) return undefined;
  if (status.phase === "Succeeded" || status.phase === "Failed") return undefined;
  const md = o.metadata;
  const containers = (spec.containers?.length ? spec.containers : [{ name: "main" }]).map((c) => ({
    name: c.name,
    ...(c.ports?.length ? { ports: c.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, ...(p.protocol ? { protocol: p.protocol } : {}) })) } : {}),
  }));
  const ready = status.conditions?.find((c) => c.type === "Ready");
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: md.name, namespace: md.namespace, ...(md.labels ? { labels: md.labels } : {}), ...(md.uid ? { uid: md.uid } : {}) },
    spec: {
      ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      ...(spec.serviceAccountName || spec.serviceAccount ? { serviceAccountName: spec.serviceAccountName || spec.serviceAccount } : {}),
      containers,
    },
    status: {
      ...(status.podIP ? { podIP: status.podIP } : {}),
      ...(status.podIPs?.length ? { podIPs: status.podIPs.map((p) => ({ ip: p.ip })) } : {}),
      // A Pod the kubelet has not reported on yet is not ready (file mode's "no status" means ready).
      phase: status.phase ?? "Pending",
      conditions: [{ type: "Ready", status: ready?.status ?? "False" }],
    },
  };
}

function gatewayWithAddresses(o: KubeObject): KubeObject {
  const spec = (o.spec ?? {}) as { addresses?: { type?: string; value: string }[] };
  const out: KubeObject = { ...o, metadata: meta(o) };
  delete out.status;
  if (isWaypointGateway(o) && !spec.addresses?.length) {
    const st = (o.status ?? {}) as { addresses?: { type?: string; value: string }[] };
    const addrs = (st.addresses ?? []).filter((a) => (a.type ?? "IPAddress") === "IPAddress" && a.value);
    if (addrs.length) out.spec = { ...spec, addresses: addrs.map((a) => ({ type: "IPAddress", value: a.value })) };
  }
  return out;
}

/** The objects modelFromObjects gets for the cluster as it is now. */
export function modelObjects(c: ClusterObjects): EdgeResult {
  const objects: unknown[] = [];
  const problems: string[] = [];
  for (const [kind, list] of c.byKind) {
    // Oldest first (Istio's tie-break between policies at one level), then by name: a stable order, so the
    // same cluster always makes the same model and an unchanged cluster is not pushed again.
    const sorted = [...list].sort((a, b) =>
      (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
      `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`)
    );
    for (const o of sorted) {
      if (o.metadata.deletionTimestamp && kind !== "Pod") continue;
      if (kind === "Pod") {
        const p = projectPod(o);
        if (p) objects.push(p);
      } else if (kind === "Service") {
        if (!isWaypointService(o)) objects.push(strip(o));
      } else if (kind === "Gateway") {
        objects.push(gatewayWithAddresses(o));
      } else {
        objects.push(strip(o));
      }
    }
  }
  const text = (c.meshConfigMap?.data as Record<string, string> | undefined)?.[MESH_CONFIGMAP_KEY];
  if (text) {
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) {
        problems.push(`ConfigMap ${c.meshConfigMap!.metadata.namespace}/${MESH_CONFIGMAP} key ${MESH_CONFIGMAP_KEY}: ${doc.errors[0]!.message.split("\n")[0]}`);
        continue;
      }
      const v = doc.toJS() as { kind?: string } | null;
      if (v?.kind === "MeshConfig") objects.push(v);
      else if (v) problems.push(`ConfigMap ${c.meshConfigMap!.metadata.namespace}/${MESH_CONFIGMAP} key ${MESH_CONFIGMAP_KEY}: only a MeshConfig is read there, not ${v.kind ?? "an object without kind"}`);
    }
  }
  return { objects, problems };
}

function strip(o: KubeObject): KubeObject {
  // Status written by controllers is not configuration (and is large on some kinds).
  const { status: _s, ...rest } = o;
  return { ...rest, metadata: meta(o) } as KubeObject;
}
