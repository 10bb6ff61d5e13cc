/** Metrics (Prometheus text with Istio's names) and access logs. */
export * from "./metrics.ts";
