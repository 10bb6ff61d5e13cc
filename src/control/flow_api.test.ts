/**
 * Flow reports end to end through the real 15012 listener: a proxy's client reports over its session, an
 * admin reads them back (once, and following the live stream), and nobody else may.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { callJson, FLOWS_PATH, type FlowRecord, FrameReader, openSession, type XdsClient } from "../xds/mod.ts";
import { client, meshYaml, tempDir, writeMesh } from "./_test_env.ts";
import { bootstrapToken as token, flowRecord, startTestControl, type TestControl, waitFor } from "../../test/support/mod.ts";

function flow(status: number, traceId: string): FlowRecord {
  return flowRecord({
    proxy: "somebody-else",
    src: { workload: "default/client", namespace: "default" },
    dst: { workload: "default/server", namespace: "default", port: 80 },
    bytesIn: 1,
    bytesOut: 2,
    durationMs: 3,
    verdict: status === 200 ? "allowed" : "denied",
    policy: status === 200 ? undefined : "default/deny-it",
    traceId,
  });
}

describe("flows on 15012", () => {
  const t = tempDir();
  let tc: TestControl;
  let proxy: XdsClient;
  let ca: string;
  let admin: string;

  beforeAll(async () => {
    writeMesh(t.dir, meshYaml());
    tc = await startTestControl(t.dir);
    proxy = await client({ address: tc.address, dir: t.dir }, { kind: "ztunnel", node: "node-a" });
    await proxy.start();
    await proxy.ready(10_000);
    ca = readFileSync(join(t.dir, "data", "root-cert.pem"), "utf8");
    admin = await token(join(t.dir, "data"), { admin: true });
  });
  afterAll(async () => {
    await proxy?.stop();
    await tc?.handle.stop();
    t.cleanup();
  });

  test("a proxy reports over its session; the records carry the proxy its certificate names", async () => {
    expect(await proxy.reportFlows({ flows: [flow(200, "1".repeat(32)), flow(403, "2".repeat(32))], dropped: 0 })).toBe(true);
    const s = await openSession(tc.address, { ca });
    try {
      const r = await callJson(s, "GET", `${FLOWS_PATH}?denied=1`, undefined, { authorization: `Bearer ${admin}` });
      expect(r.status).toBe(200);
      const flows = (r.body as { flows: FlowRecord[] }).flows;
      expect(flows.map((f) => [f.proxy, f.traceId, f.policy])).toEqual([["ztunnel/node-a", "2".repeat(32), "default/deny-it"]]);
      // Without an admin credential: refused.
      const anon = await callJson(s, "GET", FLOWS_PATH, undefined);
      expect(anon.status).toBe(401);
      // And nobody without a proxy's client certificate may report.
      const forged = await callJson(s, "POST", FLOWS_PATH, { flows: [flow(200, "3".repeat(32))], dropped: 0 }, { authorization: `Bearer ${admin}` });
      expect(forged.status).toBe(401);
    } finally {
      s.destroy();
    }
  });

  test("follow: the recent ones first, then each as it arrives", async () => {
    const s = await openSession(tc.address, { ca });
    const got: FlowRecord[] = [];
    try {
      const req = s.request({ ":method": "GET", ":path": `${FLOWS_PATH}?follow=1&from=default/client`, authorization: `Bearer ${admin}` });
      const reader = new FrameReader();
      req.on("data", (d: Buffer) => {
        for (const l of reader.push(d)) if (l.trim()) got.push(JSON.parse(l) as FlowRecord);
      });
      await waitFor("the recent flows", () => got.length >= 2);
      expect(await proxy.reportFlows({ flows: [flow(200, "4".repeat(32))], dropped: 0 })).toBe(true);
      await waitFor("the live flow", () => got.some((f) => f.traceId === "4".repeat(32)));
      req.close();
      await waitFor("the control role to drop the subscriber", () => tc.handle.flows.stats().subscribers === 0);
    } finally {
      s.destroy();
    }
  });

  test("bounded: 50 000 flows a minute through the listener keep the control role's memory flat", async () => {
    const batch = (n: number, k: number) => ({
      flows: Array.from({ length: n }, (_, i) => ({ ...flow(i % 7 ? 200 : 403, (k * n + i).toString(16).padStart(32, "0")), src: { workload: `default/client-${(k * n + i) % 3000}`, namespace: "default" } })),
      dropped: 0,
    });
    const send = async (rounds: number) => {
      for (let k = 0; k < rounds; k++) expect(await proxy.reportFlows(batch(1000, k))).toBe(true);
    };
    // The JavaScript heap after a full collection: what the store holds (RSS also moves with the rest of
    // this test process, and the allocator keeps freed pages).
    const rss = () => {
      Bun.gc(true);
      return process.memoryUsage().heapUsed;
    };
    await send(50); // fills the ring (10 000) and the current buckets
    const filled = rss();
    await send(100); // 100 000 more
    const grown = rss() - filled;
    expect(tc.handle.flows.stats().held).toBe(10_000);
    expect(grown).toBeLessThan(40 * 1024 * 1024);
  }, 60_000);

  test("a proxy whose control role is gone: reports are refused at once, nothing is dialed", async () => {
    await tc.handle.stop();
    await waitFor("the client to notice", () => !proxy.connected);
    const t0 = performance.now();
    expect(await proxy.reportFlows({ flows: [flow(200, "5".repeat(32))], dropped: 0 })).toBe(false);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});
