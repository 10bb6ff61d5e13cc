import { describe, expect, test } from "bun:test";
import { Registry } from "../telemetry/mod.ts";
import type { FlowBatch, FlowRecord } from "../xds/mod.ts";
import { FlowRing, policyOfReason } from "./flows.ts";
import { flowRecord } from "../../test/support/mod.ts";

function flow(i: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return flowRecord({ src: { workload: `ns/client-${i % 3}`, namespace: "ns" }, traceId: i.toString(16).padStart(32, "0"), ...over });
}

describe("FlowRing", () => {
  test("records reach the control role in one batch per flush", async () => {
    const batches: FlowBatch[] = [];
    const ring = new FlowRing({ send: async (b) => (batches.push(b), true), connected: () => true });
    for (let i = 0; i < 5; i++) ring.record(flow(i));
    await ring.flush();
    expect(batches.length).toBe(1);
    expect(batches[0]!.flows.map((f) => f.traceId)).toEqual([0, 1, 2, 3, 4].map((i) => i.toString(16).padStart(32, "0")));
    expect(ring.stats().reported).toBe(5);
    await ring.flush();
    expect(batches.length).toBe(1);
  });

  test("over capacity, records fold into per-edge summaries; beyond those they are dropped and counted", async () => {
    const batches: FlowBatch[] = [];
    const metrics = new Registry();
    const ring = new FlowRing({ send: async (b) => (batches.push(b), true), connected: () => true, capacity: 10, summaryKeys: 2, metrics });
    for (let i = 0; i < 50_000; i++) ring.record(flow(i));
    // Three source workloads, two summary slots: the third edge's records past capacity are dropped.
    const s = ring.stats();
    expect(s.pending).toBe(10);
    expect(s.summaries).toBe(2);
    await ring.flush();
    const b = batches[0]!;
    expect(b.flows.length).toBe(12);
    const folded = b.flows.filter((f) => f.count !== undefined);
    const total = 10 + folded.reduce((a, f) => a + f.count!, 0) + b.dropped;
    expect(total).toBe(50_000);
    expect(b.dropped).toBeGreaterThan(0);
    expect(folded[0]!.bytesIn).toBe(folded[0]!.count! * 10);
    const text = metrics.render();
    expect(text).toContain(`mesh_flow_records_total{result="dropped_overflow"} ${b.dropped}`);
    expect(text).toContain(`mesh_flow_records_total{result="reported"} 10`);
  });

  test("without a control plane nothing is kept: each record is dropped and counted at once", async () => {
    let sent = 0;
    const ring = new FlowRing({ send: async () => (sent++, true), connected: () => false });
    let made = 0;
    for (let i = 0; i < 1000; i++) ring.record(() => (made++, flow(i)));
    expect(ring.stats()).toMatchObject({ pending: 0, summaries: 0, dropped_no_control_plane: 1000 });
    expect(made).toBe(0); // not even made
    await ring.flush();
    expect(sent).toBe(0);
  });

  test("a refused or failed batch is counted as dropped, and the next one goes out", async () => {
    let fail = true;
    const ring = new FlowRing({ send: async () => (fail ? Promise.reject(new Error("reset")) : true), connected: () => true });
    ring.record(flow(1));
    ring.record(flow(2));
    await ring.flush();
    expect(ring.stats().dropped_send_failed).toBe(2);
    fail = false;
    ring.record(flow(3));
    await ring.flush();
    expect(ring.stats().reported).toBe(1);
  });

  test("record() does not wait for a slow control role: one batch in flight, the rest bounded", async () => {
    let release!: (ok: boolean) => void;
    const ring = new FlowRing({ send: () => new Promise((r) => (release = r)), connected: () => true, capacity: 100, summaryKeys: 4 });
    ring.record(flow(1));
    const first = ring.flush();
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) ring.record(flow(i));
    expect(performance.now() - t0).toBeLessThan(1000);
    await ring.flush(); // still sending: returns at once
    expect(ring.stats().pending).toBe(100);
    release(true);
    await first;
  });
});

test("bounded: 50 000 flows a minute, over and over, keep a proxy's memory flat", async () => {
  let connected = true;
  const ring = new FlowRing({ send: async () => true, connected: () => connected });
  const burst = async () => {
    for (let i = 0; i < 50_000; i++) ring.record(flow(i, { src: { workload: `ns/client-${i % 5000}`, namespace: "ns" } }));
    await ring.flush();
  };
  // The JavaScript heap after a full collection: what the ring holds. (The process's RSS also moves with
  // whatever else this test process runs, and the allocator keeps freed pages.)
  const rss = () => {
    Bun.gc(true);
    return process.memoryUsage().heapUsed;
  };
  await burst();
  const first = rss();
  for (let k = 0; k < 4; k++) await burst();
  connected = false; // the control role stopped: records are dropped as they come
  for (let k = 0; k < 2; k++) await burst();
  expect(rss() - first).toBeLessThan(20 * 1024 * 1024);
  const held = ring.stats();
  expect(held.pending).toBeLessThanOrEqual(1000);
  expect(held.summaries).toBeLessThanOrEqual(256);
  expect(ring.stats().dropped_no_control_plane).toBe(100_000);
});

test("policyOfReason names the policy in a refusal's reason", () => {
  expect(policyOfReason("no ALLOW policy matched (ambient-ns/require-get-on-products)")).toBe("ambient-ns/require-get-on-products");
  expect(policyOfReason("denied by DENY policy shop/deny-all rule 0")).toBe("shop/deny-all");
  expect(policyOfReason("connect failed")).toBeUndefined();
});
