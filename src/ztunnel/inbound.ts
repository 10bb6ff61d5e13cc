/**
 * Inbound HBONE (15008): the certificate presented is chosen per connection from its original
 * destination (the local workload it was meant for), before the TLS handshake; each CONNECT stream is
 * then decided (./inbound_decision.ts), answered (200, 400, 401 or 503), and copied to the workload.
 */
import { forwardedHost, hostOf, logger } from "../core/mod.ts";
import { newTraceId, parseTraceparent } from "../telemetry/mod.ts";
import { decideHboneInbound } from "./inbound_decision.ts";
import { type ProxyInputs, proxy } from "./inputs.ts";
import { type ByteStream, plainAddress } from "../stream/mod.ts";
import type { ConnectionView } from "./telemetry.ts";

const log = logger("ztunnel");

/** What the certificate callback attaches to a connection, for its streams. */
export interface InboundConnectionContext {
  /** The address the client dialed (the workload whose certificate we presented). */
  connectionIp: string;
}

/** A CONNECT stream as the HBONE server hands it over. */
export interface InboundTunnel extends ByteStream {
  readonly authority: string;
  readonly headers: Record<string, string>;
  readonly peerIdentity: string;
  readonly peerAddress: string;
  readonly context: unknown;
  respond(status: number, headers?: Record<string, string>): void;
}

/** The Service the client addressed (forwarded `host=`), if it is one the workload serves; else its first. */
function serviceFor<S extends { hostname: string }>(services: S[], forwarded: string | undefined): S | undefined {
  const host = forwardedHost(forwarded);
  return (host && services.find((s) => s.hostname === host)) || services[0];
}

export function handleInboundTunnel(inputs: ProxyInputs, t: InboundTunnel): void {
  const started = performance.now();
  const ctx = t.context as InboundConnectionContext | undefined;
  const peerIp = plainAddress(hostOf(t.peerAddress));
  const index = inputs.state.index;
  const view: ConnectionView = {
    reporter: "destination",
    direction: "inbound",
    srcAddress: peerIp,
    srcIdentity: t.peerIdentity,
    dstAddress: t.authority,
    securityPolicy: "mutual_tls",
    // The client's trace (its ztunnel or waypoint sent it on the CONNECT), or one of ours when it sent none.
    traceId: parseTraceparent(t.headers.traceparent)?.traceId ?? newTraceId(),
  };
  const deny = (status: number, reason: string, flags: "DENY" | "UF") => {
    t.respond(status);
    inputs.telemetry.close(view, { received: 0, sent: 0, durationMs: performance.now() - started, flags, reason: `${status}: ${reason}` });
  };
  if (!inputs.accepting()) return deny(503, "ztunnel is draining", "DENY");
  const d = decideHboneInbound(index, inputs.state.node, {
    authority: t.authority,
    peerIdentity: t.peerIdentity,
    peerIp,
    forwarded: t.headers.forwarded,
    connectionIp: ctx?.connectionIp,
  });
  view.srcAddress = d.sourceIp ?? peerIp;
  view.srcWorkload = index.workloadByAddress(view.srcAddress) ?? undefined;
  if (view.srcWorkload && view.srcWorkload.identity !== t.peerIdentity) {
    // The address is someone else's (a waypoint speaking for its client keeps the client's address):
    // name the workload only when it matches the authenticated identity.
    const wp = index.model.waypoints.find((w) => w.identity === t.peerIdentity);
    if (!wp) view.srcWorkload = undefined;
  }
  view.dstWorkload = d.workload;
  view.dstIdentity = d.workload?.identity;
  view.service = d.workload ? serviceFor(index.servicesOfWorkload(d.workload.uid), t.headers.forwarded) : undefined;
  if (!d.ok) return deny(d.status, d.reason, "DENY");
  inputs.dial(d.ip, d.port).then(
    (upstream) => {
      if (t.closed) {
        upstream.reset();
        return;
      }
      t.respond(200);
      proxy(inputs, t, upstream, [view], started);
    },
    (e) => {
      log.warn("inbound connect to workload failed", { target: t.authority, error: (e as Error).message, trace_id: view.traceId });
      deny(503, `connect to ${t.authority} failed: ${(e as Error).message}`, "UF");
    },
  );
}
