/**
 * `mesh observe` against a real control role: the table, JSON lines, filters, and --follow printing flows
 * as the proxies report them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { client, meshYaml, tempDir, writeMesh } from "../../control/_test_env.ts";
import { startTestControl, type TestControl, waitFor } from "../../../test/support/mod.ts";
import type { FlowRecord, XdsClient } from "../../xds/mod.ts";
import { parseArgs } from "../args.ts";
import { observe } from "./observe.ts";

function flow(verdict: FlowRecord["verdict"], traceId: string, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    time: Date.now(),
    proxy: "x",
    reporter: "waypoint",
    l7: true,
    src: { workload: "default/client", namespace: "default", identity: "spiffe://cluster.local/ns/default/sa/client" },
    dst: { workload: "default/server", namespace: "default", service: "default/server", port: 80 },
    waypoint: "default/wp",
    method: "GET",
    path: "/admin",
    status: verdict === "denied" ? 403 : 200,
    bytesIn: 1,
    bytesOut: 2,
    durationMs: 3,
    verdict,
    policy: verdict === "denied" ? "default/no-admin" : undefined,
    mtls: true,
    traceId,
    ...over,
  };
}

describe("mesh observe", () => {
  const t = tempDir();
  let tc: TestControl;
  let proxy: XdsClient;
  const run = async (...argv: string[]) => {
    let out = "", err = "";
    const code = await observe.run(parseArgs([...argv, "--data-dir", join(t.dir, "data"), "--control-plane", tc.address], observe, {}), {
      stdout: (s) => void (out += s),
      stderr: (s) => void (err += s),
    });
    return { code, out, err };
  };

  beforeAll(async () => {
    writeMesh(t.dir, meshYaml());
    tc = await startTestControl(t.dir);
    proxy = await client({ address: tc.address, dir: t.dir }, { kind: "waypoint", namespace: "default", name: "wp" });
    await proxy.start();
    await waitFor("the proxy's session", () => proxy.connected);
    expect(await proxy.reportFlows({
      flows: [flow("allowed", "1".repeat(32)), flow("denied", "2".repeat(32)), flow("denied", "3".repeat(32), { src: { workload: "other/x", namespace: "other" } })],
      dropped: 0,
    })).toBe(true);
  });
  afterAll(async () => {
    await proxy?.stop();
    await tc?.handle.stop();
    t.cleanup();
  });

  test("--denied --format json: one flow per line, each with its policy and trace id", async () => {
    const r = await run("--denied", "--format", "json");
    expect(r.code).toBe(0);
    const flows = r.out.trim().split("\n").map((l) => JSON.parse(l) as FlowRecord);
    expect(flows.map((f) => [f.traceId, f.policy, f.proxy])).toEqual([
      ["2".repeat(32), "default/no-admin", "waypoint/default/wp"],
      ["3".repeat(32), "default/no-admin", "waypoint/default/wp"],
    ]);
  });

  test("the table, filtered by source and namespace", async () => {
    const r = await run("--from", "default/client");
    expect(r.out.split("\n")[0]).toMatch(/^TIME\s+PROXY\s+SOURCE\s+DESTINATION/);
    const rows = r.out.trim().split("\n").slice(1);
    expect(rows.length).toBe(2);
    expect(rows[1]).toMatch(/waypoint\/default\/wp\s+default\/client\s+default\/server:80\s+GET \/admin 403\s+DENIED\s+mTLS\s+default\/no-admin 2{32}/);
    expect((await run("--namespace", "other", "--format", "json")).out.trim().split("\n").length).toBe(1);
    await expect(run("--since", "nonsense")).rejects.toThrow(/--since must be a duration/);
  }, 10_000);

  test("--follow prints each flow as it is reported, until the stream ends", async () => {
    let out = "";
    const done = observe.run(parseArgs(["--follow", "--denied", "--format", "json", "--data-dir", join(t.dir, "data"), "--control-plane", tc.address], observe, {}), {
      stdout: (s) => void (out += s),
      stderr: () => {},
    });
    await waitFor("the recent denials", () => out.includes("3".repeat(32)));
    expect(await proxy.reportFlows({ flows: [flow("denied", "4".repeat(32)), flow("allowed", "5".repeat(32))], dropped: 0 })).toBe(true);
    await waitFor("the new denial", () => out.includes("4".repeat(32)));
    expect(out).not.toContain("5".repeat(32));
    await tc.handle.stop();
    expect(await done).toBe(0);
  });
});
