/**
 * The normalized mesh state: plain, JSON-serializable data. The config layer builds it from YAML (or the
 * Kubernetes API); the control role pushes (parts of) it to proxies as-is; policy, route and explain read
 * it. No I/O, no runtime-specific API. Indexes are derived with `indexModel` (see ./index.ts) and never
 * serialized.
 */

/** Where an object came from, so diagnostics and `mesh explain` can point at it. */
export interface SourceRef {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export type Labels = Record<string, string>;

export interface LabelSelector {
  matchLabels?: Labels;
}

/** Kubernetes-style object reference used by policy targetRefs and route parentRefs. */
export interface ObjectRef {
  group: string; // "" for core
  kind: string; // "Service", "Gateway", "ServiceEntry" ...
  name: string;
  namespace: string;
  port?: number;
  sectionName?: string;
}

export interface MeshConfig {
  trustDomain: string; // default "cluster.local"
  rootNamespace: string; // default "istio-system"
  certTtlSeconds: number; // default 86400
  rotationFraction: number; // default 0.5
  outboundPolicy: "allow" | "deny"; // destinations outside the mesh; default "allow"
}

export interface Namespace {
  name: string;
  labels: Labels;
  /** istio.io/dataplane-mode: ambient */
  ambient: boolean;
  /** istio.io/use-waypoint on the namespace, resolved to "ns/name" (may point at a missing Gateway). */
  useWaypoint?: string;
  /** ambient.istio.io/dns-capture: "false" (label or annotation): its pods' DNS is not captured. */
  dnsCapture?: false;
  source?: SourceRef;
}

/** A Pod or a WorkloadEntry. */
export interface Workload {
  /** "Pod/<ns>/<name>" or "WorkloadEntry/<ns>/<name>" */
  uid: string;
  kind: "Pod" | "WorkloadEntry";
  name: string;
  namespace: string;
  serviceAccount: string;
  /** spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount> */
  identity: string;
  /** The node whose ztunnel owns this workload (Pod spec.nodeName; WorkloadEntry label mesh.dev/node or its name). */
  node: string;
  /** Pod status.podIP(s) or the WorkloadEntry address. */
  addresses: string[];
  labels: Labels;
  /** Its namespace is enrolled (istio.io/dataplane-mode: ambient), or the workload itself is labelled so. */
  ambient: boolean;
  /** Declared container ports (Pods) or WorkloadEntry ports (name -> number). */
  ports: { name?: string; port: number }[];
  /** The waypoint serving this workload directly (pod-level istio.io/use-waypoint), if any. */
  waypoint?: WaypointBinding;
  /** spec.containers[0].command (+args) for `mesh lab`. */
  command?: string[];
  /** Pod readiness; WorkloadEntries are always ready. */
  ready: boolean;
  /** ambient.istio.io/dns-capture: "false" on the pod or its namespace: its DNS is not sent to the ztunnel. */
  dnsCapture?: false;
  source?: SourceRef;
}

export interface ServicePort {
  name?: string;
  port: number;
  /** Resolved per endpoint: a number, or a named port looked up on each workload. */
  targetPort: number | string;
  protocol: "TCP" | "UDP" | "SCTP";
  appProtocol?: string;
}

export interface Endpoint {
  workloadUid: string;
  /** service port -> workload port for this endpoint */
  ports: Record<number, number>;
}

export interface Service {
  name: string;
  namespace: string;
  /** <name>.<namespace>.svc.cluster.local */
  hostname: string;
  /** spec.clusterIP (absent for headless). */
  vip?: string;
  ports: ServicePort[];
  selector?: Labels;
  endpoints: Endpoint[];
  labels: Labels;
  /** The waypoint that all traffic to this service must go through, if any. */
  waypoint?: WaypointBinding;
  source?: SourceRef;
}

/** How a waypoint got bound to a destination (for describe/explain). */
export interface WaypointBinding {
  /** "<namespace>/<gateway name>" */
  gateway: string;
  via: "namespace-label" | "service-label" | "pod-label" | "workloadentry-label" | "serviceentry-label";
}

/** A Gateway of class istio-waypoint. */
export interface Waypoint {
  name: string;
  namespace: string;
  /** The waypoint's own identity: spiffe://<td>/ns/<namespace>/sa/<name> (Istio names the SA after the Gateway). */
  identity: string;
  serviceAccount: string;
  /** spec.addresses values; where it listens for HBONE on 15008. */
  addresses: string[];
  /**
   * Kubernetes: the addresses of the waypoint's own pods (its Deployment's, verified by the control role),
   * where its connections to destinations come from when they differ from `addresses` (a ClusterIP).
   * The destination ztunnel counts traffic as the waypoint's only from `addresses` or these.
   */
  podAddresses?: string[];
  /** istio.io/waypoint-for: service (default), workload, all, none */
  waypointFor: "service" | "workload" | "all" | "none";
  port: number; // 15008
  source?: SourceRef;
}

// ---- security.istio.io ----

/** How a policy picks its targets. */
export type PolicyScope =
  | { kind: "root" } // in the root namespace with no selector: the whole mesh
  | { kind: "namespace" } // no selector: every workload in its namespace
  | { kind: "selector"; matchLabels: Labels }
  | { kind: "targetRefs"; targetRefs: ObjectRef[] };

export interface PolicySource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  /** Trust domain of the peer identity (newer Istio API field). */
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface PolicyOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface PolicyCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface PolicyRule {
  from?: { source: PolicySource }[];
  to?: { operation: PolicyOperation }[];
  when?: PolicyCondition[];
}

export interface AuthorizationPolicy {
  name: string;
  namespace: string;
  action: "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";
  scope: PolicyScope;
  /** Absent `rules` (an ALLOW with no rules) never matches; `[{}]` matches everything. */
  rules: PolicyRule[];
  /** Any rule uses an L7 attribute (methods, paths, hosts, requestPrincipals, request.* conditions...). */
  hasL7: boolean;
  dryRun?: boolean;
  source?: SourceRef;
}

export interface JwtHeader {
  name: string;
  prefix?: string;
}

export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  /** Inline JWKS document (a JSON string, as in Istio). */
  jwks?: string;
  fromHeaders?: JwtHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  forwardOriginalToken?: boolean;
  outputPayloadToHeader?: string;
  outputClaimToHeaders?: { header: string; claim: string }[];
  /** Claims whose string value is split on spaces for matching ("scope" and "permission" always are). */
  spaceDelimitedClaims?: string[];
}

