/**
 * valibot schemas for the normalized model as it travels from the control plane to proxies. Objects are
 * `looseObject`s on purpose: engineers may ADD fields to the model types (src/model/types.ts), and a proxy
 * one build older must keep them rather than silently strip them. Every field that proxies read is checked.
 */
import * as v from "valibot";
import type {
  AuthorizationPolicy,
  DestinationRule,
  HttpRoute,
  MeshConfig,
  Namespace,
  PeerAuthentication,
  ReferenceGrant,
  RequestAuthentication,
  Service,
  ServiceEntry,
  Waypoint,
  Workload,
} from "../model/mod.ts";

const str = v.string();
const int = v.pipe(v.number(), v.integer());
const port = v.pipe(v.number(), v.integer(), v.minValue(0));
const labels = v.record(v.string(), v.string());
const strings = v.array(v.string());

const sourceRef = v.optional(v.looseObject({ file: str, line: int, col: int }));

const objectRef = v.looseObject({
  group: str,
  kind: str,
  name: str,
  namespace: str,
  port: v.optional(port),
  sectionName: v.optional(str),
});

const waypointBinding = v.looseObject({
  gateway: str,
  via: v.picklist(["namespace-label", "service-label", "pod-label", "workloadentry-label", "serviceentry-label"]),
});

export const MeshConfigSchema: v.GenericSchema<unknown, MeshConfig> = v.looseObject({
  trustDomain: str,
  rootNamespace: str,
  certTtlSeconds: v.number(),
  rotationFraction: v.number(),
  outboundPolicy: v.picklist(["allow", "deny"]),
});

export const NamespaceSchema: v.GenericSchema<unknown, Namespace> = v.looseObject({
  name: str,
  labels,
  ambient: v.boolean(),
  useWaypoint: v.optional(str),
  source: sourceRef,
});

export const ServiceAccountSchema = v.looseObject({ name: str, namespace: str });

export const WorkloadSchema: v.GenericSchema<unknown, Workload> = v.looseObject({
  uid: str,
  kind: v.picklist(["Pod", "WorkloadEntry"]),
  name: str,
  namespace: str,
  serviceAccount: str,
  identity: str,
  node: str,
  addresses: strings,
  labels,
  ambient: v.boolean(),
  ports: v.array(v.looseObject({ name: v.optional(str), port })),
  waypoint: v.optional(waypointBinding),
  command: v.optional(strings),
  ready: v.boolean(),
  source: sourceRef,
});

