/**
 * The ztunnel with a waypoint, in the lab built from config/mesh.yaml (the seed walkthrough): traffic to
 * the Service goes through the waypoint (which enforces the JWT policy), and a client that dials the pod
 * directly, bypassing the waypoint, is refused by the destination ztunnel (HBONE 401), fail closed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBuilt, forceDown, isRoot, mesh, ROOT, uniquePrefix } from "./lab_helpers.ts";
import { curl, eventually, labInfo, type LabInfo, metricValue, nodeOf, podNetns } from "./ztunnel_helpers.ts";

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
    await eventually("destination report from the waypoint", async () =>
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
    await eventually("the refusal at node-b", async () => (await metricValue(nodeB, "istio_tcp_connections_closed_total", denied)) > before);
    const logB = readFileSync(info.processes.find((p) => p.id === "ztunnel/node-b")!.log, "utf8");
    expect(logB).toContain("did not come through it (bypass refused)");
    expect(await metricValue(nodeA, "istio_tcp_connections_closed_total", { reporter: "source", source_principal: VIEWER, response_flags: "DENY" })).toBeGreaterThanOrEqual(1);
    const logA = readFileSync(info.processes.find((p) => p.id === "ztunnel/node-a")!.log, "utf8");
    expect(logA).toContain("answered 401");
  });
});
