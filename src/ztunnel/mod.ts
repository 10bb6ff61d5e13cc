/** The ztunnel role: node-level L4 proxy (capture, HBONE, L4 policy, telemetry). */
import { ErrorCode, MeshError } from "../core/errors.ts";
import type { RoleContext, RoleHandle } from "../admin/mod.ts";

export interface ZtunnelOptions {
  node: string;
  /** "HOST:15012" */
  controlPlane: string;
  caCert: string;
  tokenFile: string;
  redirect: "node" | "host" | "none";
  dataDir?: string;
  /** listen addresses (Istio's ports by default) */
  hboneAddr: string; // 0.0.0.0:15008
  outboundAddr: string; // 0.0.0.0:15001 (node mode) / 127.0.0.1:15001 (host mode)
  inboundPlaintextAddr: string; // 0.0.0.0:15006
  drainMs: number;
}

// Placeholder until the ztunnel role lands.
export async function startZtunnel(_opts: ZtunnelOptions, _ctx: RoleContext): Promise<RoleHandle> {
  throw new MeshError(ErrorCode.Usage, "The ztunnel role is not available in this build yet");
}
