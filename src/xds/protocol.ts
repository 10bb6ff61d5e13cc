/**
 * The control-plane protocol on 15012 (HTTP/2 over TLS). Everything a peer sends is parsed by the valibot
 * schemas here before anything deeper sees it.
 *
 * Unary calls (JSON bodies):
 *   POST /v1/bootstrap  Authorization: Bearer <bootstrap token> (or a still-valid client certificate)
 *                       {} -> {certPem, chainPem, keyPem, notAfter, trustBundlePem, caller}: a short-lived
 *                       control-plane client certificate (URI SAN spiffe://<td>/mesh/node/<n> ...)
 *   POST /v1/csr        client certificate (mTLS) -> workload certificate, under node authorization
 *   GET  /v1/status     admin token (Bearer) or an admin client certificate -> StatusReport
 *   GET  /v1/config     admin token (Bearer) or an admin client certificate -> the MeshModel being served
 *                       (null before the first valid configuration), for `mesh describe` and `proxy-status`
 * The config stream:
 *   POST /v1/stream     client certificate (mTLS). The request body carries client frames, the response
 *                       body server frames; both are newline-delimited JSON, one message per line.
 *
 * Versions are integers that only grow, also across control-plane restarts (the control role persists
 * the last one). The server keeps one push in flight per proxy: it sends the next version only after the
 * previous one was ACKed or NACKed, and a delta is always relative to the version the proxy last ACKed
 * (`base`), so intermediate versions are coalesced and ACKs arrive in increasing order.
 */
import * as v from "valibot";
import type { MeshConfig, MeshModel } from "../model/mod.ts";
import {
  AuthorizationPolicySchema,
  DestinationRuleSchema,
  HttpRouteSchema,
  MeshConfigSchema,
  NamespaceSchema,
  PeerAuthenticationSchema,
  ReferenceGrantSchema,
  RequestAuthenticationSchema,
  ServiceAccountSchema,
  ServiceEntrySchema,
  ServiceSchema,
  WaypointSchema,
  WorkloadSchema,
} from "./model_schema.ts";

export const PATHS = {
  bootstrap: "/v1/bootstrap",
  csr: "/v1/csr",
  stream: "/v1/stream",
  status: "/v1/status",
  config: "/v1/config",
} as const;

/** The keyed lists of a MeshModel that travel as individual resources. */
export const COLLECTIONS = [
  "namespaces",
  "serviceAccounts",
  "workloads",
  "services",
  "waypoints",
  "authorizationPolicies",
  "requestAuthentications",
  "peerAuthentications",
  "httpRoutes",
  "referenceGrants",
  "serviceEntries",
  "destinationRules",
] as const;
export type Collection = (typeof COLLECTIONS)[number];
export type Resource<C extends Collection> = NonNullable<MeshModel[C]>[number];

/** The stable key of a resource within its collection (deltas upsert and remove by it). */
export function resourceKey(collection: Collection, r: { name: string; namespace?: string; uid?: string }): string {
  if (collection === "workloads") return (r as { uid: string }).uid;
  if (collection === "namespaces") return r.name;
  return `${r.namespace}/${r.name}`;
}

/** Who a proxy is, as the control plane knows it (from its token or client certificate). */
export type ProxyId =
  | { kind: "ztunnel"; node: string }
  | { kind: "waypoint"; namespace: string; name: string };

/** "ztunnel/worker-a", "waypoint/shop/inventory-waypoint". */
export function proxyKey(p: ProxyId): string {
  return p.kind === "ztunnel" ? `ztunnel/${p.node}` : `waypoint/${p.namespace}/${p.name}`;
}

/**
 * What a proxy applies: the part of the mesh model it needs, and the roots it must trust (several during a
 * root rotation). Arrays are in the control plane's order for a snapshot; resources added by a delta come
 * last. Nothing should depend on array order (precedence rules use names and timestamps).
 */
export interface XdsView {
  model: MeshModel;
  trustBundlePem: string;
}

// ---- server -> client frames ----

