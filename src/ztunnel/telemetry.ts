/**
 * L4 telemetry of the ztunnel (README "Metrics"): Istio's TCP metrics with Istio's label names, one
 * series set per (reporter, source, destination, service, security policy, flags), and one JSON access
 * log line per connection. The source ztunnel reports with reporter="source", the destination ztunnel
 * with reporter="destination"; a same-node connection is reported by both roles of the one ztunnel.
 */
import { logger } from "../core/mod.ts";
import type { Service, Workload } from "../model/mod.ts";
import type { Counter, Registry } from "../telemetry/mod.ts";

export const TCP_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_canonical_service",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_canonical_service",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "request_protocol",
  "response_flags",
  "connection_security_policy",
] as const;

export type Reporter = "source" | "destination";

/** A ServiceEntry host as telemetry names it. */
export interface ExternalDestination {
  host: string;
  name: string;
  namespace: string;
}
export type SecurityPolicy = "mutual_tls" | "none";
/** "-" ok; "DENY" refused by policy, capture rules or readiness; "UF" upstream connect failure. */
export type ResponseFlags = "-" | "DENY" | "UF";

/** One connection as telemetry sees it. */
export interface ConnectionView {
  reporter: Reporter;
  direction: "outbound" | "inbound";
  srcAddress: string;
  srcWorkload?: Workload;
  /** The peer's authenticated identity (inbound) or the identity presented (outbound). */
  srcIdentity?: string;
  /** The address the client dialed (original destination), "ip:port". */
  dstAddress: string;
  /** Where the tunnel went ("ip:15008"), when HBONE was used. */
  hboneAddress?: string;
  dstWorkload?: Workload;
  dstIdentity?: string;
  service?: Service;
  /** The ServiceEntry host reached (an external destination), named as destination_service. */
  external?: ExternalDestination;
  /** The waypoint the connection went through, "ns/name". */
  waypoint?: string;
  securityPolicy: SecurityPolicy;
  /**
   * W3C trace id shared by every hop of the connection: started by the source ztunnel, sent on the HBONE
   * CONNECT (traceparent), read there by the waypoint and the destination ztunnel. Logged as `trace_id`.
   */
  traceId?: string;
}

export interface ConnectionOutcome {
  received: number;
  sent: number;
  durationMs: number;
  flags: ResponseFlags;
  /** Why it was refused or failed. */
  reason?: string;
  /** Set when an admitted connection ended with an abort (reset, TLS failure, drain timeout). */
  error?: string;
}

const UNKNOWN = "unknown";

function canonical(w: Workload | undefined): string {
  if (!w) return UNKNOWN;
  return w.labels["service.istio.io/canonical-name"] ?? w.labels["app.kubernetes.io/name"] ?? w.labels.app ?? w.name;
}

function principalLabel(identity: string | undefined): string {
  return identity ?? UNKNOWN;
}

export function tcpLabels(v: ConnectionView, flags: ResponseFlags): Record<(typeof TCP_LABELS)[number], string> {
  const s = v.srcWorkload;
  const d = v.dstWorkload;
  return {
    reporter: v.reporter,
    source_workload: s?.name ?? UNKNOWN,
    source_workload_namespace: s?.namespace ?? UNKNOWN,
    source_principal: principalLabel(v.srcIdentity),
    source_app: s?.labels.app ?? UNKNOWN,
    source_canonical_service: canonical(s),
    destination_workload: d?.name ?? UNKNOWN,
    destination_workload_namespace: d?.namespace ?? UNKNOWN,
    destination_principal: principalLabel(v.dstIdentity),
    destination_app: d?.labels.app ?? UNKNOWN,
    destination_canonical_service: canonical(d),
    destination_service: v.service?.hostname ?? v.external?.host ?? (d ? UNKNOWN : v.dstAddress.replace(/:\d+$/, "")),
    destination_service_name: v.service?.name ?? v.external?.host ?? UNKNOWN,
    destination_service_namespace: v.service?.namespace ?? v.external?.namespace ?? UNKNOWN,
    request_protocol: "tcp",
    response_flags: flags,
    connection_security_policy: v.securityPolicy,
  };
}

