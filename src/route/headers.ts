/**
 * Header sets and the Gateway API header modifier (RequestHeaderModifier / ResponseHeaderModifier).
 * Names are case-insensitive (RFC 9110), so the map keys are lower-cased once at the edge.
 */
import type { HttpHeaderModifier } from "../model/mod.ts";
import type { HeaderMap } from "./types.ts";

/** Lower-cases names and turns single values into one-element lists. */
export function normalizeHeaders(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const list = out[key] ?? (out[key] = []);
    if (Array.isArray(value)) list.push(...value);
    else list.push(value);
  }
  return out;
}

/** The header's values joined with "," (how a repeated header reads as one), or undefined if absent. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return v === undefined || v.length === 0 ? undefined : v.join(",");
}

/**
 * Applies one modifier and returns a new map. Order as Envoy (and so Istio) evaluates it: `remove`
 * first, then `set` (replaces every value), then `add` (appends a value, keeping existing ones).
 *
 * @example
 * applyHeaderModifier({ "x-a": ["1"] }, { add: [{ name: "X-A", value: "2" }] }) // { "x-a": ["1", "2"] }
 */
export function applyHeaderModifier(headers: HeaderMap, mod: HttpHeaderModifier): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) out[k] = [...v];
  for (const name of mod.remove ?? []) delete out[name.toLowerCase()];
  for (const { name, value } of mod.set ?? []) out[name.toLowerCase()] = [value];
  for (const { name, value } of mod.add ?? []) {
    const key = name.toLowerCase();
    (out[key] ?? (out[key] = [])).push(value);
  }
  return out;
}