const collectionLists = {
  namespaces: v.array(NamespaceSchema),
  serviceAccounts: v.array(ServiceAccountSchema),
  workloads: v.array(WorkloadSchema),
  services: v.array(ServiceSchema),
  waypoints: v.array(WaypointSchema),
  authorizationPolicies: v.array(AuthorizationPolicySchema),
  requestAuthentications: v.array(RequestAuthenticationSchema),
  peerAuthentications: v.array(PeerAuthenticationSchema),
  httpRoutes: v.array(HttpRouteSchema),
  referenceGrants: v.optional(v.array(ReferenceGrantSchema), []),
  serviceEntries: v.optional(v.array(ServiceEntrySchema), []),
  destinationRules: v.optional(v.array(DestinationRuleSchema), []),
};
const version = v.pipe(v.number(), v.integer(), v.minValue(0));

export const SnapshotMessageSchema = v.object({
  type: v.literal("snapshot"),
  version,
  /** Random per control-plane instance: a remembered version is only meaningful to the same instance. */
  epoch: v.string(),
  meshConfig: MeshConfigSchema,
  trustBundlePem: v.string(),
  resources: v.object(collectionLists),
});

const keyLists = Object.fromEntries(COLLECTIONS.map((c) => [c, v.optional(v.array(v.string()))])) as {
  [C in Collection]: v.OptionalSchema<v.ArraySchema<v.StringSchema<undefined>, undefined>, undefined>;
};
const optionalLists = Object.fromEntries(
  COLLECTIONS.map((c) => [c, v.optional(collectionLists[c])]),
) as { [C in Collection]: v.OptionalSchema<(typeof collectionLists)[C], undefined> };

export const DeltaMessageSchema = v.object({
  type: v.literal("delta"),
  version,
  /** The version this delta applies to: the proxy's last ACKed version. */
  base: version,
  epoch: v.string(),
  meshConfig: v.optional(MeshConfigSchema),
  trustBundlePem: v.optional(v.string()),
  upsert: v.object(optionalLists),
  remove: v.object(keyLists),
});

/** The server refuses the stream (bad credentials, unknown proxy) and closes it. */
export const ErrorMessageSchema = v.object({ type: v.literal("error"), code: v.string(), message: v.string() });

export const ServerMessageSchema = v.variant("type", [SnapshotMessageSchema, DeltaMessageSchema, ErrorMessageSchema]);

export interface SnapshotMessage {
  type: "snapshot";
  version: number;
  epoch: string;
  meshConfig: MeshConfig;
  trustBundlePem: string;
  resources: { [C in Collection]: Resource<C>[] };
}
export interface DeltaMessage {
  type: "delta";
  version: number;
  base: number;
  epoch: string;
  meshConfig?: MeshConfig;
  trustBundlePem?: string;
  upsert: { [C in Collection]?: Resource<C>[] };
  remove: { [C in Collection]?: string[] };
}
export type ServerMessage = SnapshotMessage | DeltaMessage | v.InferOutput<typeof ErrorMessageSchema>;

// ---- client -> server frames ----

export const HelloMessageSchema = v.object({
  type: v.literal("hello"),
  /** The version the proxy holds (last-known-good from its data dir), if any. */
  version: v.optional(version),
  /** The epoch that version came from. */
  epoch: v.optional(v.string()),
  /** Build version of the proxy, for `mesh status`. */
  build: v.optional(v.string()),
});
export const AckMessageSchema = v.object({ type: v.literal("ack"), version });
export const NackMessageSchema = v.object({ type: v.literal("nack"), version, reason: v.pipe(v.string(), v.maxLength(4096)) });
/** The proxy cannot apply deltas any more (lost state): send a snapshot. */
export const ResyncMessageSchema = v.object({ type: v.literal("resync"), reason: v.pipe(v.string(), v.maxLength(4096)) });
export const ClientMessageSchema = v.variant("type", [
  HelloMessageSchema,
  AckMessageSchema,
  NackMessageSchema,
  ResyncMessageSchema,
]);
export type ClientMessage = v.InferOutput<typeof ClientMessageSchema>;

