/**
 * parseFile reads a file document by document when that cannot change the result, and remembers the
 * documents of each file's last version: the objects, their document indexes and every position must be
 * those of a parse of the whole file, and a re-parse after one document changed parses that one only.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ParsedFile, Path } from "./source.ts";
import { documentParses, parseFile, parseWhole } from "./source.ts";

const dir = join(import.meta.dir, "testdata");
const fixtures = [
  ...readdirSync(join(dir, "rules")).map((n) => join(dir, "rules", n)),
  join(dir, "article.yaml"),
  join(import.meta.dir, "..", "..", "config", "mesh.yaml"),
].map((p) => ({ path: p, text: readFileSync(p, "utf8") }));

const EDGES = [
  "# comment\n---\na: 1\n",
  "a: 1\n---\n# only a comment\n---\nb: 2\n",
  "---\n---\nc: 3\n",
  "--- {a: 1}\n--- [1, 2]\n---\n",
  "a: |\n  --- not a marker: indented\n---\nb: 1\n",
  "a: 1\r\n---\r\nb: 2\r\n",
  "%YAML 1.2\n---\na: 1\n",
  "a: 1\n...\n---\nb: 2\n",
  "a: &x 1\n---\nb: *x\n",
  "x: \"open\n---\ny\"\n",
  "-\r---\n",
  "a: [1,\n---\n]\n",
];

/** Every path of a value (and one missing key per map), so that every position is compared. */
function paths(v: unknown, p: Path = [], out: Path[] = []): Path[] {
  out.push(p);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...p, i], out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) paths(x, [...p, k], out);
    out.push([...p, "no-such-field"]);
  }
  return out;
}

function dump(pf: ParsedFile): unknown {
  return {
    file: pf.file,
    diagnostics: pf.diagnostics,
    objects: pf.objects.map((o) => ({
      doc: o.doc,
      value: o.value,
      at: paths(o.value).map((p) => [p, o.locate(p), o.locate(p, { key: true })]),
    })),
  };
}

describe("parseFile document by document", () => {
  test("fixtures and edge cases: same objects, indexes and positions as a whole-file parse", () => {
    for (const [i, f] of [...fixtures, ...EDGES.map((text, i) => ({ path: `edge-${i}.yaml`, text }))].entries()) {
      const whole = dump(parseWhole(f));
      expect({ i, ...dump(parseFile(f)) as object }).toEqual({ i, ...whole as object });
      // Again, from what it remembers.
      expect({ i, ...dump(parseFile(f)) as object }).toEqual({ i, ...whole as object });
    }
  });

  test("after one document changed, only that document is parsed again, and positions below it move", () => {
    const pod = (i: number, extra = "") =>
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p${i}\n  namespace: shop\n  labels:\n    app: a${i}${extra}\nspec:\n  containers:\n  - name: c\n`;
    const v1 = Array.from({ length: 100 }, (_, i) => pod(i)).join("---\n");
    const v2 = Array.from({ length: 100 }, (_, i) => pod(i, i === 40 ? "\n    changed: \"yes\"" : "")).join("---\n");
    const path = "watched-shop.yaml";
    parseFile({ path, text: v1 });
    const before = documentParses.count;
    const next = parseFile({ path, text: v2 });
    expect(documentParses.count - before).toBe(1);
    expect(dump(next)).toEqual(dump(parseWhole({ path, text: v2 })));
    expect((next.objects[40]!.value as { metadata: { labels: Record<string, string> } }).metadata.labels.changed).toBe("yes");
    // 11 lines per document (its 10 and the --- before it), plus the line added to document 40.
    expect(next.objects[41]!.locate([]).line).toBe(41 * 11 + 1 + 1);
  });
});

test("a file with a document that must be read whole is parsed whole, without parsing its documents again", () => {
  const good = (i: number) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n${i}\n`;
  const text = (n: number) => [...Array.from({ length: n }, (_, i) => good(i)), "a: [unclosed\n"].join("---\n");
  const path = "broken-last.yaml";
  const first = parseFile({ path, text: text(50) });
  expect(dump(first)).toEqual(dump(parseWhole({ path, text: text(50) })));
  expect(first.diagnostics.some((d) => d.rule === "yaml-syntax")).toBe(true);
  const before = documentParses.count;
  const next = parseFile({ path, text: text(51) });
  expect(documentParses.count - before).toBe(1); // the new document only
  expect(dump(next)).toEqual(dump(parseWhole({ path, text: text(51) })));
});
