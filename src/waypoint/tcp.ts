/**
 * Traffic that is not HTTP (a Service port declared TCP or TLS, or bytes that are neither HTTP/1.1 nor
 * HTTP/2): the waypoint still enforces the policies that apply, at L4. HTTP attributes are unknown
 * there, so an ALLOW rule that needs them never matches and a DENY rule that has them always does
 * (src/policy fails closed both ways). Allowed connections are joined to an endpoint byte for byte.
 */
import { logger } from "../core/mod.ts";
import { authorizeAtWaypoint, type EnforcedDecision } from "../policy/mod.ts";
import type { UpstreamConnector } from "./connect.ts";
import type { Tunnel } from "./context.ts";
import { type ByteStream, copyBidirectional } from "../stream/mod.ts";
import type { Endpoint, WaypointState } from "./state.ts";
import { policyDestination } from "./egress.ts";

const log = logger("waypoint");

export interface TcpInputs {
  state: WaypointState;
  connector: UpstreamConnector;
  /** Each connection as it ends (flow records); never blocks. */
  onEnd?: (tunnel: Tunnel, o: TcpOutcome) => void;
}

/** How a connection through the waypoint ended. */
export interface TcpOutcome {
  decision: EnforcedDecision;
  endpoint?: Endpoint;
  /** Bytes from the client, and to it. */
  received: number;
  sent: number;
  durationMs: number;
  /** Why it failed after being allowed (no endpoint, connect error, reset). */
  error?: string;
}

const GATEWAY_GONE = "the waypoint's Gateway is not in the configuration";

/** The L4 decision for a connection of `tunnel`, and the endpoint it would go to. */
export function authorizeConnection(inp: TcpInputs, tunnel: Tunnel): { decision: EnforcedDecision; endpoint?: Endpoint } {
  const waypoint = inp.state.waypoint;
  // A configuration update can remove the Gateway while a connection is being sniffed: nothing decides, so nothing passes.
  if (!waypoint) return { decision: { allowed: false, reason: GATEWAY_GONE, enforcedBy: "waypoint" } };
  const d = tunnel.destination;
  const endpoint = d.service ? inp.state.pickEndpoint(d.service, d.port, undefined, d.ip) : d.workload && { workload: d.workload, ip: d.ip, port: d.port };
  const decision = authorizeAtWaypoint(inp.state.index, waypoint, policyDestination(endpoint, d.service), {
    source: { principal: tunnel.peerIdentity, ip: tunnel.sourceIp },
    destination: { ip: endpoint?.ip, port: endpoint?.port ?? d.port },
  });
  return { decision, endpoint };
}

/** Joins an allowed connection to its endpoint; `initial` are bytes already read from the client. */
export async function serveTcp(
  inp: TcpInputs,
  tunnel: Tunnel,
  io: ByteStream,
  initial: Uint8Array,
  pre?: { decision: EnforcedDecision; endpoint?: Endpoint },
): Promise<void> {
  const started = performance.now();
  const { decision, endpoint } = pre ?? authorizeConnection(inp, tunnel);
  const d = tunnel.destination;
  const fields = {
    source: tunnel.peerIdentity,
    sourceAddress: tunnel.sourceIp,
    destination: d.service ? `${d.service.hostname}:${d.port}` : `${d.ip}:${d.port}`,
    trace_id: tunnel.traceId,
  };
  const end = (o: Omit<TcpOutcome, "decision" | "durationMs">) => inp.onEnd?.(tunnel, { decision, durationMs: performance.now() - started, ...o });
  if (!decision.allowed) {
    end({ received: 0, sent: 0 });
    if (decision.reason === GATEWAY_GONE) log.warn(`tcp connection refused: ${GATEWAY_GONE}`, { ...fields, gateway: inp.state.gateway });
    else log.info("tcp connection denied", { ...fields, reason: decision.reason });
    io.reset();
    return;
  }
  if (!endpoint) {
    end({ received: 0, sent: 0, error: "no ready endpoint" });
    log.info("tcp connection refused: no ready endpoint", fields);
    io.reset();
    return;
  }
  let upstream: ByteStream;
  try {
    upstream = await inp.connector.connect(endpoint, { tunnel, service: d.service });
  } catch (e) {
    end({ endpoint, received: 0, sent: 0, error: `connect to ${endpoint.ip}:${endpoint.port} failed: ${(e as Error).message}` });
    log.warn("tcp connection to the endpoint failed", { ...fields, error: (e as Error).message });
    io.reset();
    return;
  }
  if (io.closed) {
    upstream.reset();
    return;
  }
  const r = await copyBidirectional(io, upstream, { client: initial });
  end({ endpoint, received: r.received, sent: r.sent, error: r.error?.message });
  log.info("tcp connection", {
    ...fields,
    upstream: `${endpoint.ip}:${endpoint.port}`,
    sent: r.received,
    received: r.sent,
    durationMs: Math.round(performance.now() - started),
    ...(r.error ? { error: r.error.message } : {}),
  });
}
