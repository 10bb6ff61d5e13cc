/**
 * Who is asking: the client address that policies (ipBlocks) and telemetry see when traffic arrives
 * through a tunnel. One rule for both proxies, so an address the destination ztunnel refuses to believe
 * is not believed by a waypoint either. Pure.
 *
 * HBONE arrives from the client's ztunnel (or a waypoint), so the socket's peer address is that node's.
 * The tunnel's Forwarded header names the client (`for=`), and is believed only when it cannot be a lie:
 * - the peer is a waypoint of the mesh: its identity, AND from one of that waypoint's addresses (an
 *   identity alone could be held by someone else, as ztunnel checks it);
 * - or the named address belongs to a workload whose identity is the peer's authenticated identity (a
 *   ztunnel holds certificates only for workloads of its own node, so it can speak only for those).
 * Otherwise the peer's own address stands.
 */
import { forwardedFor } from "../core/mod.ts";
import type { ModelIndex, Waypoint, Workload } from "../model/mod.ts";
import { isWaypointAddress } from "./placement.ts";

/** The waypoint whose identity a peer presents, and whether it connects from one of that waypoint's addresses. */
export interface PeerWaypoint {
  waypoint: Waypoint;
  /** Only then is the peer the waypoint. */
  atItsAddress: boolean;
}

/** The waypoint whose identity `peerIdentity` is (undefined: none), and whether `peerIp` is one of its addresses. */
export function peerWaypoint(index: ModelIndex, peerIdentity: string | undefined, peerIp: string): PeerWaypoint | undefined {
  if (!peerIdentity) return undefined;
  const waypoint = index.model.waypoints.find((w) => w.identity === peerIdentity);
  return waypoint && { waypoint, atItsAddress: isWaypointAddress(waypoint, peerIp) };
}

/** The client of a tunnel, as far as it can be trusted. */
export interface TrustedSource {
  /** The address policies and telemetry see. */
  ip: string;
  /** The workload at `ip` when it was believed because its identity is the peer's (the client itself). */
  workload?: Workload;
}

/**
 * The client of a tunnel from peer `peerIdentity` at `peerIp` whose Forwarded header is `forwarded`
 * (see the rules above). Without an authenticated identity, the peer's address.
 *
 * @example
 * trustedSource(index, "spiffe://cluster.local/ns/shop/sa/web", "10.0.0.2", 'for="10.244.1.10:5000"');
 * // { ip: "10.244.1.10", workload } when 10.244.1.10 is a workload with identity .../sa/web; else { ip: "10.0.0.2" }
 */
export function trustedSource(index: ModelIndex, peerIdentity: string | undefined, peerIp: string, forwarded: string | undefined): TrustedSource {
  const claimed = forwardedFor(forwarded);
  if (!claimed || !peerIdentity) return { ip: peerIp };
  const wp = peerWaypoint(index, peerIdentity, peerIp);
  if (wp) return { ip: wp.atItsAddress ? claimed : peerIp };
  const w = index.workloadByAddress(claimed);
  return w && w.identity === peerIdentity ? { ip: claimed, workload: w } : { ip: peerIp };
}
