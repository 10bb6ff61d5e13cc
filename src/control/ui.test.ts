/**
 * The traffic map's server without sockets (hono's app.request): sign-in with an admin token and the
 * cookie it gives, the guard on every data endpoint, the graph and flows, and a denied flow explained.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../config/mod.ts";
import type { Caller } from "../identity/mod.ts";
import type { FlowRecord } from "../xds/mod.ts";
import { FlowStore } from "./flows.ts";
import { explainQueryOf, uiApp } from "./ui.ts";

const ROOT = join(import.meta.dir, "..", "..");
const { model } = parseConfig([{ path: "mesh.yaml", text: readFileSync(join(ROOT, "config", "mesh.yaml"), "utf8") }]);

const denied: FlowRecord = {
  time: Date.now(),
  proxy: "waypoint/ambient-ns/product-api-waypoint",
  reporter: "waypoint",
  l7: true,
  src: { workload: "ambient-ns/product-viewer", namespace: "ambient-ns", identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", address: "10.244.1.10" },
  dst: { workload: "ambient-ns/product-api", namespace: "ambient-ns", service: "ambient-ns/product-api", port: 8000, address: "10.96.0.20" },
  waypoint: "ambient-ns/product-api-waypoint",
  method: "GET",
  path: "/get",
  status: 403,
  bytesIn: 80,
  bytesOut: 19,
  durationMs: 0.4,
  verdict: "denied",
  reason: "no ALLOW policy matched (ambient-ns/require-get-on-products)",
  policy: "ambient-ns/require-get-on-products",
  mtls: true,
  traceId: "c".repeat(32),
};

function setup() {
  const flows = new FlowStore();
  flows.ingest({ flows: [denied, { ...denied, status: 200, verdict: "allowed", policy: undefined, reason: undefined, traceId: "d".repeat(32) }], dropped: 0 }, denied.proxy);
  const verifyToken = async (t: string): Promise<Caller> => {
    if (t === "admin-token") return { kind: "admin" };
    if (t === "node-token") return { kind: "node", node: "node-a" };
    throw new Error("bad token");
  };
  return { flows, app: uiApp({ flows, model: () => model, verifyToken }) };
}

describe("the traffic map server", () => {
  test("without a credential: the sign-in page, and every data endpoint refuses", async () => {
    const { app } = setup();
    const page = await app.request("/");
    expect(await page.text()).toContain('action="/login"');
    for (const p of ["/api/graph", "/api/flows", "/api/flows/stream", "/api/flows/1/explain"]) {
      expect((await app.request(p)).status).toBe(401);
    }
    // The page's code is public (it holds no data).
    const lib = await app.request("/assets/cytoscape.mjs");
    expect(lib.status).toBe(200);
    expect((await lib.text()).length).toBeGreaterThan(100_000);
  });

  test("sign-in: an admin token gives a session cookie; a node's token or garbage does not", async () => {
    const { app } = setup();
    for (const token of ["node-token", "garbage", ""]) {
      const r = await app.request("/login", { method: "POST", body: new URLSearchParams({ token }) });
      expect(r.status).toBe(401);
      expect(r.headers.get("set-cookie")).toBeNull();
    }
    const r = await app.request("/login", { method: "POST", body: new URLSearchParams({ token: "admin-token" }) });
    expect(r.status).toBe(303);
    const cookie = r.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^mesh_session=[A-Za-z0-9_-]{40,}; HttpOnly; SameSite=Strict/);
    const session = cookie.split(";")[0]!;
    expect(await (await app.request("/", { headers: { cookie: session } })).text()).toContain('id="map"');
    expect((await app.request("/api/graph", { headers: { cookie: session } })).status).toBe(200);
    expect((await app.request("/api/graph", { headers: { cookie: "mesh_session=forged-forged-forged-forged-forged-forged" } })).status).toBe(401);
    const out = await app.request("/logout", { method: "POST", headers: { cookie: session } });
    expect(out.status).toBe(303);
    expect((await app.request("/api/graph", { headers: { cookie: session } })).status).toBe(401);
  });

  test("graph, flows with filters, and a denied flow explained: the policy and mesh explain's reasoning", async () => {
    const { app } = setup();
    const auth = { authorization: "Bearer admin-token" };
    const g = await (await app.request("/api/graph?window=1m", { headers: auth })).json() as { edges: { denied: number; statuses: Record<string, number> }[] };
    expect(g.edges[0]).toMatchObject({ denied: 1, statuses: { "403": 1, "200": 1 } });
    expect((await app.request("/api/graph?window=7m", { headers: auth })).status).toBe(400);
    const flows = await (await app.request("/api/flows?verdict=denied&workload=product-api", { headers: auth })).json() as { flows: FlowRecord[] };
    expect(flows.flows.map((f) => f.traceId)).toEqual(["c".repeat(32)]);
    expect(((await (await app.request("/api/flows?workload=other", { headers: auth })).json()) as { flows: FlowRecord[] }).flows).toEqual([]);
    const x = await (await app.request(`/api/flows/${flows.flows[0]!.id}/explain`, { headers: auth })).json() as {
      explanation: { decision: string; policy: string; enforcedBy: string; reason: string };
      query: unknown;
    };
    expect(x.query).toEqual({ from: { kind: "identity", namespace: "ambient-ns", serviceAccount: "product-viewer-sa" }, to: { kind: "service", namespace: "ambient-ns", name: "product-api", port: 8000 }, method: "GET", path: "/get" });
    expect(x.explanation).toMatchObject({ decision: "deny", policy: "ambient-ns/require-get-on-products", enforcedBy: "waypoint" });
  });

  test("an L4 flow is explained by the address and port it reached", () => {
    expect(explainQueryOf({ ...denied, l7: false, dst: { address: "10.244.2.20", port: 80, service: "ambient-ns/product-api" } })).toEqual({
      from: { kind: "identity", namespace: "ambient-ns", serviceAccount: "product-viewer-sa" },
      to: { kind: "address", address: "10.244.2.20", port: 80 },
    });
  });
});
