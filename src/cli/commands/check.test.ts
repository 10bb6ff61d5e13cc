import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MeshError } from "../../core/mod.ts";
import { parseArgs } from "../args.ts";
import { check } from "./check.ts";

const repo = join(import.meta.dir, "..", "..", "..");

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await check.run(parseArgs(argv, check, {}), { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe("mesh check", () => {
  test("config/mesh.yaml passes clean: exit 0 and a summary line", async () => {
    const r = await run(join(repo, "config/mesh.yaml"));
    expect(r.code).toBe(0);
    expect(r.out).toBe("0 errors, 0 warnings\n");
  });

  test("text: file:line:col: severity: message [rule], sorted, then the summary; exit 1 on errors", async () => {
    const fixture = join(repo, "src/config/testdata/article.yaml");
    const r = await run(fixture);
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("4 errors, 3 warnings");
    const body = lines.slice(0, -1);
    expect(body.length).toBe(7);
    for (const l of body) expect(l).toMatch(/^.+:\d+:\d+: (error|warning): .+ \[[a-z0-9-]+\]$/);
    expect(body[0]).toStartWith(`${fixture}:21:7: warning: Deployment is ignored`);
    expect(body[3]).toStartWith(`${fixture}:109:9: error: AuthorizationPolicy ambient-ns/require-get-on-products uses L7 attributes`);
    const positions = body.map((l) => l.slice(fixture.length + 1).split(":").slice(0, 2).map(Number));
    const sorted = [...positions].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
    expect(positions).toEqual(sorted);
  });

  test("json: diagnostics with file, line, col, severity, message, rule, and the counts", async () => {
    const r = await run("--format", "json", join(repo, "config/mesh-no-waypoint.yaml"));
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc)).toEqual(["diagnostics", "errors", "warnings"]);
    expect(doc.errors).toBe(1);
    expect(doc.warnings).toBe(1);
    const l7 = doc.diagnostics.find((d: { rule: string }) => d.rule === "l7-without-waypoint");
    expect(Object.keys(l7).sort()).toEqual(["col", "file", "line", "message", "rule", "severity"]);
    expect(l7).toMatchObject({ file: join(repo, "config/mesh-no-waypoint.yaml"), severity: "error" });
    expect(l7.line).toBeGreaterThan(0);
  });

  test("several files and directories form one configuration", async () => {
    const r = await run(join(repo, "config/mesh.yaml"), join(repo, "src/config/testdata/rules/gateway-class.yaml"));
    expect(r.code).toBe(0);
    expect(r.out).toEndWith("0 errors, 1 warning\n");
  });

  test("a YAML syntax error is reported at its position, not thrown", async () => {
    const r = await run(join(repo, "src/config/testdata/rules/yaml-syntax.yaml"));
    expect(r.code).toBe(1);
    expect(r.out).toContain("yaml-syntax.yaml:5:45: error: YAML syntax:");
  });

  test("usage errors: no file, unknown format (exit 2 through main)", async () => {
    for (const argv of [[], ["--format", "xml", "config/mesh.yaml"]]) {
      let err: unknown;
      try {
        await run(...argv);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MeshError);
      expect((err as MeshError).code).toBe("MESH_USAGE");
    }
  });

  test("a missing file is a clear error", async () => {
    let err: unknown;
    try {
      await run("/nonexistent/mesh.yaml");
    } catch (e) {
      err = e;
    }
    expect((err as MeshError).code).toBe("MESH_CONFIG_NOT_FOUND");
  });
});
