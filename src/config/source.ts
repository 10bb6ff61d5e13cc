/**
 * YAML loading with positions: one ConfigFile becomes a list of objects (one per YAML document), each
 * with a `locate` function that maps a path inside the object to the file:line:col it came from. A YAML
 * syntax error becomes a diagnostic at its position, never an exception.
 *
 * A file is parsed document by document when that gives the same result as parsing it whole (no
 * directives, no `...` markers, no error or warning anywhere), and the documents of the previous version
 * of each file are remembered by their text: a watcher that re-parses a file after one Pod changed parses
 * that one document again, not the hundred around it (the yaml package reads about 1 MB/s).
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

/** Parse every YAML document of one file. Pure (what it remembers changes no result, only the time). */
export function parseFile(file: ConfigFile): ParsedFile {
  return parseByDocument(file) ?? parseWhole(file);
}

/** The file parsed in one piece, as parseFile does when a document-by-document parse might differ. */
export function parseWhole(file: ConfigFile): ParsedFile {
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

// ---- document by document ----

/** One document's text, parsed: its value and where its root starts (offsets within the text). */
interface DocumentText {
  text: string;
  /** No document (only comments or blank lines before the first `---`). */
  none: boolean;
  /** undefined for an empty document. */
  value: unknown;
  root: number;
}

/** The documents of the last version of each file, by text (bounded: a forgotten file costs time only). */
const lastDocuments = new Map<string, Map<string, DocumentText>>();
const REMEMBERED_FILES = 1024;

/** A document that must be read within its whole file (see parseOneDocument). */
const READS_DIFFERENTLY: DocumentText = { text: "", none: true, value: undefined, root: 0 };

/** Documents parsed one by one so far (a test reads it to see that unchanged documents are not). */
export const documentParses = { count: 0 };

// A line starting a document (`---` then a blank or the end of the line); anything else at the start of a
// line that ends a document or changes how the next is read (`...`, a %directive) sends the file whole.
const DOCUMENT_START = /^---(?=[ \t\r\n]|$)/gm;
// So do line breaks other than \n and \r\n, which this split and the YAML parser might see differently.
const WHOLE_FILE_ONLY = /^(?:\.\.\.(?:[ \t\r\n]|$)|%)|\r(?!\n)|[\u2028\u2029\u0085]/m;

function parseByDocument(file: ConfigFile): ParsedFile | undefined {
  const text = file.text;
  if (WHOLE_FILE_ONLY.test(text)) return undefined;
  const starts = [0];
  for (const m of text.matchAll(DOCUMENT_START)) if (m.index > 0) starts.push(m.index);
  const known = lastDocuments.get(file.path);
  const seen = new Map<string, DocumentText>();
  const remember = () => {
    lastDocuments.delete(file.path);
    lastDocuments.set(file.path, seen);
    if (lastDocuments.size > REMEMBERED_FILES) lastDocuments.delete(lastDocuments.keys().next().value!);
  };
  const pieces: { at: number; doc: DocumentText }[] = [];
  for (let i = 0; i < starts.length; i++) {
    const at = starts[i]!;
    const piece = text.slice(at, starts[i + 1] ?? text.length);
    const doc = seen.get(piece) ?? known?.get(piece) ?? parseOneDocument(piece, i === 0 && !piece.startsWith("---")) ?? READS_DIFFERENTLY;
    seen.set(piece, doc);
    if (doc === READS_DIFFERENTLY) {
      // Remembered too: while the file keeps this document, it goes whole without parsing it twice.
      remember();
      return undefined;
    }
    pieces.push({ at, doc });
  }
  remember();

  const lc = new LineCounter();
  lc.addNewLine(0);
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lc.addNewLine(i + 1);
  const pos = (offset: number): Position => {
    const p = lc.linePos(offset);
    return p.line === 0 ? { line: 1, col: offset + 1 } : p;
  };
  const objects: SourceObject[] = [];
  let index = 0;
  for (const { at, doc } of pieces) {
    if (doc.none) continue;
    const i = index++;
    if (doc.value === undefined) continue; // empty document
    const root = pos(at + doc.root);
    let tree: Node | undefined;
    objects.push({
      file: file.path,
      doc: i,
      value: doc.value,
      locate: (path, opts) => {
        if (path.length === 0) return root;
        tree ??= (parseAllDocuments(doc.text, { prettyErrors: false, uniqueKeys: true }) as { contents: unknown }[])[0]!.contents as Node;
        return pos(at + offsetOf(tree, path, opts?.key === true));
      },
    });
  }
  return { file: file.path, objects, diagnostics: [] };
}

/**
 * One document's text parsed alone, or undefined when parsing it inside its file might read differently
 * (an error or a warning, not exactly one document, a line break the parser did not count).
 */
function parseOneDocument(text: string, first: boolean): DocumentText | undefined {
  documentParses.count++;
  const lc = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  if (docs.length === 0 && first && text.trim().split("\n").every((l) => l.trim() === "" || l.trim().startsWith("#"))) {
    return { text, none: true, value: undefined, root: 0 };
  }
  if (docs.length !== 1) return undefined;
  const doc = docs[0]!;
  if (doc.errors.length || doc.warnings.length) return undefined;
  let lines = 1;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    if (lc.lineStarts[lines] !== i + 1) return undefined;
    lines++;
  }
  if (lc.lineStarts.length !== lines) return undefined;
  const root = doc.contents as Node | null;
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) {
    return { text, none: false, value: undefined, root: 0 };
  }
  try {
    return { text, none: false, value: doc.toJS({ maxAliasCount: 1000 }), root: root.range?.[0] ?? 0 };
  } catch {
    return undefined;
  }
}
