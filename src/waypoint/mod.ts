/** The waypoint role: L7 proxy (JWT authn, L7 authz, HTTPRoute routing, L7 telemetry) behind HBONE. */
import { ErrorCode, MeshError } from "../core/errors.ts";
import type { RoleContext, RoleHandle } from "../admin/mod.ts";

export interface WaypointOptions {
  /** "NAMESPACE/NAME" of the istio-waypoint Gateway */
  gateway: string;
  controlPlane: string;
  caCert: string;
  tokenFile: string;
  dataDir?: string;
  /** HBONE listen address; default: the Gateway's spec.addresses on 15008, else 0.0.0.0:15008 */
  hboneAddr?: string;
  drainMs: number;
}

// Placeholder until the waypoint role lands.
export async function startWaypoint(_opts: WaypointOptions, _ctx: RoleContext): Promise<RoleHandle> {
  throw new MeshError(ErrorCode.Usage, "The waypoint role is not available in this build yet");
}
