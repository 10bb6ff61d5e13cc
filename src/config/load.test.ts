import { describe, expect, test } from "bun:test";
import { formatDiagnostic, hasErrors, parseConfig } from "./mod.ts";

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
