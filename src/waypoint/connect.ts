/**
 * How the waypoint reaches an endpoint: HBONE to `endpointIP:15008` with `endpointIP:port` as the
 * CONNECT target, presenting the waypoint's own certificate and expecting the workload's identity (the
 * destination ztunnel admits only a waypoint that serves the workload); plain TCP for a workload outside
 * the mesh; an egress destination (a ServiceEntry) as plain TCP or originated TLS (./egress.ts). The CONNECT carries the client's address (forwarded for=), the Service it addressed
 * (host=, for the destination's telemetry), its baggage and the trace context.
 */
import { formatForwarded, formatHostPort } from "../core/mod.ts";
import { HboneError, type HbonePool, type TlsMaterial } from "../hbone/mod.ts";
import type { Tunnel } from "./context.ts";
import { type ByteStream, dialTcp } from "../stream/mod.ts";
import type { Endpoint } from "./state.ts";
import type { Service } from "../model/mod.ts";
import { newTraceparent } from "../telemetry/mod.ts";
import { dialExternal, externalOf } from "./egress.ts";

export interface UpstreamConnector {
  /**
   * The CONNECT continues the client tunnel's trace (not a request's): a pooled upstream tunnel outlives
   * the request it was opened for, and the destination ztunnel logs connections, which the source
   * ztunnel's trace id names.
   */
  connect(endpoint: Endpoint, via: { tunnel: Tunnel; service?: Service }): Promise<ByteStream>;
}

/** A connection to an endpoint failed: `flag` is the Envoy response flag (UF connect failure, UH refused). */
export class ConnectFailure extends Error {
  constructor(message: string, readonly flag: "UF" | "URX", readonly status?: number) {
    super(message);
    this.name = "ConnectFailure";
  }
}

export interface HboneConnectorOptions {
  pool: HbonePool;
  /** The waypoint's certificate, key and trust bundle (read per connection: renewals apply at once). */
  tls: () => TlsMaterial | undefined;
  /** HBONE port of an endpoint address (15008; tests map addresses to loopback ports). */
  hbonePort?: (ip: string) => number;
  connectTimeoutMs?: number;
}

export function hboneConnector(o: HboneConnectorOptions): UpstreamConnector {
  const timeout = o.connectTimeoutMs ?? 10_000;
  return {
    async connect(endpoint, via) {
      const w = endpoint.workload;
      const external = via.tunnel.destination.external;
      if (external && externalOf(via.service)) {
        try {
          return await dialExternal(endpoint, external.at.host, external.tls, timeout);
        } catch (e) {
          throw new ConnectFailure(`connect to ${external.at.host} (${formatHostPort(endpoint.ip || external.at.host, endpoint.port)}) failed: ${(e as Error).message}`, "UF");
        }
      }
      if (!w.ambient) {
        try {
          return await dialTcp(endpoint.ip, endpoint.port, { timeoutMs: timeout });
        } catch (e) {
          throw new ConnectFailure(`TCP connect to ${formatHostPort(endpoint.ip, endpoint.port)} failed: ${(e as Error).message}`, "UF");
        }
      }
      const tls = o.tls();
      if (!tls) throw new ConnectFailure("the waypoint has no certificate yet", "UF");
      const src = via.tunnel.sourceIp;
      try {
        return await o.pool.connect({
          host: endpoint.ip,
          port: o.hbonePort?.(endpoint.ip) ?? 15008,
          authority: formatHostPort(endpoint.ip, endpoint.port),
          headers: {
            forwarded: formatForwarded({ ip: src }, via.service?.hostname),
            baggage: via.tunnel.baggage,
            traceparent: newTraceparent(via.tunnel.traceId),
          },
          tls,
          expectedIdentities: [w.identity],
          // One pooled HTTP/2 connection per endpoint; tunnels on it are per client (see Http1UpstreamPool).
          poolKey: `${w.identity}|${formatHostPort(endpoint.ip, o.hbonePort?.(endpoint.ip) ?? 15008)}`,
        });
      } catch (e) {
        const status = e instanceof HboneError ? e.status : undefined;
        throw new ConnectFailure(
          `HBONE to ${formatHostPort(endpoint.ip, endpoint.port)} ${status ? `refused with ${status}` : "failed"}: ${(e as Error).message}`,
          "UF",
          status,
        );
      }
    },
  };
}
