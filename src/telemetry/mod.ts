/** Metrics (Prometheus text with Istio's names), access logs, and W3C trace context. */
export * from "./metrics.ts";
export * from "./trace.ts";
