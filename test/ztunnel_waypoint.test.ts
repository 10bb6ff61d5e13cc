/**
 * The ztunnel with a waypoint, in the lab built from config/mesh.yaml (the seed walkthrough): traffic to
 * the Service goes through the waypoint (which enforces the JWT policy), and a client that dials the pod
 * directly, bypassing the waypoint, is refused by the destination ztunnel (HBONE 401), fail closed. Each
 * denied connection is found by one trace id in every log it passes (source ztunnel, waypoint,
 * destination ztunnel) and in `mesh describe`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  curl,
  ensureBuilt,
  forceDown,
  isRoot,
  labInfo,
  type LabInfo,
  mesh,
  metricValue,
  nodeOf,
  podNetns,
  ROOT,
  uniquePrefix,
  waitFor,
} from "./support/mod.ts";

if (!isRoot) console.log("test/ztunnel_waypoint.test.ts: skipped, the lab needs root");

const VIEWER = "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa";
const WAYPOINT = "spiffe://cluster.local/ns/ambient-ns/sa/product-api-waypoint";

describe.skipIf(!isRoot)("ztunnel and waypoint", () => {
  const prefix = uniquePrefix("zw");
  let info: LabInfo;
  let viewer = "";
  const token = readFileSync(join(ROOT, "src", "lab", "testdata", "demo.jwt"), "utf8").trim();

  beforeAll(async () => {
    ensureBuilt();
    const r = await mesh(["lab", "up", join(ROOT, "config", "mesh.yaml"), "--prefix", prefix, "--timeout", "60"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
    info = labInfo(prefix);
    viewer = podNetns(info, "ambient-ns/product-viewer");
  });

  afterAll(async () => {
    await forceDown(prefix);
  });

  test("through the Service: the waypoint decides (403 without a token, 200 with one); the pod sees the waypoint's identity", async () => {
    expect((await curl(viewer, "http://10.96.0.20:8000/get")).status).toBe("403");
    expect((await curl(viewer, "http://10.96.0.20:8000/get", { authorization: `Bearer ${token}` })).status).toBe("200");
    const nodeB = nodeOf(info, "node-b").netns;
    await waitFor("destination report from the waypoint", async () =>
      (await metricValue(nodeB, "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: WAYPOINT,
        destination_workload: "product-api",
        connection_security_policy: "mutual_tls",
      })) >= 1
    );
  });

  test("bypassing the waypoint (dialing the pod) is refused by the destination ztunnel with 401", async () => {
    const nodeA = nodeOf(info, "node-a").netns;
    const nodeB = nodeOf(info, "node-b").netns;
    const denied = { reporter: "destination", source_principal: VIEWER, response_flags: "DENY" };
    const before = await metricValue(nodeB, "istio_tcp_connections_closed_total", denied);
    const r = await curl(viewer, "http://10.244.2.10:80/get", { authorization: `Bearer ${token}` });
    expect(r.status).toBe("000");
    await waitFor("the refusal at node-b", async () => (await metricValue(nodeB, "istio_tcp_connections_closed_total", denied)) > before);
    const logB = readFileSync(info.processes.find((p) => p.id === "ztunnel/node-b")!.log, "utf8");
    expect(logB).toContain("did not come through it (bypass refused)");
    expect(await metricValue(nodeA, "istio_tcp_connections_closed_total", { reporter: "source", source_principal: VIEWER, response_flags: "DENY" })).toBeGreaterThanOrEqual(1);
    const logA = readFileSync(info.processes.find((p) => p.id === "ztunnel/node-a")!.log, "utf8");
    expect(logA).toContain("answered 401");
  });

  test("one trace id across hops: a denied request through the waypoint, and a denied direct connection, in every log they pass and in mesh describe", async () => {
    const logOf = (id: string) => info.processes.find((p) => p.id === id)!.log;
    const files = { a: logOf("ztunnel/node-a"), b: logOf("ztunnel/node-b"), wp: logOf("waypoint/ambient-ns/product-api-waypoint") };
    const offsets = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, statSync(f).size])) as Record<keyof typeof files, number>;
    /** The JSON lines a proxy logged since this test started. */
    const since = (k: keyof typeof files) =>
      readFileSync(files[k]).subarray(offsets[k]).toString("utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const HEX32 = /^[0-9a-f]{32}$/;

    // 1. Through the waypoint, no token: 403 at the waypoint. The source ztunnel started the trace; the
    // request carried none, so the waypoint logs the tunnel's trace id for it.
    const probe = `/get?probe=${Math.random().toString(36).slice(2, 10)}`;
    expect((await curl(viewer, `http://10.96.0.20:8000${probe}`)).status).toBe("403");
    let denied: Record<string, unknown> | undefined;
    await waitFor("the 403 in the waypoint's log", async () => !!(denied = since("wp").find((l) => l.scope === "access" && l.path === probe)));
    expect(denied).toMatchObject({ status: 403 });
    const t1 = denied!.trace_id as string;
    expect(t1).toMatch(HEX32);
    expect(denied!.tunnel_trace_id).toBe(t1);
    let source: Record<string, unknown> | undefined;
    await waitFor("the source ztunnel's line", async () => !!(source = since("a").find((l) => l.scope === "access" && l.trace_id === t1)));
    expect(source).toMatchObject({ reporter: "source", waypoint: "ambient-ns/product-api-waypoint", src: { workload: "product-viewer" } });

    // The same with a trace of the client's own: it wins for the request; the tunnel's is logged beside it.
    const own = "4bf92f3577b34da6a3ce929d0e0e4736".replace(/^..../, Math.random().toString(16).slice(2, 6).padEnd(4, "0"));
    const probe2 = `/get?probe=${Math.random().toString(36).slice(2, 10)}`;
    expect((await curl(viewer, `http://10.96.0.20:8000${probe2}`, { traceparent: `00-${own}-00f067aa0ba902b7-01` })).status).toBe("403");
    let withOwn: Record<string, unknown> | undefined;
    await waitFor("the second 403 in the waypoint's log", async () => !!(withOwn = since("wp").find((l) => l.scope === "access" && l.path === probe2)));
    expect(withOwn!.trace_id).toBe(own);
    const t2 = withOwn!.tunnel_trace_id as string;
    expect(t2).toMatch(HEX32);
    expect(t2).not.toBe(own);
    await waitFor("the source ztunnel's line of the second", async () => since("a").some((l) => l.scope === "access" && l.trace_id === t2));

    // 2. Dialing the pod (bypassing the waypoint): refused by the destination ztunnel (HBONE 401). Both
    // ztunnels' refusals carry the trace id the source ztunnel sent on the CONNECT.
    expect((await curl(viewer, "http://10.244.2.10:80/get")).status).toBe("000");
    let refusedA: Record<string, unknown> | undefined;
    await waitFor("the source ztunnel's refusal", async () =>
      !!(refusedA = since("a").find((l) => l.msg === "connection refused" && String(l.reason).includes("10.244.2.10:80") && String(l.reason).includes("401"))));
    const t3 = refusedA!.trace_id as string;
    expect(t3).toMatch(HEX32);
    let refusedB: Record<string, unknown> | undefined;
    await waitFor("the destination ztunnel's refusal", async () => !!(refusedB = since("b").find((l) => l.scope === "access" && l.trace_id === t3)));
    expect(refusedB).toMatchObject({ msg: "connection refused", reporter: "destination", result: "denied" });
    expect(String(refusedB!.reason)).toContain("bypass refused");

    // 3. mesh describe shows the ids: each connection's rows, from every proxy that logged it.
    const r = await mesh(["describe", "pod", "ambient-ns/product-api", "--lab", prefix, "--connections", "200", "--format", "json"], 60_000);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout).connections as { proxy: string; result: string; id: string | null; tunnelId?: string; request: string | null }[];
    const proxiesWith = (id: string) => [...new Set(rows.filter((c) => c.id === id || c.tunnelId === id).map((c) => c.proxy))].sort();
    expect(proxiesWith(t1)).toEqual(["waypoint/ambient-ns/product-api-waypoint", "ztunnel/node-a"]);
    expect(rows.find((c) => c.id === t1 && c.proxy.startsWith("waypoint/"))).toMatchObject({ result: "denied (HTTP 403)", request: `GET ${probe}` });
    expect(rows.find((c) => c.id === own)).toMatchObject({ tunnelId: t2, result: "denied (HTTP 403)" });
    expect(proxiesWith(t2)).toEqual(["waypoint/ambient-ns/product-api-waypoint", "ztunnel/node-a"]);
    expect(proxiesWith(t3)).toEqual(["ztunnel/node-a", "ztunnel/node-b"]);
    expect(rows.filter((c) => c.id === t3).every((c) => c.result === "denied")).toBe(true);
    const text = await mesh(["describe", "pod", "ambient-ns/product-api", "--lab", prefix, "--connections", "200"], 60_000);
    expect(text.stdout).toContain(`[id ${own}, tunnel ${t2}]`);
    expect(text.stdout.split("\n").filter((l) => l.includes(`[id ${t3}]`)).length).toBe(2);
  }, 90_000);
});