interface SeriesHandles {
  opened: { inc(n?: number): void };
  closed: { inc(n?: number): void };
  sent: { inc(n?: number): void };
  received: { inc(n?: number): void };
}

/** The ztunnel's metrics and access log. */
export class ConnectionTelemetry {
  readonly opened: Counter;
  readonly closed: Counter;
  readonly sentBytes: Counter;
  readonly receivedBytes: Counter;
  /** Handles per label set: labels are rendered once per distinct (source, destination, ...) tuple. */
  #cache = new Map<string, SeriesHandles>();
  #access = logger("access");
  /** Each finished connection, for the control role's flow view (set by the role; never blocks). */
  onFlow?: (v: ConnectionView, o: ConnectionOutcome) => void;

  constructor(registry: Registry) {
    this.opened = registry.counter("istio_tcp_connections_opened_total", "TCP connections opened", TCP_LABELS);
    this.closed = registry.counter("istio_tcp_connections_closed_total", "TCP connections closed", TCP_LABELS);
    this.sentBytes = registry.counter(
      "istio_tcp_sent_bytes_total",
      "Bytes sent to the client (the response direction) over TCP connections",
      TCP_LABELS,
    );
    this.receivedBytes = registry.counter(
      "istio_tcp_received_bytes_total",
      "Bytes received from the client (the request direction) over TCP connections",
      TCP_LABELS,
    );
  }

  #handles(v: ConnectionView, flags: ResponseFlags): SeriesHandles {
    const key = [
      v.reporter,
      v.srcWorkload?.uid ?? "",
      v.srcIdentity ?? "",
      v.dstWorkload?.uid ?? v.dstAddress,
      v.dstIdentity ?? "",
      v.service ? `${v.service.namespace}/${v.service.name}` : v.external ? `${v.external.namespace}/${v.external.host}` : "",
      flags,
      v.securityPolicy,
    ].join("|");
    let h = this.#cache.get(key);
    if (!h) {
      // Bounded: a scan of many unknown destinations must not grow this without limit.
      if (this.#cache.size > 10_000) this.#cache.clear();
      const labels = tcpLabels(v, flags);
      h = {
        opened: this.opened.labels(labels),
        closed: this.closed.labels(labels),
        sent: this.sentBytes.labels(labels),
        received: this.receivedBytes.labels(labels),
      };
      this.#cache.set(key, h);
    }
    return h;
  }

  /** A connection was admitted and its upstream is connected. */
  open(v: ConnectionView): void {
    this.#handles(v, "-").opened.inc();
  }

  /** A connection ended (after `open`), or was refused or failed before it (flags DENY/UF). */
  close(v: ConnectionView, o: ConnectionOutcome): void {
    const h = this.#handles(v, o.flags);
    if (o.flags !== "-") h.opened.inc();
    h.closed.inc();
    if (o.sent) h.sent.inc(o.sent);
    if (o.received) h.received.inc(o.received);
    this.#log(v, o);
    this.onFlow?.(v, o);
  }

  #log(v: ConnectionView, o: ConnectionOutcome): void {
    const fields = {
      direction: v.direction,
      reporter: v.reporter,
      trace_id: v.traceId,
      src: {
        addr: v.srcAddress,
        workload: v.srcWorkload?.name,
        namespace: v.srcWorkload?.namespace,
        identity: v.srcIdentity,
      },
      dst: {
        addr: v.dstAddress,
        hbone_addr: v.hboneAddress,
        service: v.service?.hostname ?? v.external?.host,
        workload: v.dstWorkload?.name,
        namespace: v.dstWorkload?.namespace,
        identity: v.dstIdentity,
      },
      waypoint: v.waypoint,
      security: v.securityPolicy,
      bytes_sent: o.sent,
      bytes_recv: o.received,
      duration_ms: Math.round(o.durationMs * 10) / 10,
      result: o.flags === "DENY" ? "denied" : o.flags === "UF" ? "failed" : o.error ? "reset" : "ok",
      reason: o.reason,
      error: o.error,
    };
    if (o.flags === "-") this.#access.info("connection complete", fields);
    else this.#access.warn(o.flags === "DENY" ? "connection refused" : "connection failed", fields);
  }
}
