import { describe, expect, test } from "bun:test";
import type { FlowRecord } from "../xds/mod.ts";
import { FlowStore } from "./flows.ts";
import { flowRecord } from "../../test/support/mod.ts";

const VIEWER = "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa";
const WAYPOINT = "spiffe://cluster.local/ns/ambient-ns/sa/product-api-waypoint";

function l7(status: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return flowRecord({
    proxy: "waypoint/ambient-ns/product-api-waypoint",
    reporter: "waypoint",
    l7: true,
    src: { workload: "ambient-ns/product-viewer", namespace: "ambient-ns", identity: VIEWER },
    dst: { workload: "ambient-ns/product-api", namespace: "ambient-ns", service: "ambient-ns/product-api", port: 8000 },
    waypoint: "ambient-ns/product-api-waypoint",
    method: "GET",
    path: "/get",
    status,
    bytesIn: 100,
    bytesOut: 200,
    durationMs: status === 200 ? 8 : 0.5,
    verdict: status === 200 ? "allowed" : "denied",
    policy: status === 403 ? "ambient-ns/require-get-on-products" : undefined,
    traceId: "a".repeat(32),
    ...over,
  });
}

describe("FlowStore", () => {
  test("the graph counts each flow once: the waypoint's request, not the tunnels around it", () => {
    const s = new FlowStore({ isWaypointIdentity: (id) => id === WAYPOINT });
    // What one request through the waypoint produces: the source ztunnel's tunnel to the waypoint, the
    // waypoint's request, the destination ztunnel's tunnel from the waypoint.
    s.ingest({ flows: [{ ...l7(200), reporter: "source", l7: false, tunneled: true, proxy: "x" }], dropped: 0 }, "ztunnel/node-a");
    s.ingest({ flows: [l7(200), l7(403), l7(403), l7(401, { verdict: "denied" })] , dropped: 0 }, "waypoint/ambient-ns/product-api-waypoint");
    s.ingest({ flows: [{ ...l7(200), reporter: "destination", l7: false, src: { identity: WAYPOINT } }], dropped: 0 }, "ztunnel/node-b");
    const g = s.graph(60_000);
    expect(g.edges.length).toBe(1);
    const e = g.edges[0]!;
    expect(e).toMatchObject({
      source: "workload:ambient-ns/product-viewer",
      target: "service:ambient-ns/product-api",
      waypoints: ["ambient-ns/product-api-waypoint"],
      l7: true,
      flows: 4,
      allowed: 1,
      denied: 3,
      mtls: 4,
      plaintext: 0,
      statuses: { "200": 1, "403": 2, "401": 1 },
      deniedBy: { "ambient-ns/require-get-on-products": 2 },
    });
    expect(e.p50Ms).toBeLessThan(1);
    expect(e.p99Ms).toBeGreaterThan(6);
    expect(g.nodes.map((n) => n.id)).toEqual(["service:ambient-ns/product-api", "waypoint:ambient-ns/product-api-waypoint", "workload:ambient-ns/product-viewer"]);
    // The table keeps every report, each under the proxy that sent it.
    expect(s.recent().map((f) => f.proxy)).toEqual(["ztunnel/node-a", ...Array(4).fill("waypoint/ambient-ns/product-api-waypoint"), "ztunnel/node-b"]);
    expect(s.recent({ denied: true }).length).toBe(3);
  });

  test("plaintext and untunneled flows are drawn as plaintext; an external host is its own node", () => {
    const s = new FlowStore();
    s.ingest({
      flows: [{ ...l7(200), reporter: "source", l7: false, tunneled: false, waypoint: undefined, mtls: false, dst: { address: "93.184.216.34", port: 443 } }],
      dropped: 0,
    }, "ztunnel/node-a");
    const g = s.graph(60_000);
    expect(g.edges[0]).toMatchObject({ target: "external:93.184.216.34:443", plaintext: 1, mtls: 0, l7: false });
  });

  test("windows: a flow older than the window is not in the graph", () => {
    let now = 1_000_000_000_000;
    const s = new FlowStore({ now: () => now });
    s.ingest({ flows: [l7(200, { time: now })], dropped: 0 }, "w");
    now += 2 * 60_000;
    s.ingest({ flows: [l7(200, { time: now })], dropped: 0 }, "w");
    expect(s.graph(60_000).flows).toBe(1);
    expect(s.graph(5 * 60_000).flows).toBe(2);
    expect(s.graph(5 * 60_000).edges[0]!.rate).toBeCloseTo(2 / 300, 3);
  });

  test("summaries count with their weight; proxies' drops are reported", () => {
    const s = new FlowStore();
    s.ingest({ flows: [l7(200, { count: 500 })], dropped: 7 }, "w");
    const g = s.graph(60_000);
    expect(g.flows).toBe(500);
    expect(g.droppedByProxies).toBe(7);
  });

  test("bounded: 50 000 flows over many edges in a minute keep the ring and the buckets at their limits", () => {
    let now = 1_000_000_000_000;
    const s = new FlowStore({ capacity: 1000, maxEdges: 100, now: () => now });
    for (let i = 0; i < 50_000; i++) {
      now += 1.2; // 50 000 in a minute
      s.ingest({ flows: [l7(200, { src: { workload: `ns/client-${i % 5000}`, namespace: "ns" } })], dropped: 0 }, "w");
    }
    const st = s.stats();
    expect(st.received).toBe(50_000);
    expect(st.held).toBe(1000);
    expect(st.buckets).toBeLessThanOrEqual(7);
    expect(st.edges).toBeLessThanOrEqual(100 * st.buckets);
    const g = s.graph(60_000);
    expect(g.flows + g.overflowFlows).toBe(50_000);
    expect(s.get(1)).toBeUndefined();
    expect(s.get(50_000)?.src.workload).toBe("ns/client-4999");
  });

  test("subscribers get each record as it arrives, with its id", () => {
    const s = new FlowStore();
    const got: number[] = [];
    const stop = s.subscribe((f) => got.push(f.id!));
    s.ingest({ flows: [l7(200), l7(403)], dropped: 0 }, "w");
    stop();
    s.ingest({ flows: [l7(200)], dropped: 0 }, "w");
    expect(got).toEqual([1, 2]);
    expect(s.get(2)?.status).toBe(403);
  });
});
