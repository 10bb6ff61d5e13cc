/**
 * `mesh explain` through the compiled binary (dist/mesh): the seed walkthrough's four answers on
 * config/mesh.yaml, in JSON and text.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBuilt, mesh, ROOT } from "./support/mod.ts";

const JWT = join(ROOT, "src", "explain", "testdata", "demo.jwt");
const base = ["explain", "--config", join(ROOT, "config", "mesh.yaml"), "--from", "ambient-ns/product-viewer-sa", "--to", "product-api.ambient-ns:8000", "--path", "/get"];

function tampered(): string {
  const [h, p, s] = readFileSync(JWT, "utf8").trim().split(".");
  const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
  claims.exp = claims.exp + 1;
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
}

describe("dist/mesh explain", () => {
  beforeAll(() => ensureBuilt());

  const rows: [string, string[], Record<string, unknown>][] = [
    ["GET /get, no token", [], { decision: "deny", status: 403, enforcedBy: "waypoint", policy: "ambient-ns/require-get-on-products" }],
    ["GET /get, demo token", ["--jwt", `@${JWT}`], { decision: "allow", status: 200, enforcedBy: "waypoint", route: { via: "default" } }],
    ["POST /get, demo token", ["--method", "POST", "--jwt", `@${JWT}`], { decision: "deny", status: 403, policy: "ambient-ns/require-get-on-products" }],
    ["GET /get, tampered token", ["--jwt", tampered()], { decision: "unauthenticated", status: 401, enforcedBy: "waypoint" }],
  ];
  for (const [name, extra, want] of rows) {
    test(name, async () => {
      const r = await mesh([...base, ...extra, "--format", "json"], 30_000);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject(want);
    });
  }

  test("text output", async () => {
    const r = await mesh(base, 30_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2\. waypoint ambient-ns\/product-api-waypoint\s+<- decides/);
    expect(r.stdout).toMatch(/decision\s+DENY \(403\)/);
  });

  test("a usage error exits 2", async () => {
    const r = await mesh(["explain", "--config", "config/mesh.yaml", "--from", "nope", "--to", "a.b:1"], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--from");
  });
});
