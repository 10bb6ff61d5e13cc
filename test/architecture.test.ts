/**
 * The architecture rules of docs/design.md, checked on every run of the suite. The checker is a pure
 * function over {path: source}; it runs on the repository and on small planted trees, so each rule is
 * shown to fail on the violation it exists for.
 *
 * Rules:
 * - door: another folder is entered only through its `mod.ts`;
 * - private: a `_name.ts` file is imported only from its own folder; `_test_*.ts` (test support) also from tests;
 * - layer: a folder of src/ imports only folders of lower layers (the table below), so roles never import roles;
 * - pure: config, model, policy and route use no I/O or runtime API (node:fs, node:net, Bun., Deno., fetch);
 * - cycle: no import cycle between files, nor between folders;
 * - path: no absolute machine path (and no climb out of the repository) in src/ or test/;
 * - test support: tests reach roles other than their own only through test/support.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** The layers of src/, lowest first. A folder imports only folders of a lower layer. */
export const LAYERS: string[][] = [
  ["core"],
  ["model", "telemetry", "stream", "dns"],
  ["config", "policy", "route", "hbone"],
  ["platform", "identity", "admin", "xds"],
  ["explain", "describe", "kube", "proxy"],
  ["control", "ztunnel", "waypoint", "lab"],
  ["cli"],
];
const ROLES = new Set(["control", "ztunnel", "waypoint", "lab"]);
const PURE = new Set(["config", "model", "policy", "route"]);

export interface Violation {
  rule: "door" | "private" | "layer" | "pure" | "cycle" | "path" | "unknown-folder";
  file: string;
  detail: string;
}

interface Import {
  spec: string;
  typeOnly: boolean;
  line: number;
}

