/**
 * One error base for the whole mesh. Every error carries a stable, machine-readable
 * `code` (like undici's UND_ERR_*), and a message that tells the user what to do next.
 */
export class MeshError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MeshError";
    this.code = code;
  }
}

/** Stable error codes. Add here, never inline a new string elsewhere. */
export const ErrorCode = {
  ConfigInvalid: "MESH_CONFIG_INVALID",
  ConfigNotFound: "MESH_CONFIG_NOT_FOUND",
  IdentityInvalid: "MESH_IDENTITY_INVALID",
  CertificateInvalid: "MESH_CERT_INVALID",
  NodeNotAuthorized: "MESH_NODE_NOT_AUTHORIZED",
  TokenInvalid: "MESH_TOKEN_INVALID",
  PolicyDenied: "MESH_POLICY_DENIED",
  WaypointBypass: "MESH_WAYPOINT_BYPASS",
  Http2Protocol: "MESH_H2_PROTOCOL",
  Http2Flow: "MESH_H2_FLOW_CONTROL",
  Http2Stream: "MESH_H2_STREAM",
  HboneRefused: "MESH_HBONE_REFUSED",
  Unreachable: "MESH_UNREACHABLE",
  NotRoot: "MESH_NOT_ROOT",
  Platform: "MESH_PLATFORM",
  LabState: "MESH_LAB_STATE",
  Usage: "MESH_USAGE",
  /** The Kubernetes API server refused or failed a request (status and reason in the message). */
  KubeApi: "MESH_KUBE_API",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
