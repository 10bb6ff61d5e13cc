/**
 * One request as the waypoint's request path sees it, whatever the protocol it arrived in, and what
 * each step of the path decided about it.
 */
import type { HttpHeaderModifier, Service, Workload } from "../model/mod.ts";
import type { Admission } from "../policy/mod.ts";
import type { HeaderMap, MirrorTarget, RetryPolicy } from "../route/mod.ts";
import type { Endpoint, TunnelDestination } from "./state.ts";

/** The HBONE tunnel a request arrived in. */
export interface Tunnel {
  /** For logs: follows one tunnel. */
  id: number;
  /** The client's identity: the SPIFFE ID its ztunnel presented for it. */
  peerIdentity: string;
  /** The socket peer (the client's ztunnel). */
  peerIp: string;
  /** The client's own address, when its ztunnel's word for it can be trusted; else peerIp. */
  sourceIp: string;
  sourceWorkload?: Workload;
  destination: TunnelDestination;
  /** W3C baggage the client's ztunnel sent (source workload metadata), passed on. */
  baggage?: string;
  /**
   * The tunnel's W3C trace id: the one the source ztunnel sent on the CONNECT (traceparent), or one of ours
   * when it sent none. Logged as `trace_id` (`tunnel_trace_id` on request lines), continued by requests
   * that carry no trace of their own and by the tunnels opened to endpoints, so one id follows the
   * connection from the source ztunnel through here to the destination ztunnel.
   */
  traceId: string;
}

export type RequestProtocol = "HTTP/1.0" | "HTTP/1.1" | "HTTP/2";

export interface RequestContext {
  tunnel: Tunnel;
  protocol: RequestProtocol;
  /** content-type application/grpc */
  grpc: boolean;
  method: string;
  /** The normalized path with the query string: what policy, routing and the workload see. */
  path: string;
  /** :authority or Host */
  host: string;
  /** Lower-case names, hop-by-hop and framing fields removed. */
  headers: HeaderMap;
  /** performance.now() when the request head was read. */
  started: number;
  /** W3C trace context sent on: the request's own trace (else the tunnel's), a new span of ours. */
  traceparent: string;
  requestId: string;
  /** The endpoint of the addressed Service (or the addressed workload) policy is evaluated for. */
  endpoint?: Endpoint;
  admission?: Admission;
  plan?: ForwardPlan;
  /** "ns/name" of the route that decided, for logs. */
  routeName?: string;
}

/** What the forwarding step carries out. */
export interface ForwardPlan {
  /** The backend Service and its port; absent when a workload was addressed directly. */
  service?: Service;
  port: number;
  /** The endpoint to try first. */
  endpoint?: Endpoint;
  host: string;
  path: string;
  headers: HeaderMap;
  responseHeaderModifiers: HttpHeaderModifier[];
  mirrors: MirrorTarget[];
  timeoutMs?: number;
  backendTimeoutMs?: number;
  retry?: RetryPolicy;
}

/** An answer the waypoint gives itself. */
export interface LocalReply {
  status: number;
  body: string;
  headers?: [string, string][];
  /** Envoy response flag for telemetry ("-" for none). */
  flags: string;
  /** Why, for the access log. */
  details: string;
}
