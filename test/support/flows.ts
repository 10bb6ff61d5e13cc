/**
 * Flow records as the proxies report them, for the tests of what keeps, sends, filters or shows them.
 */
import type { FlowRecord } from "../../src/xds/mod.ts";

/**
 * An allowed L4 connection over mTLS from ns/client to ns/server:8000, as the destination ztunnel on
 * node-a reports it; `over` states what a test is about.
 */
export function flowRecord(over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    time: Date.now(),
    proxy: "ztunnel/node-a",
    reporter: "destination",
    l7: false,
    src: { workload: "ns/client", namespace: "ns" },
    dst: { workload: "ns/server", namespace: "ns", port: 8000 },
    bytesIn: 10,
    bytesOut: 20,
    durationMs: 1,
    verdict: "allowed",
    mtls: true,
    traceId: "0".repeat(32),
    ...over,
  };
}
