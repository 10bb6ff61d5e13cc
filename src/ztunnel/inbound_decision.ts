/**
 * The destination ztunnel's decision for one inbound connection (pure): an HBONE CONNECT that arrived on
 * 15008 (or a same-node connection served in-process, which gets exactly the same checks), or a
 * plaintext connection captured on 15006.
 *
 * Order, as Istio's inbound path (docs/hbone.md §4), with our waypoint rule:
 * 1. The CONNECT target must parse as `ip:port` (400).
 * 2. It must name the address the connection was made to, the one whose certificate we presented (400):
 *    a tunnel cannot borrow one workload's certificate to reach another.
 * 3. It must be an ambient workload of this node (503), on a port that is not a ztunnel port (400).
 * 4. A peer with a waypoint's identity must connect from one of that waypoint's addresses (its Gateway's,
 *    or in Kubernetes its pods'), as ztunnel checks it (docs/hbone.md §6): else 401. The identity alone
 *    does not make a waypoint; whoever else held it would bypass the waypoint's policies and have its
 *    `forwarded for=` believed.
 * 5. Authorization (src/policy authorizeAtZtunnel): PeerAuthentication STRICT refuses plaintext; a
 *    workload served by a waypoint admits only that waypoint (a bypass answers 401); otherwise the L4
 *    policies decide, failing closed on L7 rules (401).
 */
import { parseIpPort } from "../core/mod.ts";
import type { ModelIndex } from "../model/mod.ts";
import type { Workload } from "../model/mod.ts";
import { authorizeAtZtunnel, type EnforcedDecision, peerWaypoint, trustedSource } from "../policy/mod.ts";
import { ILLEGAL_TARGET_PORTS } from "./outbound_plan.ts";

export interface InboundAdmitted {
  ok: true;
  workload: Workload;
  ip: string;
  port: number;
  /** The source address policies saw (the client's own, not its ztunnel's, when that can be trusted). */
  sourceIp: string;
  decision: EnforcedDecision;
}

export interface InboundRefused {
  ok: false;
  status: 400 | 401 | 503;
  reason: string;
  workload?: Workload;
  ip?: string;
  port?: number;
  sourceIp?: string;
  decision?: EnforcedDecision;
}

export type InboundDecision = InboundAdmitted | InboundRefused;

function localTarget(index: ModelIndex, node: string, ip: string, port: number): InboundRefused | { workload: Workload } {
  const workload = index.workloadByAddress(ip);
  if (!workload || workload.node !== node) {
    return { ok: false, status: 503, reason: `${ip} is not a workload of node ${node}`, ip, port };
  }
  if (!workload.ambient) {
    return { ok: false, status: 503, reason: `${workload.namespace}/${workload.name} is not enrolled in ambient mode`, workload, ip, port };
  }
  if (ILLEGAL_TARGET_PORTS.has(port)) {
    return { ok: false, status: 400, reason: `port ${port} is a ztunnel port and cannot be a tunnel target`, workload, ip, port };
  }
  return { workload };
}

export interface HboneInboundRequest {
  /** The CONNECT :authority. */
  authority: string;
  /** The client's authenticated SPIFFE ID. */
  peerIdentity: string;
  /** The socket peer's address (the client's ztunnel or waypoint). */
  peerIp: string;
  /** The `forwarded` request header. */
  forwarded?: string;
  /** The address the TLS connection was made to (its original destination); absent: not checked. */
  connectionIp?: string;
}

/** Decision for an HBONE CONNECT (arrived on 15008, or served in-process for a same-node client). */
export function decideHboneInbound(index: ModelIndex, node: string, req: HboneInboundRequest): InboundDecision {
  const target = parseIpPort(req.authority);
  if (!target) return { ok: false, status: 400, reason: `CONNECT target "${req.authority}" is not an ip:port address` };
  const { ip, port } = target;
  if (req.connectionIp !== undefined && req.connectionIp !== ip) {
    return {
      ok: false,
      status: 400,
      reason: `CONNECT target ${ip} is not the address this connection was made to (${req.connectionIp})`,
      ip,
      port,
    };
  }
  const local = localTarget(index, node, ip, port);
  if ("ok" in local) return local;
  const wp = peerWaypoint(index, req.peerIdentity, req.peerIp);
  if (wp && !wp.atItsAddress) {
    const { waypoint: w } = wp;
    const known = [...w.addresses, ...(w.podAddresses ?? [])];
    return {
      ok: false,
      status: 401,
      reason: `${req.peerIdentity} is the identity of waypoint ${w.namespace}/${w.name}, but the connection comes from ${req.peerIp}, which is not one of its addresses (${known.join(", ") || "none known"}): not the waypoint, refused`,
      workload: local.workload,
      ip,
      port,
      sourceIp: req.peerIp,
    };
  }
  const sourceIp = trustedSource(index, req.peerIdentity, req.peerIp, req.forwarded).ip;
  const decision = authorizeAtZtunnel(index, local.workload, {
    source: { ip: sourceIp, principal: req.peerIdentity, peerIp: req.peerIp },
    destination: { ip, port },
  });
  if (!decision.allowed) return { ok: false, status: 401, reason: decision.reason, workload: local.workload, ip, port, sourceIp, decision };
  return { ok: true, workload: local.workload, ip, port, sourceIp, decision };
}

/** Decision for a plaintext connection captured on 15006 (from outside the mesh: no identity). */
export function decidePlaintextInbound(
  index: ModelIndex,
  node: string,
  dst: { address: string; port: number },
  sourceIp: string,
): InboundDecision {
  const local = localTarget(index, node, dst.address, dst.port);
  if ("ok" in local) return local;
  const decision = authorizeAtZtunnel(index, local.workload, {
    source: { ip: sourceIp },
    destination: { ip: dst.address, port: dst.port },
  });
  const base = { workload: local.workload, ip: dst.address, port: dst.port, sourceIp, decision };
  if (!decision.allowed) return { ok: false, status: 401, reason: decision.reason, ...base };
  return { ok: true, ...base };
}
