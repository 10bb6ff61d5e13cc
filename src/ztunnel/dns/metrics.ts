/**
 * The DNS proxy's metrics, with the names Istio's ztunnel uses (istio_dns_*), plus a counter of dropped
 * malformed messages.
 */
import type { Counter, Histogram, Registry } from "../../telemetry/mod.ts";

export class DnsMetrics {
  readonly requests: Counter;
  readonly upstreamRequests: Counter;
  readonly upstreamFailures: Counter;
  readonly upstreamDuration: Histogram;
  readonly malformed: Counter;

  constructor(registry: Registry) {
    this.requests = registry.counter(
      "istio_dns_requests_total",
      "DNS requests the ztunnel's DNS proxy received, by how they were answered",
      ["source_workload", "source_workload_namespace", "request_protocol", "request_query_type", "answer"],
    );
    this.upstreamRequests = registry.counter("istio_dns_upstream_requests_total", "DNS requests forwarded to the upstream resolver", ["request_protocol"]);
    this.upstreamFailures = registry.counter("istio_dns_upstream_failures_total", "Forwarded DNS requests that got no answer", ["reason"]);
    this.upstreamDuration = registry.histogram(
      "istio_dns_upstream_request_duration_milliseconds",
      "Time the upstream resolver took to answer",
      [],
      [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    );
    this.malformed = registry.counter("mesh_dns_malformed_requests_total", "DNS messages dropped because they could not be read", ["request_protocol"]);
  }
}
