import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { parseArgs } from "../args.ts";
import { explain } from "./explain.ts";

const ROOT = join(import.meta.dir, "..", "..", "..");
const CONFIG = join(ROOT, "config", "mesh.yaml");
const JWT_FILE = join(ROOT, "src", "explain", "testdata", "demo.jwt");

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const code = await explain.run(parseArgs(argv, explain, {}), { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

const base = ["--config", CONFIG, "--from", "ambient-ns/product-viewer-sa", "--to", "product-api.ambient-ns:8000", "--path", "/get"];

describe("mesh explain on config/mesh.yaml (the Foundation answers)", () => {
  const tampered = (() => {
    const [h, p, s] = readFileSync(JWT_FILE, "utf8").trim().split(".");
    const c = JSON.parse(Buffer.from(p!, "base64url").toString());
    c.foo = "baz";
    return `${h}.${Buffer.from(JSON.stringify(c)).toString("base64url")}.${s}`;
  })();
  const cases: [string, string[], Record<string, unknown>][] = [
    ["no token: denied at the waypoint", [], { decision: "deny", status: 403, enforcedBy: "waypoint", policy: "ambient-ns/require-get-on-products" }],
    ["demo token: allowed", ["--jwt", `@${JWT_FILE}`], { decision: "allow", status: 200, enforcedBy: "waypoint", backend: { service: "ambient-ns/product-api" } }],
    ["POST with the token: denied", ["--jwt", `@${JWT_FILE}`, "--method", "POST"], { decision: "deny", status: 403, policy: "ambient-ns/require-get-on-products" }],
    ["tampered token: unauthenticated", ["--jwt", tampered], { decision: "unauthenticated", status: 401, enforcedBy: "waypoint" }],
  ];
  for (const [name, extra, want] of cases) {
    test(name, async () => {
      const r = await run([...base, ...extra, "--format", "json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject(want);
    });
  }
  test("text is the default format", async () => {
    const r = await run(base);
    expect(r.out).toMatch(/decision\s+DENY \(403\)/);
    expect(r.out).toMatch(/policy\s+ambient-ns\/require-get-on-products/);
  });
  test("usage errors name the flag", async () => {
    await expect(run(["--from", "a/b", "--to", "c.d:1"])).rejects.toThrow(/--config/);
    await expect(run([...base, "--format", "yaml"])).rejects.toThrow(/format/);
    await expect(run([...base, "--jwt", "@/nonexistent/token"])).rejects.toThrow(/token file/);
  });
});

describe("mesh explain on config/mesh-no-waypoint.yaml", () => {
  test("denied at the ztunnel, and the warning says the control role serves it (fail-closed), not that it is refused", async () => {
    const noWp = join(ROOT, "config", "mesh-no-waypoint.yaml");
    const r = await run(["--config", noWp, "--from", "ambient-ns/product-viewer-sa", "--to", "product-api.ambient-ns:8000", "--path", "/get", "--format", "json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.decision).toBe("deny");
    expect(j.warnings[0]).toContain("the control role serves it");
    expect(j.warnings.join("\n")).toContain("l7-without-waypoint");
  });
});
