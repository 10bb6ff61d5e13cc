/**
 * Bad input never crashes the loader: every fixture, cut and garbled at pseudo-random places (a fixed
 * seed, so failures reproduce), still returns a model and diagnostics with positions inside the file.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { modelFromObjects, parseConfig } from "./mod.ts";

const dir = join(import.meta.dir, "testdata");
const texts = [
  ...readdirSync(join(dir, "rules")).map((n) => readFileSync(join(dir, "rules", n), "utf8")),
  readFileSync(join(dir, "article.yaml"), "utf8"),
  readFileSync(join(import.meta.dir, "..", "..", "config", "mesh.yaml"), "utf8"),
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const JUNK = [":", "- ", "{", "}", "[", "]", "\t", "&a ", "*a", "!!binary ", "\"", "'", "\n  ", "null", "~", "<<: *a", "0x", "---\n", "\u00a0"];

test("garbled configurations give diagnostics, never an exception", () => {
  const rand = rng(20260127);
  let runs = 0;
  for (const text of texts) {
    for (let i = 0; i < 12; i++) {
      let t = text;
      const edits = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rand() * t.length);
        const r = rand();
        if (r < 0.3) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(rand() * 8));
        else if (r < 0.8) t = t.slice(0, at) + JUNK[Math.floor(rand() * JUNK.length)] + t.slice(at);
        else t = t.slice(0, at);
      }
      const lines = t.split("\n").length;
      const res = parseConfig([{ path: "f.yaml", text: t }]);
      for (const d of res.diagnostics) {
        expect(d.line).toBeGreaterThanOrEqual(1);
        expect(d.line).toBeLessThanOrEqual(lines + 1);
        expect(d.col).toBeGreaterThanOrEqual(1);
      }
      JSON.stringify(res.model);
      runs++;
    }
  }
  expect(runs).toBe(texts.length * 12);
});

test("odd values where objects are expected are diagnostics", () => {
  const odd: unknown[] = [null, 5, "x", [], [1], { kind: 7 }, { kind: "Pod" }, { apiVersion: "v1", kind: "Pod", metadata: null }, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "s" },
    spec: { ports: "80" },
  }];
  const r = modelFromObjects(odd);
  expect(r.diagnostics.length).toBeGreaterThanOrEqual(odd.length);
  expect(r.diagnostics.every((d) => d.severity === "error")).toBe(true);
  const y = parseConfig([{ path: "a.yaml", text: "a: &x [*x]\n---\n!!binary AAAA\n---\n42\n---\n[1, 2]\n" }]);
  expect(y.diagnostics.length).toBeGreaterThan(0);
});
