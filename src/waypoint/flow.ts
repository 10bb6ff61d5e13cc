/**
 * A finished request as a flow record for the control role's traffic map and `mesh observe`: the
 * decision of authentication and authorization (with the policy that made it), the route's answer, the
 * request's trace id.
 */
import { policyOfReason } from "../proxy/mod.ts";
import { traceIdOf } from "../telemetry/mod.ts";
import type { FlowRecord } from "../xds/mod.ts";
import type { RequestContext, Tunnel } from "./context.ts";
import type { TcpOutcome } from "./tcp.ts";
import type { RequestOutcome } from "./telemetry.ts";

export function flowOfRequest(proxy: string, waypoint: string, ctx: RequestContext, o: RequestOutcome, durationMs: number): FlowRecord {
  const src = ctx.tunnel.sourceWorkload;
  const dst = o.upstream?.workload ?? ctx.endpoint?.workload ?? ctx.tunnel.destination.workload;
  const svc = ctx.plan?.service ?? ctx.tunnel.destination.service;
  const admission = ctx.admission;
  const refused = admission !== undefined && admission.status !== 200;
  const q = ctx.path.indexOf("?");
  return {
    time: Date.now(),
    proxy,
    reporter: "waypoint",
    l7: true,
    src: {
      workload: src ? `${src.namespace}/${src.name}` : undefined,
      namespace: src?.namespace ?? /\/ns\/([^/]+)\//.exec(ctx.tunnel.peerIdentity)?.[1],
      identity: ctx.tunnel.peerIdentity || undefined,
      address: ctx.tunnel.sourceIp,
    },
    dst: {
      workload: dst ? `${dst.namespace}/${dst.name}` : undefined,
      namespace: dst?.namespace ?? svc?.namespace,
      identity: dst?.identity,
      address: ctx.tunnel.destination.ip,
      port: ctx.tunnel.destination.port,
      service: svc ? `${svc.namespace}/${svc.name}` : undefined,
    },
    waypoint,
    method: ctx.method,
    // The query string may carry secrets (tokens in fromParams): the path alone.
    path: (q >= 0 ? ctx.path.slice(0, q) : ctx.path).slice(0, 1024),
    status: o.status,
    bytesIn: o.requestBytes,
    bytesOut: o.responseBytes,
    durationMs: Math.round(durationMs * 100) / 100,
    verdict: refused ? "denied" : o.status >= 500 || (o.flags && o.flags !== "-") ? "error" : "allowed",
    reason: refused ? admission.reason : o.details,
    policy: refused ? admission.decision?.policy ?? policyOfReason(admission.reason) : undefined,
    mtls: true,
    traceId: traceIdOf(ctx.traceparent),
  };
}

/** A connection the waypoint carried as bytes (a TCP port, or neither HTTP/1.1 nor HTTP/2), or refused. */
export function flowOfTcp(proxy: string, waypoint: string, tunnel: Tunnel, o: TcpOutcome): FlowRecord {
  const d = tunnel.destination;
  const dst = o.endpoint?.workload ?? d.workload;
  const src = tunnel.sourceWorkload;
  return {
    time: Date.now(),
    proxy,
    reporter: "waypoint",
    l7: false,
    src: {
      workload: src ? `${src.namespace}/${src.name}` : undefined,
      namespace: src?.namespace ?? /\/ns\/([^/]+)\//.exec(tunnel.peerIdentity)?.[1],
      identity: tunnel.peerIdentity || undefined,
      address: tunnel.sourceIp,
    },
    dst: {
      workload: dst ? `${dst.namespace}/${dst.name}` : undefined,
      namespace: dst?.namespace ?? d.service?.namespace,
      identity: dst?.identity,
      address: d.ip,
      port: d.port,
      service: d.service ? `${d.service.namespace}/${d.service.name}` : undefined,
    },
    waypoint,
    bytesIn: o.received,
    bytesOut: o.sent,
    durationMs: Math.round(o.durationMs * 100) / 100,
    verdict: !o.decision.allowed ? "denied" : o.error && o.sent === 0 && o.received === 0 ? "error" : "allowed",
    reason: o.decision.allowed ? o.error : o.decision.reason,
    policy: o.decision.allowed ? undefined : o.decision.policy ?? policyOfReason(o.decision.reason),
    mtls: true,
    traceId: tunnel.traceId,
  };
}
