import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigError, ConfigSource, type ConfigUpdate } from "./config_source.ts";
import { replaceFile, waitFor } from "../../test/support/mod.ts";

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    istio.io/dataplane-mode: ambient\n`;
let ip = 0;
const pod = (name: string, ns: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n  nodeName: n1\n  serviceAccountName: default\n  containers:\n  - name: c\nstatus:\n  podIP: 10.0.${ip >> 8}.${(ip++ & 255) + 1}\n`;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

function setup(files: Record<string, string>, opts: { pollMs?: number; debounceMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "mesh-config-source-"));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  const updates: ConfigUpdate[] = [];
  const errors: ConfigError[] = [];
  const src = new ConfigSource({
    path: dir,
    debounceMs: opts.debounceMs ?? 20,
    pollMs: opts.pollMs ?? 0,
    onUpdate: (u) => updates.push(u),
    onError: (e) => errors.push(e),
  });
  cleanup.push(() => {
    src.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, src, updates, errors };
}

describe("ConfigSource (a directory of *.yaml files)", () => {
  test("every *.yaml is one configuration; a change re-reads only the changed file", async () => {
    const { dir, src, updates } = setup({ "a.yaml": ns("a") + "---\n" + pod("p1", "a"), "b.yaml": ns("b") + "---\n" + pod("p2", "b"), "notes.txt": "ignored" });
    await src.start();
    expect(updates.length).toBe(1);
    expect(updates[0]!.model.workloads.map((w) => w.name).sort()).toEqual(["p1", "p2"]);
    expect(src.stats.parses).toBe(2);
    const reads = src.stats.reads;
    replaceFile(join(dir, "a.yaml"), ns("a") + "---\n" + pod("p1", "a") + "---\n" + pod("p3", "a"));
    await waitFor("update", () => updates.length === 2, 5000);
    expect(updates[1]!.model.workloads.map((w) => w.name).sort()).toEqual(["p1", "p2", "p3"]);
    expect(src.stats.parses).toBe(3);
    expect(src.stats.reads - reads).toBe(1);
    expect(updates[1]!.changeStartedAt).toBeLessThanOrEqual(Date.now());
  });

  test("added and removed files", async () => {
    const { dir, src, updates } = setup({ "a.yaml": ns("a") + "---\n" + pod("p1", "a") });
    await src.start();
    replaceFile(join(dir, "c.yaml"), ns("c") + "---\n" + pod("p9", "c"));
    await waitFor("added", () => updates.at(-1)!.model.workloads.length === 2, 5000);
    unlinkSync(join(dir, "c.yaml"));
    await waitFor("removed", () => updates.at(-1)!.model.workloads.length === 1, 5000);
    expect(updates.at(-1)!.model.namespaces.map((n) => n.name)).toEqual(["a"]);
  });

  test("an invalid file keeps the last good model and reports file:line:col", async () => {
    const { dir, src, updates, errors } = setup({ "a.yaml": ns("a") });
    await src.start();
    replaceFile(join(dir, "a.yaml"), ns("a") + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: a\nspec:\n  nodeNam: n1\n");
    await waitFor("error", () => errors.length === 1, 5000);
    const d = errors[0]!.diagnostics.find((x) => x.severity === "error")!;
    expect(d.file).toBe(join(dir, "a.yaml"));
    expect(d.line).toBeGreaterThanOrEqual(8);
    expect(d.col).toBeGreaterThan(0);
    expect(src.lastError).toBeDefined();
    expect(src.lastGood?.namespaces.map((n) => n.name)).toEqual(["a"]);
    expect(updates.length).toBe(1);
    replaceFile(join(dir, "a.yaml"), ns("a") + "---\n" + pod("ok", "a"));
    await waitFor("fixed", () => updates.length === 2, 5000);
    expect(src.lastError).toBeUndefined();
  });

  test("an L7 policy with no waypoint is served (the ztunnel fails closed), not refused in favour of the last good one", async () => {
    const { dir, src, updates, errors } = setup({ "a.yaml": ns("a") + "---\n" + pod("api", "a") });
    await src.start();
    expect(updates.length).toBe(1);
    const l7 = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: get-only\n  namespace: a\n" +
      "spec:\n  action: ALLOW\n  rules:\n  - to:\n    - operation:\n        methods: [GET]\n";
    replaceFile(join(dir, "a.yaml"), ns("a") + "---\n" + pod("api", "a") + "---\n" + l7);
    await waitFor("update", () => updates.length === 2, 5000);
    expect(errors.length).toBe(0);
    expect(src.lastGood?.authorizationPolicies.map((p) => p.name)).toEqual(["get-only"]);
    expect(src.warnings.some((d) => d.severity === "error" && d.rule === "l7-without-waypoint")).toBe(true);
  });

  test("a burst of saves is debounced into few reloads", async () => {
    const { dir, src, updates } = setup({ "a.yaml": ns("a") }, { debounceMs: 100 });
    await src.start();
    for (let i = 0; i < 10; i++) replaceFile(join(dir, "a.yaml"), ns("a") + "---\n" + pod(`p${"x".repeat(i + 1)}`, "a"));
    await waitFor("settled", () => updates.at(-1)!.model.workloads[0]?.name === "pxxxxxxxxxx", 5000);
    expect(updates.length).toBeLessThanOrEqual(3);
  });

  test("polling notices a change even without file events", async () => {
    const file = setup({ "a.yaml": ns("a") });
    // A single-file source without a watcher: only the poll can see the change.
    const updates: ConfigUpdate[] = [];
    const src = new ConfigSource({ path: join(file.dir, "a.yaml"), watch: false, pollMs: 50, debounceMs: 10, onUpdate: (u) => updates.push(u), onError: () => {} });
    cleanup.push(() => src.close());
    await src.start();
    await Bun.sleep(20);
    writeFileSync(join(file.dir, "a.yaml"), ns("a") + "---\n" + pod("late", "a"));
    await waitFor("poll", () => updates.at(-1)?.model.workloads.length === 1, 5000);
  });
});
