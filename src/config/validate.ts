/**
 * Runs an object through its kind's valibot schema and turns every issue into a positioned diagnostic:
 * unknown fields (with the nearest known field as a hint) and invalid values.
 */
import * as v from "valibot";
import type { Diagnostic } from "./diagnostic.ts";
import { nearest } from "./hint.ts";
import type { SourceObject } from "./source.ts";

export interface Validated<T> {
  ok: boolean;
  /** Only unknown fields were found: the object is still usable (the unknown fields are ignored). */
  usable: boolean;
  diagnostics: Diagnostic[];
  /** The object itself, typed as what the schema accepts; undefined when not usable. */
  value: T | undefined;
}

/**
 * The schema must not transform (its input and output types are the same): the value handed on is the
 * object as written, not the parse output, which would reorder keys and exists only when no field is
 * unknown. Unknown fields only add keys the type does not name.
 */
export function validateObject<T>(obj: SourceObject, kind: string, schema: v.GenericSchema<T, T>): Validated<T> {
  const r = v.safeParse(schema, obj.value);
  if (r.success) return { ok: true, usable: true, diagnostics: [], value: obj.value as T };
  const diagnostics: Diagnostic[] = [];
  let usable = true;
  const seen = new Set<string>();
  for (const issue of r.issues) {
    const path = (issue.path ?? []).map((p) => p.key as string | number);
    const dotted = dottedPath(path);
    if (issue.type === "strict_object" && issue.expected === "never") {
      const field = String(path[path.length - 1]);
      const known = knownKeysAt(schema, path.slice(0, -1));
      const hint = nearest(field, known);
      const p = obj.locate(path, { key: true });
      diagnostics.push({
        file: obj.file,
        ...p,
        severity: "error",
        message: `Unknown field "${dotted}" in ${kind}${hint ? `: did you mean "${hint}"?` : ""}`,
        rule: "unknown-field",
      });
      continue;
    }
    usable = false;
    const key = `${dotted}`;
    if (seen.has(key)) continue; // a union reports once per option; one line per place is enough
    seen.add(key);
    const missing = issue.received === "undefined";
    let hint = "";
    if (issue.type === "picklist" && typeof issue.input === "string") {
      const options = [...String(issue.expected).matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
      const near = nearest(issue.input, options);
      if (near) hint = `: did you mean "${near}"?`;
    }
    const p = obj.locate(path);
    diagnostics.push({
      file: obj.file,
      ...p,
      severity: "error",
      message: missing
        ? `Missing field "${dotted}" in ${kind}`
        : `Invalid value for "${dotted}" in ${kind}: ${issue.message}${hint}`,
      rule: missing ? "missing-field" : "invalid-value",
    });
  }
  return { ok: false, usable, diagnostics, value: usable ? obj.value as T : undefined };
}

export function dottedPath(path: readonly (string | number)[]): string {
  let s = "";
  for (const seg of path) s += typeof seg === "number" ? `[${seg}]` : s === "" ? seg : `.${seg}`;
  return s;
}

type AnySchema = v.GenericSchema & {
  entries?: Record<string, AnySchema>;
  item?: AnySchema;
  wrapped?: AnySchema;
  options?: AnySchema[];
  value?: AnySchema;
};

/** The field names an object schema knows at `path` (through optionals, arrays, records and unions). */
export function knownKeysAt(schema: v.GenericSchema, path: readonly (string | number)[]): string[] {
  let cur: AnySchema[] = [schema as AnySchema];
  for (const seg of path) {
    const next: AnySchema[] = [];
    for (const s of cur.flatMap(unwrap)) {
      if (s.entries && typeof seg === "string" && s.entries[seg]) next.push(s.entries[seg]);
      else if (s.item && typeof seg === "number") next.push(s.item);
      else if (s.type === "record" && s.value) next.push(s.value);
    }
    cur = next;
  }
  return [...new Set(cur.flatMap(unwrap).flatMap((s) => (s.entries ? Object.keys(s.entries) : [])))];
}

function unwrap(s: AnySchema): AnySchema[] {
  if (s.wrapped) return unwrap(s.wrapped);
  if (s.type === "union" && s.options) return s.options.flatMap(unwrap);
  return [s];
}
