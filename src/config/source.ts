/**
 * YAML loading with positions: one ConfigFile becomes a list of objects (one per YAML document), each
 * with a `locate` function that maps a path inside the object to the file:line:col it came from. A YAML
 * syntax error becomes a diagnostic at its position, never an exception.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import type { Node } from "yaml";
import type { Diagnostic } from "./diagnostic.ts";

export interface ConfigFile {
  /** As given by the user (printed in diagnostics). */
  path: string;
  text: string;
}

export type Path = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
}

/** One Kubernetes-style object and where it came from. */
export interface SourceObject {
  file: string;
  /** 0-based document index in its file. */
  doc: number;
  value: unknown;
  /**
   * Where `path` is. With `key: true`, the position of the map key naming the last segment (for
   * "unknown field" and "this field" diagnostics); otherwise of the value. A path that does not exist
   * resolves to its deepest existing ancestor.
   */
  locate(path: Path, opts?: { key?: boolean }): Position;
}

export interface ParsedFile {
  file: string;
  objects: SourceObject[];
  /** YAML syntax errors and warnings. */
  diagnostics: Diagnostic[];
}

/** Parse every YAML document of one file. Pure. */
export function parseFile(file: ConfigFile): ParsedFile {
  const lc = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const objects: SourceObject[] = [];
  const docs = parseAllDocuments(file.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const pos = (offset: number): Position => {
    const p = lc.linePos(offset);
    return p.line === 0 ? { line: 1, col: offset + 1 } : p;
  };
  list.forEach((doc, i) => {
    for (const e of doc.errors) {
      const p = pos(e.pos[0]);
      diagnostics.push({ file: file.path, ...p, severity: "error", message: `YAML syntax: ${firstLine(e.message)}`, rule: "yaml-syntax" });
    }
    for (const w of doc.warnings) {
      const p = pos(w.pos[0]);
      diagnostics.push({ file: file.path, ...p, severity: "warning", message: `YAML: ${firstLine(w.message)}`, rule: "yaml-syntax" });
    }
    if (doc.errors.length) return;
    const root = doc.contents as Node | null;
    if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return; // empty document
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      const p = pos(root.range?.[0] ?? 0);
      diagnostics.push({ file: file.path, ...p, severity: "error", message: `YAML: ${firstLine(String((e as Error).message))}`, rule: "yaml-syntax" });
      return;
    }
    objects.push({
      file: file.path,
      doc: i,
      value,
      locate: (path, opts) => pos(offsetOf(root, path, opts?.key === true)),
    });
  });
  return { file: file.path, objects, diagnostics };
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

function offsetOf(root: Node, path: Path, key: boolean): number {
  let node: unknown = root;
  let best = root.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyString(p.key) === String(seg));
      if (!pair) return best;
      const k = pair.key as Node | null;
      const v = pair.value as Node | null;
      if (last && key && k?.range) return k.range[0];
      if (v?.range) best = v.range[0];
      else if (k?.range) best = k.range[0];
      node = v;
    } else if (isSeq(node)) {
      const item = typeof seg === "number" ? (node.items[seg] as Node | undefined) : undefined;
      if (!item) return best;
      if (item.range) best = item.range[0];
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function keyString(k: unknown): string | undefined {
  if (isScalar(k)) return String(k.value);
  return undefined;
}

/** An object built elsewhere (the Kubernetes API): no positions. */
export function unlocatedObject(value: unknown, file: string): SourceObject {
  return { file, doc: 0, value, locate: () => ({ line: 0, col: 0 }) };
}
