/** One accepted object on its way into the model: its kind, identity, typed value and source. */
import type { SourceObject } from "./source.ts";

export interface Entry {
  obj: SourceObject;
  kind: string;
  apiVersion: string;
  name: string;
  /** "" for cluster-scoped kinds; "default" when a namespaced object names none (as kubectl does). */
  namespace: string;
  // deno-lint-ignore no-explicit-any
  value: any;
}

export function entryKey(e: { kind: string; namespace: string; name: string }): string {
  return e.namespace ? `${e.kind}/${e.namespace}/${e.name}` : `${e.kind}/${e.name}`;
}
