/**
 * L7 telemetry of the waypoint: Istio's request metrics with reporter="waypoint", one access log line
 * per request, and W3C trace context (the client's trace continues through a span of ours; a request
 * without one starts a trace).
 */
import { logger } from "../core/mod.ts";
import type { Workload } from "../model/mod.ts";
import {
  type Counter,
  DURATION_BUCKETS_MS,
  type Histogram,
  newTraceparent,
  parseTraceparent,
  type Registry,
  SIZE_BUCKETS,
  traceIdOf,
} from "../telemetry/mod.ts";
import type { RequestContext, Tunnel } from "./context.ts";
import type { TcpOutcome } from "./tcp.ts";
import type { Endpoint } from "./state.ts";

const access = logger("access", { batched: true });

const LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;

/** How one request ended, for metrics and the access log. */
export interface RequestOutcome {
  status: number;
  /** Envoy response flags ("-" for none). */
  flags: string;
  /** Why, when the waypoint answered itself or something failed. */
  details?: string;
  /** The endpoint that answered (or the last one tried). */
  upstream?: Endpoint;
  /** Bytes of the request and response (head and body). */
  requestBytes: number;
  responseBytes: number;
  /** Tries made (1 without retries). */
  tries?: number;
  grpcStatus?: string;
}

interface Handles {
  requests: { inc(n?: number): void };
  duration: { observe(v: number): void };
  requestBytes: { observe(v: number): void };
  responseBytes: { observe(v: number): void };
}

function appOf(w: Workload | undefined): string {
  return w ? (w.labels["service.istio.io/canonical-name"] ?? w.labels.app ?? w.name) : "unknown";
}

export class RequestTelemetry {
  #requests: Counter;
  #duration: Histogram;
  #reqBytes: Histogram;
  #respBytes: Histogram;
  #handles = new Map<string, Handles>();
  /** Each finished request, for the control role's flow view (set by the role; never blocks). */
  onFlow?: (ctx: RequestContext, o: RequestOutcome, durationMs: number) => void;
  /** Each connection that is not HTTP (or a TCP port), for the same flow view. */
  onTcpFlow?: (tunnel: Tunnel, o: TcpOutcome) => void;
  /** When false, no access log line is written (metrics still are). */
  accessLog: boolean;

  constructor(registry: Registry, opts: { accessLog?: boolean } = {}) {
    this.#requests = registry.counter("istio_requests_total", "Requests handled by the waypoint", LABELS);
    this.#duration = registry.histogram(
      "istio_request_duration_milliseconds",
      "Request duration at the waypoint",
      LABELS,
      DURATION_BUCKETS_MS,
    );
    this.#reqBytes = registry.histogram("istio_request_bytes", "Request size (head and body)", LABELS, SIZE_BUCKETS);
    this.#respBytes = registry.histogram("istio_response_bytes", "Response size (head and body)", LABELS, SIZE_BUCKETS);
    this.accessLog = opts.accessLog ?? true;
  }

  /** Records one finished request. */
  record(ctx: RequestContext, o: RequestOutcome): void {
    const durationMs = performance.now() - ctx.started;
    const dst = o.upstream?.workload ?? ctx.endpoint?.workload ?? ctx.tunnel.destination.workload;
    const svc = ctx.plan?.service ?? ctx.tunnel.destination.service;
    const src = ctx.tunnel.sourceWorkload;
    const protocol = ctx.grpc ? "grpc" : "http";
    const grpc = o.grpcStatus ?? "";
    const key = `${ctx.tunnel.peerIdentity}|${src?.uid ?? ""}|${dst?.uid ?? ""}|${svc ? svc.hostname : ""}|${protocol}|${o.status}|${grpc}|${o.flags}`;
    let h = this.#handles.get(key);
    if (!h) {
      const labels: Record<string, string> = {
        reporter: "waypoint",
        source_workload: src?.name ?? "unknown",
        source_workload_namespace: src?.namespace ?? spiffeNamespace(ctx.tunnel.peerIdentity),
        source_principal: ctx.tunnel.peerIdentity || "unknown",
        source_app: appOf(src),
        destination_workload: dst?.name ?? "unknown",
        destination_workload_namespace: dst?.namespace ?? svc?.namespace ?? "unknown",
        destination_principal: dst?.identity ?? "unknown",
        destination_app: appOf(dst),
        destination_service: svc?.hostname ?? "unknown",
        destination_service_name: svc?.name ?? "unknown",
        destination_service_namespace: svc?.namespace ?? "unknown",
        request_protocol: protocol,
        response_code: String(o.status),
        grpc_response_status: grpc,
        response_flags: o.flags || "-",
        connection_security_policy: "mutual_tls",
      };
      h = {
        requests: this.#requests.labels(labels),
        duration: this.#duration.labels(labels),
        requestBytes: this.#reqBytes.labels(labels),
        responseBytes: this.#respBytes.labels(labels),
      };
      // Bounded: label sets are per client/destination/status, but a churning mesh must not grow this forever.
      if (this.#handles.size > 10_000) this.#handles.clear();
      this.#handles.set(key, h);
    }
    h.requests.inc();
    h.duration.observe(durationMs);
    h.requestBytes.observe(o.requestBytes);
    h.responseBytes.observe(o.responseBytes);
    this.onFlow?.(ctx, o, durationMs);
    if (this.accessLog) {
      access.info("request", {
        method: ctx.method,
        path: ctx.path,
        authority: ctx.host,
        protocol: ctx.protocol,
        status: o.status,
        flags: o.flags || "-",
        ...(o.details ? { details: o.details } : {}),
        durationMs: Math.round(durationMs * 1000) / 1000,
        requestBytes: o.requestBytes,
        responseBytes: o.responseBytes,
        source: ctx.tunnel.peerIdentity,
        sourceAddress: ctx.tunnel.sourceIp,
        destination: svc ? `${svc.hostname}:${ctx.tunnel.destination.port}` : `${ctx.tunnel.destination.ip}:${ctx.tunnel.destination.port}`,
        ...(o.upstream ? { upstream: `${o.upstream.ip}:${o.upstream.port}` } : {}),
        ...(ctx.routeName ? { route: ctx.routeName } : {}),
        ...(o.tries && o.tries > 1 ? { tries: o.tries } : {}),
        ...(ctx.admission?.authn.status === "ok" ? { requestPrincipal: ctx.admission.authn.principal } : {}),
        trace_id: traceIdOf(ctx.traceparent),
        tunnel_trace_id: ctx.tunnel.traceId,
        requestId: ctx.requestId,
      });
    }
  }
}

function spiffeNamespace(id: string): string {
  return /\/ns\/([^/]+)\//.exec(id)?.[1] ?? "unknown";
}

/**
 * The traceparent to send on: the request's own trace id and flags with a new parent (span) id of ours;
 * for a request with none (or an invalid one, W3C Trace Context 4.3), a new sampled span in the tunnel's
 * trace (`tunnelTraceId`: the one the source ztunnel started for the connection), else in a new trace.
 */
export function nextTraceparent(incoming: string | undefined, tunnelTraceId?: string): string {
  const p = parseTraceparent(incoming);
  return p ? newTraceparent(p.traceId, p.flags) : newTraceparent(tunnelTraceId, "01");
}
