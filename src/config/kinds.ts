/**
 * Which kinds mesh.yaml may hold, under which apiVersions, and what happens to the rest: Kubernetes kinds
 * the mesh does not read are warnings (ignored); Istio and Gateway API kinds the mesh does not implement
 * are warnings too; anything else is an unknown kind.
 */
import type * as v from "valibot";
import {
  authorizationPolicySchema,
  destinationRuleSchema,
  externalHostSchema,
  gatewaySchema,
  httpRouteSchema,
  meshConfigSchema,
  namespaceSchema,
  peerAuthenticationSchema,
  podSchema,
  referenceGrantSchema,
  requestAuthenticationSchema,
  serviceAccountSchema,
  serviceEntrySchema,
  serviceSchema,
  workloadEntrySchema,
} from "./schema/mod.ts";
import type { KindName, KindValues } from "./entry.ts";

/** The apiVersion of mesh's own MeshConfig kind. */
export const MESH_API_VERSION = "mesh.dev/v1alpha1";

/** One readable kind; its schema's output is the kind's entry value. */
type KindInfos = {
  [K in KindName]: {
    kind: K;
    /** Accepted apiVersions, preferred first. */
    apiVersions: string[];
    /** Checks only (input and output types agree): the object as written becomes the entry's value. */
    schema: v.GenericSchema<KindValues[K], KindValues[K]>;
    namespaced: boolean;
  };
};

export type KindInfo<K extends KindName = KindName> = KindInfos[K];

export const KINDS: readonly KindInfo[] = [
  { kind: "Namespace", apiVersions: ["v1"], schema: namespaceSchema, namespaced: false },
  { kind: "ServiceAccount", apiVersions: ["v1"], schema: serviceAccountSchema, namespaced: true },
  { kind: "Service", apiVersions: ["v1"], schema: serviceSchema, namespaced: true },
  { kind: "Pod", apiVersions: ["v1"], schema: podSchema, namespaced: true },
  {
    kind: "WorkloadEntry",
    apiVersions: ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"],
    schema: workloadEntrySchema,
    namespaced: true,
  },
  {
    kind: "AuthorizationPolicy",
    apiVersions: ["security.istio.io/v1", "security.istio.io/v1beta1"],
    schema: authorizationPolicySchema,
    namespaced: true,
  },
  {
    kind: "RequestAuthentication",
    apiVersions: ["security.istio.io/v1", "security.istio.io/v1beta1"],
    schema: requestAuthenticationSchema,
    namespaced: true,
  },
  {
    kind: "PeerAuthentication",
    apiVersions: ["security.istio.io/v1", "security.istio.io/v1beta1"],
    schema: peerAuthenticationSchema,
    namespaced: true,
  },
  {
    kind: "Gateway",
    apiVersions: ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"],
    schema: gatewaySchema,
    namespaced: true,
  },
  {
    kind: "HTTPRoute",
    apiVersions: ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"],
    schema: httpRouteSchema,
    namespaced: true,
  },
  {
    kind: "ReferenceGrant",
    apiVersions: ["gateway.networking.k8s.io/v1beta1", "gateway.networking.k8s.io/v1"],
    schema: referenceGrantSchema,
    namespaced: true,
  },
  {
    kind: "ServiceEntry",
    apiVersions: ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"],
    schema: serviceEntrySchema,
    namespaced: true,
  },
  {
    kind: "DestinationRule",
    apiVersions: ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"],
    schema: destinationRuleSchema,
    namespaced: true,
  },
  { kind: "MeshConfig", apiVersions: [MESH_API_VERSION], schema: meshConfigSchema, namespaced: false },
  // For `mesh lab` only: a machine outside the cluster. Read by the lab, not part of the mesh's model.
  { kind: "ExternalHost", apiVersions: [MESH_API_VERSION], schema: externalHostSchema, namespaced: false },
];

export const KIND_BY_NAME: ReadonlyMap<string, KindInfo> = new Map(KINDS.map((k) => [k.kind, k]));

/** Kubernetes kinds that run or configure applications but that the mesh does not read. */
const WORKLOAD_CONTROLLERS = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"];
const OTHER_KUBERNETES = [
  "ConfigMap",
  "Secret",
  "Endpoints",
  "EndpointSlice",
  "PersistentVolumeClaim",
  "PersistentVolume",
  "LimitRange",
  "ResourceQuota",
  "NetworkPolicy",
  "Ingress",
  "IngressClass",
  "Role",
  "RoleBinding",
  "ClusterRole",
  "ClusterRoleBinding",
  "PodDisruptionBudget",
  "HorizontalPodAutoscaler",
  "CustomResourceDefinition",
  "StorageClass",
  "PriorityClass",
  "Node",
];

/** Istio and Gateway API kinds mesh does not implement. */
const UNSUPPORTED = [
  "VirtualService",
  "Sidecar",
  "EnvoyFilter",
  "Telemetry",
  "ProxyConfig",
  "WasmPlugin",
  "WorkloadGroup",
  "GatewayClass",
  "GRPCRoute",
  "TCPRoute",
  "TLSRoute",
  "UDPRoute",
  "BackendTLSPolicy",
  "IstioOperator",
];

export type Classification =
  | { type: "known"; info: KindInfo; apiVersionOk: boolean }
  | { type: "workload-controller" }
  | { type: "ignored" }
  | { type: "unsupported" }
  | { type: "istio-gateway" }
  | { type: "policy-attachment" }
  | { type: "unknown" };

export function classify(apiVersion: string, kind: string): Classification {
  // Istio's own Gateway (ingress/egress) shares the kind name with the Gateway API's.
  if (kind === "Gateway" && apiVersion.startsWith("networking.istio.io/")) return { type: "istio-gateway" };
  if (kind === "PolicyAttachment") return { type: "policy-attachment" };
  const info = KIND_BY_NAME.get(kind);
  if (info) return { type: "known", info, apiVersionOk: info.apiVersions.includes(apiVersion) };
  if (WORKLOAD_CONTROLLERS.includes(kind)) return { type: "workload-controller" };
  if (OTHER_KUBERNETES.includes(kind)) return { type: "ignored" };
  if (UNSUPPORTED.includes(kind)) return { type: "unsupported" };
  return { type: "unknown" };
}

/** Every kind name a user might have meant (for "did you mean" hints). */
export function allKindNames(): string[] {
  return [...KINDS.map((k) => k.kind), ...WORKLOAD_CONTROLLERS, ...OTHER_KUBERNETES, ...UNSUPPORTED];
}