/** Static imports, re-exports and dynamic imports with a literal specifier. */
function importsOf(source: string): Import[] {
  const out: Import[] = [];
  const lineAt = (i: number) => source.slice(0, i).split("\n").length;
  const code = source.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " ")).replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
  const stat = /^\s*(import|export)\s+(type\s+)?([^;'"`]*?\bfrom\s+)?["']([^"']+)["']/gm;
  for (let m; (m = stat.exec(code));) {
    if (m[1] === "export" && !m[3]) continue;
    out.push({ spec: m[4]!, typeOnly: Boolean(m[2]), line: lineAt(m.index) });
  }
  const dyn = /\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (let m; (m = dyn.exec(code));) out.push({ spec: m[1]!, typeOnly: false, line: lineAt(m.index) });
  return out;
}

/** Tests, test support and benchmarks (which measure with the tests' tools). */
const isTest = (path: string) => /\.test\.ts$/.test(path) || /^(test|bench)\//.test(path) || /(^|\/)_test_[^/]*\.ts$/.test(path);
/** Helpers in test/ (not themselves tests) and `_test_*.ts` files beside the code. */
const isTestSupport = (path: string) => (path.startsWith("test/") && !path.endsWith(".test.ts")) || /(^|\/)_test_[^/]*\.ts$/.test(path);
/** The folder of src/ a file belongs to ("src/ztunnel/capture/rules.ts" -> "ztunnel"), or test, bench. */
const srcFolder = (path: string) => (path.startsWith("src/") ? path.split("/")[1]! : undefined);
const topFolder = (path: string) => (path.startsWith("src/") ? path.split("/")[1]! : path.includes("/") ? `/${path.split("/")[0]}` : undefined);
const layerOf = (folder: string) => LAYERS.findIndex((l) => l.includes(folder));

/** Checks a tree given as repository-relative path -> source. */
export function checkArchitecture(files: Map<string, string>): Violation[] {
  const out: Violation[] = [];
  const edges = new Map<string, Set<string>>();
  const folderEdges = new Map<string, Set<string>>();
  for (const folder of new Set([...files.keys()].map(srcFolder).filter((f): f is string => Boolean(f)))) {
    if (layerOf(folder) < 0) out.push({ rule: "unknown-folder", file: `src/${folder}`, detail: `src/${folder} is in no layer: add it to docs/design.md and LAYERS` });
  }
  for (const [file, source] of files) {
    const from = dirname(file);
    const fromTop = topFolder(file);
    const fromSrc = srcFolder(file);
    const test = isTest(file);
    const at = (i: Import) => `${file}:${i.line}`;
    for (const imp of importsOf(source)) {
      if (!imp.spec.startsWith(".")) {
        if (fromSrc && PURE.has(fromSrc) && !test && (/^(node:|bun$|bun:)/.test(imp.spec) || ["fs", "net", "tls", "dgram", "child_process"].includes(imp.spec))) {
          out.push({ rule: "pure", file: at(imp), detail: `${fromSrc}/ does no I/O, but imports "${imp.spec}"` });
        }
        continue;
      }
      const target = normalize(join(from, imp.spec));
      if (!target.endsWith(".ts")) continue;
      if (target.startsWith("..")) {
        out.push({ rule: "path", file: at(imp), detail: `imports "${imp.spec}" from outside the repository` });
        continue;
      }
      const toDir = dirname(target);
      const toTop = topFolder(target);
      const toSrc = srcFolder(target);
      const base = target.slice(toDir.length + 1);
      if (!imp.typeOnly) (edges.get(file) ?? edges.set(file, new Set()).get(file)!).add(target);

      // door: another top folder is entered through src/X/mod.ts; inside one, a subfolder through its
      // mod.ts, while going up to an enclosing folder is free (a subfolder is part of its parent).
      const sameTop = fromTop !== undefined && fromTop === toTop;
      const upward = sameTop && (from === toDir || from.startsWith(`${toDir}/`));
      const door = toSrc && !sameTop ? `src/${toSrc}/mod.ts` : `${toDir}/mod.ts`;
      const through = toSrc && !sameTop ? target === door : upward || base === "mod.ts";
      if (!through && !(test && isTestSupport(target))) {
        out.push({ rule: "door", file: at(imp), detail: `imports ${target}: enter through ${door}` });
      }
      // private: _name.ts belongs to its folder.
      if (base.startsWith("_") && toDir !== from && !(base.startsWith("_test_") && test)) {
        out.push({ rule: "private", file: at(imp), detail: `imports ${target}, private to ${toDir}/` });
      }
      // layer: downward only; roles never import roles (tests included: they use test/support).
      if (fromSrc && toSrc && fromSrc !== toSrc) {
        if (ROLES.has(fromSrc) && ROLES.has(toSrc) && !isTestSupport(file)) {
          out.push({ rule: "layer", file: at(imp), detail: `role ${fromSrc} imports role ${toSrc}: move what they share down a layer` });
        } else if (!test && layerOf(toSrc) >= layerOf(fromSrc)) {
          out.push({ rule: "layer", file: at(imp), detail: `${fromSrc} (layer ${layerOf(fromSrc)}) imports ${toSrc} (layer ${layerOf(toSrc)}): imports go downward` });
        }
        if (!test) (folderEdges.get(fromSrc) ?? folderEdges.set(fromSrc, new Set()).get(fromSrc)!).add(toSrc);
      }
    }
    if (fromSrc && PURE.has(fromSrc) && !test) {
      const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      const api = code.match(/\b(Bun|Deno)\.\w+|(?<![.\w])fetch\(/);
      if (api) out.push({ rule: "pure", file: file, detail: `${fromSrc}/ does no I/O, but uses ${api[0]}` });
    }
    if (file.startsWith("src/") || file.startsWith("test/")) {
      const abs = source.match(/["'`](\/(?:work|home|root|Users)\/[^"'`\s]*)/);
      if (abs) out.push({ rule: "path", file, detail: `absolute machine path ${abs[1]}: derive it from the repository (import.meta.dir) or a flag` });
      const out_ = source.match(/["'`][^"'`\n]*\.\.\/shared\/[^"'`\n]*/);
      if (out_) out.push({ rule: "path", file, detail: `path out of the repository ${out_[0].slice(1)}: keep the data in testdata/` });
    }
  }
  for (const cycle of cycles(edges)) out.push({ rule: "cycle", file: cycle[0]!, detail: `import cycle: ${cycle.join(" -> ")}` });
  for (const cycle of cycles(folderEdges)) out.push({ rule: "cycle", file: `src/${cycle[0]}`, detail: `folder cycle: ${cycle.join(" -> ")}` });
  return out;
}

/** One cycle per strongly connected component (Tarjan), each as a closed path. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n), low.set(v, n++), stack.push(v), on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) visit(w), low.set(v, Math.min(low.get(v)!, low.get(w)!));
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    for (let w; (w = stack.pop()!) !== v;) on.delete(w), scc.push(w);
    on.delete(v), scc.push(v);
    if (scc.length > 1 || graph.get(v)?.has(v)) out.push(pathIn(graph, new Set(scc), v));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** A closed path from v back to v inside one component, for the message. */
function pathIn(graph: Map<string, Set<string>>, scc: Set<string>, v: string): string[] {
  const prev = new Map<string, string>([[v, ""]]);
  const queue = [v];
  while (queue.length) {
    const u = queue.shift()!;
    for (const w of graph.get(u) ?? []) {
      if (!scc.has(w)) continue;
      if (w === v) {
        const path = [v];
        for (let x = u; x !== v; x = prev.get(x)!) path.splice(1, 0, x);
        return [...path, v];
      }
      if (!prev.has(w)) prev.set(w, u), queue.push(w);
    }
  }
  return [v, v];
}

const root = join(import.meta.dir, "..");

function repositoryFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const top of ["src", "test", "bench"]) {
    for (const f of readdirSync(join(root, top), { recursive: true })) {
      const path = `${top}/${String(f)}`;
      if (path.endsWith(".ts") && !path.includes("node_modules")) files.set(path, readFileSync(join(root, path), "utf8"));
    }
  }
  files.set("mod.ts", readFileSync(join(root, "mod.ts"), "utf8"));
  return files;
}

describe("architecture", () => {
  test("the repository keeps every rule", () => {
    const found = checkArchitecture(repositoryFiles()).map((v) => `${v.rule}: ${v.file}: ${v.detail}`);
    expect(found).toEqual([]);
  });

  const planted = (extra: Record<string, string>) =>
    new Map<string, string>(Object.entries({
      "src/core/mod.ts": `export * from "./errors.ts";\n`,
      "src/core/errors.ts": `export class MeshError extends Error {}\n`,
      "src/model/mod.ts": `export * from "./types.ts";\n`,
      "src/model/types.ts": `import type { MeshError } from "../core/mod.ts";\nexport type W = MeshError;\n`,
      "src/ztunnel/mod.ts": `import { MeshError } from "../core/mod.ts";\nexport const z = MeshError;\n`,
      "src/waypoint/mod.ts": `export const w = 1;\n`,
      ...extra,
    }));
  const rulesOf = (extra: Record<string, string>) => checkArchitecture(planted(extra)).map((v) => v.rule);

  test("a clean planted tree passes", () => {
    expect(checkArchitecture(planted({}))).toEqual([]);
  });
  test("door: importing a file behind another folder's mod.ts", () => {
    expect(rulesOf({ "src/ztunnel/a.ts": `import { MeshError } from "../core/errors.ts";\n` })).toEqual(["door"]);
    // inside a folder, and up from a subfolder, paths are free; into a subfolder, through its mod.ts
    expect(rulesOf({ "src/ztunnel/capture/mod.ts": `import { z } from "../mod.ts";\nexport const c = z;\n` })).toEqual([]);
    expect(rulesOf({ "src/ztunnel/capture/rules.ts": `export const r = 1;\n`, "src/ztunnel/b.ts": `import { r } from "./capture/rules.ts";\n` })).toEqual(["door"]);
  });
  test("private: a _file used from another folder; _test_ support only from tests", () => {
    expect(rulesOf({ "src/core/_x.ts": `export const x = 1;\n`, "src/core/mod.ts": `export * from "./_x.ts";\n` })).toEqual([]);
    expect(rulesOf({ "src/core/_x.ts": `export const x = 1;\n`, "src/model/a.ts": `import { x } from "../core/_x.ts";\n` })).toEqual(["door", "private"]);
    expect(rulesOf({ "src/core/_test_x.ts": `export const x = 1;\n`, "src/model/a.test.ts": `import { x } from "../core/_test_x.ts";\n` })).toEqual([]);
    expect(rulesOf({ "src/core/_test_x.ts": `export const x = 1;\n`, "src/model/a.ts": `import { x } from "../core/_test_x.ts";\n` })).toContain("private");
  });
  test("layer: a role importing a role, a lower layer importing a higher one", () => {
    expect(rulesOf({ "src/ztunnel/a.ts": `import { w } from "../waypoint/mod.ts";\n` })).toEqual(["layer"]);
    expect(rulesOf({ "src/ztunnel/a.test.ts": `import { w } from "../waypoint/mod.ts";\n` })).toEqual(["layer"]);
    expect(rulesOf({ "src/model/a.ts": `import { z } from "../ztunnel/mod.ts";\n` })).toContain("layer");
    expect(rulesOf({ "src/newthing/mod.ts": `export const n = 1;\n` })).toEqual(["unknown-folder"]);
  });
  test("pure: I/O in config, model, policy or route", () => {
    expect(rulesOf({ "src/model/a.ts": `import { readFileSync } from "node:fs";\n` })).toEqual(["pure"]);
    expect(rulesOf({ "src/model/a.ts": `export const f = () => Bun.file("x");\n` })).toEqual(["pure"]);
    expect(rulesOf({ "src/model/a.ts": `export const f = () => fetch("http://127.0.0.1/");\n` })).toEqual(["pure"]);
    // the same in a role is fine
    expect(rulesOf({ "src/ztunnel/a.ts": `import { readFileSync } from "node:fs";\nexport const f = () => fetch("x");\n` })).toEqual([]);
  });
  test("cycle: between files and between folders", () => {
    expect(rulesOf({ "src/model/a.ts": `import { b } from "./b.ts";\nexport const a = 1;\n`, "src/model/b.ts": `import { a } from "./a.ts";\nexport const b = 1;\n` })).toEqual(["cycle"]);
    // type-only imports make no cycle at run time
    expect(rulesOf({ "src/model/a.ts": `import type { B } from "./b.ts";\nexport const a = 1;\n`, "src/model/b.ts": `import { a } from "./a.ts";\nexport type B = 1;\n` })).toEqual([]);
    expect(rulesOf({ "src/core/a.ts": `import { W } from "../model/mod.ts";\n` })).toEqual(["layer", "cycle"]);
  });
  test("path: absolute machine paths and climbs out of the repository", () => {
    expect(rulesOf({ "src/model/a.ts": `export const p = "/${"work"}/shared/x.json";\n` })).toEqual(["path"]);
    expect(rulesOf({ "test/a.test.ts": `const p = join(import.meta.dir, "../../${"shared"}/reference/jwt/jwks.json");\n` })).toEqual(["path"]);
    expect(rulesOf({ "src/model/a.ts": `import { x } from "../../../outside.ts";\n` })).toEqual(["path"]);
    expect(rulesOf({ "src/ztunnel/a.ts": `export const p = "/run/mesh";\n` })).toEqual([]);
  });
});

describe("portable library", () => {
  test("deno check mod.ts passes (the runtime-neutral core type-checks under Deno)", () => {
    const deno = join(root, "node_modules", ".bin", "deno");
    const r = spawnSync(deno, ["check", "mod.ts"], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" }, timeout: 110_000 });
    expect(`${r.stdout}${r.stderr}`.replace(/^(Check|Download).*\n/gm, "")).toBe("");
    expect(r.status).toBe(0);
  }, 120_000);
  test("mod.ts exports only folders' doors", () => {
    const imports = importsOf(readFileSync(join(root, "mod.ts"), "utf8")).map((i) => relative(".", i.spec));
    expect(imports.length).toBeGreaterThan(0);
    for (const i of imports) expect(i).toMatch(/^src\/[a-z]+\/mod\.ts$/);
  });
});
