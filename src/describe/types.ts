/** What `mesh describe` answers: JSON-serializable, printed as-is by `--format json`. */
import type { WaypointBinding } from "../model/mod.ts";

/** The ztunnel that manages a workload (its node's), as far as the configuration and the control plane know. */
export interface ZtunnelSummary {
  /** "ztunnel/node-b" */
  proxy: string;
  node: string;
  /** null offline (nothing asked). */
  connected: boolean | null;
  /** /healthz/ready, null when not asked or unreachable. */
  ready: boolean | null;
  readyReasons: string[];
  ackedVersion: number | null;
  latestVersion: number | null;
  /** Acked the latest version. */
  synced: boolean | null;
  nack: { version: number; reason: string } | null;
  /** Address of its control-plane connection. */
  remote: string | null;
  /** One line. */
  state: string;
}

export interface CaptureSummary {
  /** The configuration enrolls the workload and a ztunnel owns it. */
  captured: boolean;
  /** Why (or why not), one fact per line. */
  reasons: string[];
  namespace: { name: string; declared: boolean; label: string | null; enrolled: boolean };
  /** The workload's own istio.io/dataplane-mode label, if any. */
  workloadLabel: string | null;
  /** Live: captured and its ztunnel connected and ready (null offline). */
  effective: boolean | null;
}

export interface CertificateSummary {
  identity: string;
  /** null offline. */
  issued: boolean | null;
  notAfter: string | null;
  /** "in 23h" / "EXPIRED 2m ago" */
  expires: string | null;
  /** The proxy it was issued to. */
  heldBy: string | null;
}

export interface ServiceRef {
  /** "product-api.ambient-ns" */
  host: string;
  namespace: string;
  name: string;
  vip: string | null;
  /** "8000 -> 80" per service port (the target port on this workload when describing a workload). */
  ports: string[];
  waypoint: WaypointRef | null;
}

export interface WaypointRef {
  /** "ns/name" */
  gateway: string;
  /** The label that bound it: "istio.io/use-waypoint on Service ambient-ns/product-api" ... */
  via: string;
  binding: WaypointBinding["via"];
  /** What it serves this workload for: "Service product-api.ambient-ns" or "the workload itself". */
  servesFor: string;
  exists: boolean;
  addresses: string[];
  identity: string | null;
  /** Live: its connection to the control plane. */
  connected: boolean | null;
  state: string;
}

/** One way traffic reaches the workload, and what happens on it. */
export interface InboundPath {
  /** "Service product-api.ambient-ns:8000" or "pod address 10.244.2.10" */
  via: string;
  point: "waypoint" | "ztunnel" | "none";
  waypoint: string | null;
  /** Every connection on this path is refused, whatever the request. */
  deniesAll: boolean;
  summary: string;
}

/** One policy and where it acts. */
export interface PolicyPlacementRow {
  kind: "AuthorizationPolicy" | "RequestAuthentication";
  /** "ns/name" */
  policy: string;
  action: string | null;
  /** "L4" or "L7" (the attributes it uses) */
  layer: "L4" | "L7";
  /** "selector app=product-api", "namespace ambient-ns", "mesh-wide", "targetRefs Service product-api" */
  attachment: string;
  /** Where it is enforced, one entry per path that differs: "waypoint ambient-ns/wp", "ztunnel node-b". */
  enforcedAt: string[];
  /** "enforced", "denies everything: no waypoint", "not enforced: ...", "audit only", "dry run" */
  effect: string;
  source: string | null;
}

export interface PeerAuthenticationSummary {
  /** Effective mode on the workload's ports without their own override. */
  mode: string;
  /** "ambient-ns/strict (namespace)" or "default (no PeerAuthentication applies)" */
  decidedBy: string;
  ports: { port: number; mode: string }[];
  /** What it means for plaintext from outside the mesh. */
  meaning: string;
}

export interface ConnectionRow {
  time: string;
  /** "ztunnel/node-b" */
  proxy: string | null;
  /** "source" or "destination" for a ztunnel's line (a connection shows in both ztunnels' logs). */
  reporter: string | null;
  direction: "inbound" | "outbound" | "unknown";
  peer: string;
  /** "accepted", "denied", "failed", "reset"; at a waypoint with the HTTP status: "denied (HTTP 403)" */
  result: string;
  /** "GET /get" for a request logged by a waypoint */
  request: string | null;
  reason: string | null;
  /** The trace id the proxies log for the connection (the same at every hop); a waypoint's request line: the request's. */
  id: string | null;
  /** A waypoint's request line whose own trace differs from its tunnel's: the tunnel's (the ztunnels' id). */
  tunnelId?: string;
}

export interface WorkloadDescription {
  kind: "Pod" | "WorkloadEntry";
  namespace: string;
  name: string;
  uid: string;
  addresses: string[];
  node: string;
  serviceAccount: string;
  identity: string;
  ready: boolean;
  labels: Record<string, string>;
  source: string | null;
  capture: CaptureSummary;
  ztunnel: ZtunnelSummary | null;
  certificate: CertificateSummary;
  services: ServiceRef[];
  /** Waypoints that serve it: its own, and its Services'. */
  waypoints: WaypointRef[];
  /** Why a waypoint label did not bind (a missing Gateway, a waypoint for other traffic). */
  waypointNotes: string[];
  inbound: InboundPath[];
  policies: PolicyPlacementRow[];
  peerAuthentication: PeerAuthenticationSummary;
  /** Recent connections from the access logs; null when no log was read (offline). */
  connections: ConnectionRow[] | null;
  /** Where the live facts came from, or "configuration only". */
  basedOn: string;
  warnings: string[];
}

export interface ServiceEndpointRow {
  workload: string;
  kind: "Pod" | "WorkloadEntry";
  node: string;
  addresses: string[];
  ports: string[];
  captured: boolean;
  ready: boolean;
  /** What happens to traffic sent to the Service and reaching this endpoint. */
  path: InboundPath;
}

export interface ServiceDescription {
  kind: "Service";
  namespace: string;
  name: string;
  hostname: string;
  vip: string | null;
  ports: string[];
  selector: Record<string, string> | null;
  labels: Record<string, string>;
  source: string | null;
  waypoint: WaypointRef | null;
  waypointNotes: string[];
  endpoints: ServiceEndpointRow[];
  policies: PolicyPlacementRow[];
  /** HTTPRoutes attached to it ("ns/name"); they act only at a waypoint. */
  routes: { route: string; effect: string; source: string | null }[];
  connections: ConnectionRow[] | null;
  basedOn: string;
  warnings: string[];
}

export type Description = WorkloadDescription | ServiceDescription;