export interface RequestAuthentication {
  name: string;
  namespace: string;
  scope: PolicyScope;
  jwtRules: JwtRule[];
  source?: SourceRef;
}

export type MtlsMode = "STRICT" | "PERMISSIVE" | "DISABLE" | "UNSET";

export interface PeerAuthentication {
  name: string;
  namespace: string;
  /** root, namespace or selector (targetRefs not supported by Istio for PeerAuthentication) */
  scope: PolicyScope;
  mode: MtlsMode;
  portLevelMtls?: Record<number, MtlsMode>;
  source?: SourceRef;
}

// ---- gateway.networking.k8s.io HTTPRoute (kept close to the API's own shape) ----

export interface HttpPathMatch {
  type: "Exact" | "PathPrefix" | "RegularExpression";
  value: string;
}

export interface HttpHeaderMatch {
  type: "Exact" | "RegularExpression";
  name: string;
  value: string;
}

export interface HttpQueryParamMatch {
  type: "Exact" | "RegularExpression";
  name: string;
  value: string;
}

export interface HttpRouteMatch {
  path?: HttpPathMatch; // default PathPrefix "/"
  headers?: HttpHeaderMatch[];
  queryParams?: HttpQueryParamMatch[];
  method?: string;
}

export interface HttpHeaderModifier {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

export interface HttpPathModifier {
  type: "ReplaceFullPath" | "ReplacePrefixMatch";
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export type HttpRouteFilter =
  | { type: "RequestHeaderModifier"; requestHeaderModifier: HttpHeaderModifier }
  | { type: "ResponseHeaderModifier"; responseHeaderModifier: HttpHeaderModifier }
  | {
    type: "RequestRedirect";
    requestRedirect: {
      scheme?: string;
      hostname?: string;
      path?: HttpPathModifier;
      port?: number;
      statusCode?: number; // default 302
    };
  }
  | { type: "URLRewrite"; urlRewrite: { hostname?: string; path?: HttpPathModifier } }
  | {
    type: "RequestMirror";
    /** Mirror every request unless `percent` (0-100) or `fraction` (numerator/denominator, default 100) is set. */
    requestMirror: { backendRef: BackendRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
  };

export interface BackendRef {
  group?: string;
  kind?: string; // default Service
  name: string;
  namespace?: string; // default: the route's namespace
  port?: number;
  weight?: number; // default 1
  filters?: HttpRouteFilter[];
}

export interface HttpRouteRule {
  name?: string;
  matches: HttpRouteMatch[]; // default [{ path: PathPrefix "/" }]
  filters: HttpRouteFilter[];
  backendRefs: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}

export interface HttpRoute {
  name: string;
  namespace: string;
  parentRefs: ObjectRef[];
  hostnames: string[];
  rules: HttpRouteRule[];
  /** metadata.creationTimestamp, used for precedence ties (then namespace/name). */
  creationTimestamp?: string;
  source?: SourceRef;
}

/**
 * gateway.networking.k8s.io ReferenceGrant: lets objects of `from` (in the listed namespaces) refer to
 * objects of `to` in the grant's own namespace (an HTTPRoute backendRef to a Service in another namespace).
 */
export interface ReferenceGrant {
  name: string;
  namespace: string;
  from: { group: string; kind: string; namespace: string }[];
  /** `name` absent: every object of that group/kind in the grant's namespace. group "" is core. */
  to: { group: string; kind: string; name?: string }[];
  source?: SourceRef;
}

// ---- networking.istio.io ServiceEntry, DestinationRule ----

export interface ServiceEntryPort {
  number: number;
  name?: string;
  /** HTTP, HTTPS, TCP, TLS... as written; TCP when unset. */
  protocol: string;
  /** The endpoints' port for this port, when it differs (STATIC endpoints' own `ports` map wins). */
  targetPort?: number;
}

export interface ServiceEntryEndpoint {
  address: string;
  /** port name -> the endpoint's port */
  ports?: Record<string, number>;
  labels: Labels;
}

/**
 * A ServiceEntry: hosts outside (MESH_EXTERNAL) or inside (MESH_INTERNAL) the mesh that workloads may
 * reach by name. Its addresses are `spec.addresses` when written (every host shares them), otherwise one
 * VIP per non-wildcard host, allocated from 240.240.0.0/16 (see ./vip.ts), which the ztunnel's DNS proxy
 * answers and its outbound path recognises.
 */
export interface ServiceEntry {
  name: string;
  namespace: string;
  hosts: string[];
  /** spec.addresses as written: addresses or CIDR blocks. */
  addresses: string[];
  /** The VIP mesh allocated to each host (only when `addresses` is empty; wildcard hosts get none). */
  vips: { host: string; address: string }[];
  ports: ServiceEntryPort[];
  /** DNS_ROUND_ROBIN is read as DNS. */
  resolution: "NONE" | "STATIC" | "DNS";
  location: "MESH_EXTERNAL" | "MESH_INTERNAL";
  endpoints: ServiceEntryEndpoint[];
  labels: Labels;
  /** The egress waypoint (istio.io/use-waypoint on the ServiceEntry or its namespace). */
  waypoint?: WaypointBinding;
  source?: SourceRef;
}

/** DestinationRule ClientTLSSettings: what a waypoint originates towards the host. */
export interface ClientTls {
  mode: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  sni?: string;
  /** A file with the CA certificates that must sign the server's certificate (PEM). */
  caCertificates?: string;
}

export interface DestinationRule {
  name: string;
  namespace: string;
  host: string;
  tls?: ClientTls;
  /** portLevelSettings[].tls by port number: wins over `tls` for that port. */
  portTls?: Record<number, ClientTls>;
  source?: SourceRef;
}

/** The whole normalized configuration. JSON-serializable; build indexes with indexModel(). */
export interface MeshModel {
  meshConfig: MeshConfig;
  namespaces: Namespace[];
  serviceAccounts: { name: string; namespace: string }[];
  workloads: Workload[];
  services: Service[];
  waypoints: Waypoint[];
  authorizationPolicies: AuthorizationPolicy[];
  requestAuthentications: RequestAuthentication[];
  peerAuthentications: PeerAuthentication[];
  httpRoutes: HttpRoute[];
  /** Optional so older producers of MeshModel stay valid; absent means none. */
  referenceGrants?: ReferenceGrant[];
  /** Optional for the same reason; absent means none. */
  serviceEntries?: ServiceEntry[];
  destinationRules?: DestinationRule[];
}

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  trustDomain: "cluster.local",
  rootNamespace: "istio-system",
  certTtlSeconds: 86400,
  rotationFraction: 0.5,
  outboundPolicy: "allow",
};

export function emptyModel(): MeshModel {
  return {
    meshConfig: { ...DEFAULT_MESH_CONFIG },
    namespaces: [],
    serviceAccounts: [],
    workloads: [],
    services: [],
    waypoints: [],
    authorizationPolicies: [],
    requestAuthentications: [],
    peerAuthentications: [],
    httpRoutes: [],
  };
}
