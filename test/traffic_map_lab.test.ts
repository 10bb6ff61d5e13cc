/**
 * See the mesh, end to end in the lab through dist/mesh: the demo's traffic (src/lab/demo.ts), then the
 * traffic map in headless Chromium (Debian's `chromium`, driven over the DevTools protocol by
 * puppeteer-core) through the relay `mesh lab up` starts on the host, and `mesh observe`.
 *
 * - the product-viewer -> product-api edge through the waypoint is drawn with mTLS, and the 403s and the
 *   401 are counted on it; a click on a denied flow shows require-get-on-products and mesh explain's
 *   reasoning; the screenshot is saved (as docs/traffic-map.png, the README's, with MESH_UPDATE_SCREENSHOT=1);
 * - `mesh observe --denied --format json` returns those flows with their trace ids;
 * - with the control role stopped, the proxies keep serving and drop their flow records with a counter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missingRoles, runDemo } from "../src/lab/mod.ts";
import type { FlowRecord } from "../src/xds/mod.ts";
import { ensureBuilt, forceDown, isRoot, MESH, mesh, ROOT, uniquePrefix } from "./support/mod.ts";

const CHROMIUM = "/usr/bin/chromium";
if (isRoot) ensureBuilt();
const missing = isRoot ? await missingRoles(MESH) : ["(not root)"];
const why = !isRoot ? "needs root" : missing.length ? `this build lacks the ${missing.join(", ")} role(s)` : !existsSync(CHROMIUM) ? `no ${CHROMIUM} (apt-get install chromium)` : "";
if (why) console.log(`test/traffic_map_lab.test.ts SKIPPED: ${why}`);

// The README's screenshot is refreshed only when asked (MESH_UPDATE_SCREENSHOT=1), so a run of the suite
// leaves the work tree as it found it.
const SHOT = process.env.MESH_UPDATE_SCREENSHOT ? join(ROOT, "docs", "traffic-map.png") : join(tmpdir(), `mesh-traffic-map-${process.pid}.png`);
const VIEWER = "ambient-ns/product-viewer";

describe.skipIf(why !== "")("the traffic map and mesh observe in the lab", () => {
  const prefix = uniquePrefix("map");
  const P = ["--prefix", prefix];
  let demoOutput = "";
  let demoOk = false;
  let status: { uiUrl?: string; uiTokenFile?: string; entries: { id: string; pid?: number; log?: string }[] };

  beforeAll(async () => {
    const demo = await runDemo({ mesh: MESH, root: ROOT, prefix, print: (t) => (demoOutput += t), settleMs: 10_000 });
    demoOk = demo.ok;
    status = JSON.parse((await mesh(["lab", "status", ...P, "--format", "json"])).stdout);
  }, 240_000);

  afterAll(async () => {
    await forceDown(prefix);
  }, 60_000);

  test("the demo ran, and the lab prints where the map is", () => {
    if (!demoOk) console.log(demoOutput);
    expect(demoOk).toBe(true);
    expect(status.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(demoOutput).toContain(`the traffic map is at ${status.uiUrl}`);
  });

  test("mesh observe --denied --format json: the demo's denials with their policy and trace ids", async () => {
    const r = await mesh(["observe", "--lab", prefix, "--denied", "--format", "json"], 30_000);
    expect(r.code).toBe(0);
    const flows = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as FlowRecord);
    const atWaypoint = flows.filter((f) => f.reporter === "waypoint" && f.dst.service === "ambient-ns/product-api");
    expect(atWaypoint.filter((f) => f.status === 403).length).toBeGreaterThanOrEqual(2);
    expect(atWaypoint.filter((f) => f.status === 401).length).toBeGreaterThanOrEqual(1);
    for (const f of atWaypoint) {
      expect(f.verdict).toBe("denied");
      expect(f.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(f.src.workload).toBe(VIEWER);
      if (f.status === 403) expect(f.policy).toBe("ambient-ns/require-get-on-products");
    }
    // The trace id is the one the waypoint logged for the request (the demo grepped for it).
    const wpLog = readFileSync(status.entries.find((e) => e.id.startsWith("waypoint/"))!.log!, "utf8");
    expect(wpLog).toContain(atWaypoint[0]!.traceId!);
  });

  test("in Chromium: the edge through the waypoint with mTLS and its denials; a denied flow shows its policy", async () => {
    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 940 });
      await page.goto(status.uiUrl!, { waitUntil: "domcontentloaded" });
      // Signed out: the sign-in page. One admin token, then the cookie does.
      await page.type("#token", readFileSync(status.uiTokenFile!, "utf8").trim());
      await Promise.all([page.waitForNavigation(), page.click("#signin")]);
      await page.waitForFunction(() => (window as unknown as { meshMap?: { ready?: boolean } }).meshMap?.ready === true, { timeout: 15_000 });
      await page.waitForFunction(() => {
        const cy = (window as unknown as { meshMap: { cy: { edges(): { length: number } } } }).meshMap.cy;
        return cy.edges().length > 0;
      }, { timeout: 15_000 });
      const edge = await page.evaluate(() => {
        const cy = (window as unknown as { meshMap: { cy: any } }).meshMap.cy;
        const e = cy.getElementById("workload:ambient-ns/product-viewer->service:ambient-ns/product-api");
        if (e.empty()) return null;
        const d = e.data("edge");
        return { ...d, color: e.style("line-color"), classes: e.classes(), drawn: e.visible(), label: e.data("label"), waypointNode: !cy.getElementById("waypoint:ambient-ns/product-api-waypoint").empty() };
      });
      expect(edge).not.toBeNull();
      expect(edge.drawn).toBe(true);
      expect(edge.waypoints).toEqual(["ambient-ns/product-api-waypoint"]);
      expect(edge.waypointNode).toBe(true);
      expect(edge.mtls).toBe(edge.flows);
      expect(edge.plaintext).toBe(0);
      expect(edge.statuses["403"]).toBeGreaterThanOrEqual(2);
      expect(edge.statuses["401"]).toBeGreaterThanOrEqual(1);
      expect(edge.deniedBy["ambient-ns/require-get-on-products"]).toBeGreaterThanOrEqual(2);
      expect(edge.label).toContain("via waypoint");
      // Denied flows on it: drawn in the denied colour.
      expect(edge.classes).toContain("denied");
      expect(edge.color).toBe("rgb(198,40,40)");

      // The flow table: a denied request at the waypoint; a click shows the policy and explain's reasoning.
      const row = await page.waitForSelector('#flows tbody tr[data-verdict="denied"][data-policy="ambient-ns/require-get-on-products"]', { timeout: 10_000 });
      await row!.click();
      await page.waitForSelector("#explain-policy", { timeout: 10_000 });
      const detail = await page.evaluate(() => ({
        policy: document.querySelector("#detail-policy")?.textContent,
        explainPolicy: document.querySelector("#explain-policy")?.textContent,
        decision: document.querySelector("#explain-decision")?.textContent,
        text: document.querySelector("#detail")?.textContent ?? "",
      }));
      expect(detail.policy).toBe("ambient-ns/require-get-on-products");
      expect(detail.explainPolicy).toBe("ambient-ns/require-get-on-products");
      expect(detail.decision).toBe("deny");
      expect(detail.text).toContain("waypoint ambient-ns/product-api-waypoint");
      await page.screenshot({ path: SHOT });
      expect(existsSync(SHOT)).toBe(true);
    } finally {
      await browser.close();
    }
  }, 60_000);

  test("with the control role stopped, the proxies keep serving and count the flow records they drop", async () => {
    const droppedAt = async (proxy: string, ip: string) => {
      const metrics = (await mesh(["lab", "exec", ...P, proxy, "--", "curl", "-s", "-m", "5", `http://${ip}:15020/metrics`])).stdout;
      return Number(/mesh_flow_records_total\{result="dropped_no_control_plane"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
    };
    const WAYPOINT = "waypoint/ambient-ns/product-api-waypoint";
    const before = { ztunnel: await droppedAt("node/node-a", "127.0.0.1"), waypoint: await droppedAt(WAYPOINT, "127.0.0.1") };
    expect(Number.isNaN(before.ztunnel) || Number.isNaN(before.waypoint)).toBe(false);
    const control = status.entries.find((e) => e.id === "control")!;
    process.kill(control.pid!, "SIGKILL");
    const curl = ["lab", "exec", ...P, VIEWER, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"];
    let code = "";
    let after = before;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      code = (await mesh([...curl, "http://product-api:8000/get"])).stdout.trim();
      after = { ztunnel: await droppedAt("node/node-a", "127.0.0.1"), waypoint: await droppedAt(WAYPOINT, "127.0.0.1") };
      if (code === "403" && after.ztunnel > before.ztunnel && after.waypoint > before.waypoint) break;
      await Bun.sleep(500);
    }
    // Served as before (the waypoint still denies without a token); both proxies dropped and counted the records.
    expect(code).toBe("403");
    expect(after.ztunnel).toBeGreaterThan(before.ztunnel);
    expect(after.waypoint).toBeGreaterThan(before.waypoint);
  }, 60_000);
});
