/** The API resources the control role reads and writes, with the RBAC each use needs (k8s/rbac.yaml mirrors it). */
import type { ResourceType } from "./client.ts";

export const NAMESPACES: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };
export const PODS: ResourceType = { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true };
export const SERVICES: ResourceType = { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true };
export const SERVICE_ACCOUNTS: ResourceType = { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true };
export const CONFIG_MAPS: ResourceType = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };
export const DEPLOYMENTS: ResourceType = { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true };
export const WORKLOAD_ENTRIES: ResourceType = { group: "networking.istio.io", version: "v1", plural: "workloadentries", kind: "WorkloadEntry", namespaced: true };
export const SERVICE_ENTRIES: ResourceType = { group: "networking.istio.io", version: "v1", plural: "serviceentries", kind: "ServiceEntry", namespaced: true };
export const DESTINATION_RULES: ResourceType = { group: "networking.istio.io", version: "v1", plural: "destinationrules", kind: "DestinationRule", namespaced: true };
export const AUTHORIZATION_POLICIES: ResourceType = { group: "security.istio.io", version: "v1", plural: "authorizationpolicies", kind: "AuthorizationPolicy", namespaced: true };
export const REQUEST_AUTHENTICATIONS: ResourceType = { group: "security.istio.io", version: "v1", plural: "requestauthentications", kind: "RequestAuthentication", namespaced: true };
export const PEER_AUTHENTICATIONS: ResourceType = { group: "security.istio.io", version: "v1", plural: "peerauthentications", kind: "PeerAuthentication", namespaced: true };
export const GATEWAYS: ResourceType = { group: "gateway.networking.k8s.io", version: "v1", plural: "gateways", kind: "Gateway", namespaced: true };
export const HTTP_ROUTES: ResourceType = { group: "gateway.networking.k8s.io", version: "v1", plural: "httproutes", kind: "HTTPRoute", namespaced: true };
export const REFERENCE_GRANTS: ResourceType = { group: "gateway.networking.k8s.io", version: "v1beta1", plural: "referencegrants", kind: "ReferenceGrant", namespaced: true };
export const TOKEN_REVIEWS: ResourceType = { group: "authentication.k8s.io", version: "v1", plural: "tokenreviews", kind: "TokenReview", namespaced: false };

/** Older clusters serve Istio's kinds at v1beta1 only (Istio < 1.22): tried when v1 is not found. */
export const OLDER_VERSIONS: Readonly<Record<string, string[]>> = {
  "networking.istio.io": ["v1beta1"],
  "security.istio.io": ["v1beta1"],
  "gateway.networking.k8s.io": ["v1beta1"],
};

/** Every kind the mesh model is built from (list + watch, cluster-wide). */
export const MODEL_RESOURCES: readonly ResourceType[] = [
  NAMESPACES,
  PODS,
  SERVICES,
  SERVICE_ACCOUNTS,
  WORKLOAD_ENTRIES,
  SERVICE_ENTRIES,
  DESTINATION_RULES,
  AUTHORIZATION_POLICIES,
  REQUEST_AUTHENTICATIONS,
  PEER_AUTHENTICATIONS,
  GATEWAYS,
  HTTP_ROUTES,
  REFERENCE_GRANTS,
];

/** Labels the control role puts on what it creates for a waypoint. */
export const LABEL_GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "mesh";