// ---- unary calls ----

const pem = v.pipe(v.string(), v.minLength(1), v.maxLength(65536));

export const CallerSchema = v.variant("kind", [
  v.object({ kind: v.literal("node"), node: v.string() }),
  v.object({ kind: v.literal("gateway"), namespace: v.string(), name: v.string() }),
  v.object({ kind: v.literal("admin") }),
]);

/** No body fields yet: the CA makes the client certificate's key (it never signs a client CSR). */
export const BootstrapRequestSchema = v.object({});
export const BootstrapResponseSchema = v.object({
  certPem: v.string(),
  chainPem: v.string(),
  keyPem: v.string(),
  /** ISO 8601 */
  notAfter: v.string(),
  trustBundlePem: v.string(),
  caller: CallerSchema,
  trustDomain: v.string(),
});
export type BootstrapResponse = v.InferOutput<typeof BootstrapResponseSchema>;

export const CsrRequestSchema = v.object({
  csr: pem,
  identity: v.pipe(v.string(), v.maxLength(2048)),
  ttlSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});
export type CsrRequest = v.InferOutput<typeof CsrRequestSchema>;
export const CsrResponseSchema = v.object({
  certPem: v.string(),
  /** The leaf followed by the intermediates up to (not including) the root: what to present in TLS. */
  chainPem: v.string(),
  notAfter: v.string(),
  trustBundlePem: v.string(),
});
export type CsrResponse = v.InferOutput<typeof CsrResponseSchema>;

export const ErrorResponseSchema = v.object({ error: v.string(), code: v.string() });

// ---- status (`mesh status`) ----

export const ProxyStatusSchema = v.object({
  /** "ztunnel/worker-a" */
  id: v.string(),
  kind: v.picklist(["ztunnel", "waypoint"]),
  node: v.optional(v.string()),
  gateway: v.optional(v.string()),
  remote: v.string(),
  connectedSince: v.string(),
  /** Last version sent to it, and the last it ACKed (absent until the first ACK). */
  sentVersion: v.optional(v.number()),
  ackedVersion: v.optional(v.number()),
  lastAckAt: v.optional(v.string()),
  nack: v.optional(v.object({ version: v.number(), reason: v.string(), at: v.string() })),
  build: v.optional(v.string()),
  /** Workload certificates issued to this proxy (latest per identity), and its control-plane client cert. */
  certificates: v.array(v.object({ identity: v.string(), notAfter: v.string(), issuedAt: v.string() })),
  clientCertNotAfter: v.optional(v.string()),
});
export type ProxyStatus = v.InferOutput<typeof ProxyStatusSchema>;

export const DiagnosticSchema = v.object({
  file: v.string(),
  line: v.number(),
  col: v.number(),
  severity: v.picklist(["error", "warning"]),
  message: v.string(),
  rule: v.string(),
});

export const StatusReportSchema = v.object({
  /** The latest configuration version, and when it was made. */
  version: v.number(),
  versionAt: v.string(),
  config: v.object({
    source: v.string(),
    /** Set while the configuration on disk is invalid: the last good one is still being served. */
    lastError: v.optional(v.object({ at: v.string(), diagnostics: v.array(DiagnosticSchema) })),
    warnings: v.number(),
    workloads: v.number(),
    services: v.number(),
  }),
  proxies: v.array(ProxyStatusSchema),
  trustBundle: v.array(v.object({ subject: v.string(), notAfter: v.string() })),
});
export type StatusReport = v.InferOutput<typeof StatusReportSchema>;

/** Parses one frame or body, naming the first problem (for a NACK reason or a 400). */
export function parseWith<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
): { ok: true; value: v.InferOutput<S> } | { ok: false; error: string } {
  const r = v.safeParse(schema, value);
  if (r.success) return { ok: true, value: r.output };
  const issue = r.issues[0];
  const path = issue.path?.map((p: { key: unknown }) => String(p.key)).join(".") ?? "";
  return { ok: false, error: `${path ? `${path}: ` : ""}${issue.message}` };
}