export const ServiceSchema: v.GenericSchema<unknown, Service> = v.looseObject({
  name: str,
  namespace: str,
  hostname: str,
  vip: v.optional(str),
  ports: v.array(v.looseObject({
    name: v.optional(str),
    port,
    targetPort: v.union([port, str]),
    protocol: v.picklist(["TCP", "UDP", "SCTP"]),
    appProtocol: v.optional(str),
  })),
  selector: v.optional(labels),
  endpoints: v.array(v.looseObject({ workloadUid: str, ports: v.record(v.string(), port) })),
  labels,
  waypoint: v.optional(waypointBinding),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, Service>;

export const WaypointSchema: v.GenericSchema<unknown, Waypoint> = v.looseObject({
  name: str,
  namespace: str,
  identity: str,
  serviceAccount: str,
  addresses: strings,
  waypointFor: v.picklist(["service", "workload", "all", "none"]),
  port,
  source: sourceRef,
});

const policyScope = v.variant("kind", [
  v.looseObject({ kind: v.literal("root") }),
  v.looseObject({ kind: v.literal("namespace") }),
  v.looseObject({ kind: v.literal("selector"), matchLabels: labels }),
  v.looseObject({ kind: v.literal("targetRefs"), targetRefs: v.array(objectRef) }),
]);

const optStrings = v.optional(strings);
const policySource = v.looseObject({
  principals: optStrings,
  notPrincipals: optStrings,
  requestPrincipals: optStrings,
  notRequestPrincipals: optStrings,
  namespaces: optStrings,
  notNamespaces: optStrings,
  serviceAccounts: optStrings,
  notServiceAccounts: optStrings,
  ipBlocks: optStrings,
  notIpBlocks: optStrings,
  remoteIpBlocks: optStrings,
  notRemoteIpBlocks: optStrings,
});
const policyOperation = v.looseObject({
  hosts: optStrings,
  notHosts: optStrings,
  ports: optStrings,
  notPorts: optStrings,
  methods: optStrings,
  notMethods: optStrings,
  paths: optStrings,
  notPaths: optStrings,
});
const policyRule = v.looseObject({
  from: v.optional(v.array(v.looseObject({ source: policySource }))),
  to: v.optional(v.array(v.looseObject({ operation: policyOperation }))),
  when: v.optional(v.array(v.looseObject({ key: str, values: optStrings, notValues: optStrings }))),
});

export const AuthorizationPolicySchema: v.GenericSchema<unknown, AuthorizationPolicy> = v.looseObject({
  name: str,
  namespace: str,
  action: v.picklist(["ALLOW", "DENY", "AUDIT", "CUSTOM"]),
  scope: policyScope,
  rules: v.array(policyRule),
  hasL7: v.boolean(),
  dryRun: v.optional(v.boolean()),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, AuthorizationPolicy>;

const jwtRule = v.looseObject({
  issuer: str,
  audiences: optStrings,
  jwksUri: v.optional(str),
  jwks: v.optional(str),
  fromHeaders: v.optional(v.array(v.looseObject({ name: str, prefix: v.optional(str) }))),
  fromParams: optStrings,
  fromCookies: optStrings,
  forwardOriginalToken: v.optional(v.boolean()),
  outputPayloadToHeader: v.optional(str),
  outputClaimToHeaders: v.optional(v.array(v.looseObject({ header: str, claim: str }))),
});

export const RequestAuthenticationSchema: v.GenericSchema<unknown, RequestAuthentication> = v.looseObject({
  name: str,
  namespace: str,
  scope: policyScope,
  jwtRules: v.array(jwtRule),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, RequestAuthentication>;

const mtlsMode = v.picklist(["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]);
export const PeerAuthenticationSchema: v.GenericSchema<unknown, PeerAuthentication> = v.looseObject({
  name: str,
  namespace: str,
  scope: policyScope,
  mode: mtlsMode,
  portLevelMtls: v.optional(v.record(v.string(), mtlsMode)),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, PeerAuthentication>;

// HTTPRoute rules keep the Gateway API's own (deep, evolving) shape: the route module validates what it
// reads, so only the envelope that placement depends on is checked here.
export const HttpRouteSchema: v.GenericSchema<unknown, HttpRoute> = v.looseObject({
  name: str,
  namespace: str,
  parentRefs: v.array(objectRef),
  hostnames: strings,
  rules: v.array(v.looseObject({
    matches: v.array(v.looseObject({})),
    filters: v.array(v.looseObject({ type: str })),
    backendRefs: v.array(v.looseObject({ name: str })),
  })),
  creationTimestamp: v.optional(str),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, HttpRoute>;

export const ReferenceGrantSchema: v.GenericSchema<unknown, ReferenceGrant> = v.looseObject({
  name: str,
  namespace: str,
  from: v.array(v.looseObject({ group: str, kind: str, namespace: str })),
  to: v.array(v.looseObject({ group: str, kind: str, name: v.optional(str) })),
  source: sourceRef,
});

export const ServiceEntrySchema: v.GenericSchema<unknown, ServiceEntry> = v.looseObject({
  name: str,
  namespace: str,
  hosts: strings,
  addresses: strings,
  vips: v.array(v.looseObject({ host: str, address: str })),
  ports: v.array(v.looseObject({ number: port, name: v.optional(str), protocol: str, targetPort: v.optional(port) })),
  resolution: v.picklist(["NONE", "STATIC", "DNS"]),
  location: v.picklist(["MESH_EXTERNAL", "MESH_INTERNAL"]),
  endpoints: v.array(v.looseObject({ address: str, ports: v.optional(v.record(v.string(), port)), labels })),
  labels,
  waypoint: v.optional(waypointBinding),
  source: sourceRef,
});

const clientTls = v.looseObject({
  mode: v.picklist(["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]),
  sni: v.optional(str),
  caCertificates: v.optional(str),
});

export const DestinationRuleSchema: v.GenericSchema<unknown, DestinationRule> = v.looseObject({
  name: str,
  namespace: str,
  host: str,
  tls: v.optional(clientTls),
  portTls: v.optional(v.record(v.string(), clientTls)),
  source: sourceRef,
}) as unknown as v.GenericSchema<unknown, DestinationRule>;
