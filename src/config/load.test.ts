import { describe, expect, test } from "bun:test";
import { blockingErrors, formatDiagnostic, hasErrors, parseConfig } from "./mod.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const at = (text: string) => parseConfig([{ path: "m.yaml", text }]);

describe("parseConfig basics", () => {
  test("an empty configuration is a default model with no diagnostics", () => {
    const r = at("");
    expect(r.diagnostics).toEqual([]);
    expect(r.model.meshConfig.trustDomain).toBe("cluster.local");
  });

  test("formatDiagnostic prints file:line:col: severity: message [rule]", () => {
    expect(formatDiagnostic({ file: "a.yaml", line: 3, col: 5, severity: "error", message: "boom", rule: "x" }))
      .toBe("a.yaml:3:5: error: boom [x]");
    expect(hasErrors([{ file: "a", line: 1, col: 1, severity: "warning", message: "", rule: "r" }])).toBe(false);
  });
});

test("an L7 policy with no waypoint is an error for mesh check but not a reason to refuse the configuration", () => {
  const file = join(import.meta.dir, "../../config/mesh-no-waypoint.yaml");
  const r = parseConfig([{ path: file, text: readFileSync(file, "utf8") }]);
  expect(r.diagnostics.some((d) => d.severity === "error" && d.rule === "l7-without-waypoint")).toBe(true);
  expect(blockingErrors(r.diagnostics)).toEqual([]);
  const bad = parseConfig([{ path: "x.yaml", text: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec: {bogus: 1}\n" }]);
  expect(blockingErrors(bad.diagnostics).map((d) => d.rule)).toContain("unknown-field");
});
