/**
 * Label selection without scanning every workload for every selector: workloads grouped by namespace
 * and by label pair, so a selector only looks at the workloads carrying its first pair.
 */
import type { Labels } from "../model/types.ts";
import { labelsMatch } from "../model/mod.ts";

export interface Labelled {
  namespace: string;
  labels: Labels;
}

export class LabelIndex<T extends Labelled> {
  readonly #all: readonly T[];
  readonly #byNs = new Map<string, T[]>();
  readonly #byPair = new Map<string, T[]>();
  readonly #byPairAnyNs = new Map<string, T[]>();

  constructor(items: readonly T[]) {
    this.#all = items;
    for (const it of items) {
      push(this.#byNs, it.namespace, it);
      for (const [k, v] of Object.entries(it.labels)) {
        push(this.#byPair, `${it.namespace}\u0000${k}\u0000${v}`, it);
        push(this.#byPairAnyNs, `${k}\u0000${v}`, it);
      }
    }
  }

  /** Items of `namespace` (every namespace when undefined) whose labels include every selector pair. */
  select(namespace: string | undefined, selector: Labels): T[] {
    const first = Object.entries(selector)[0];
    if (!first) return this.inNamespace(namespace);
    const key = namespace === undefined ? `${first[0]}\u0000${first[1]}` : `${namespace}\u0000${first[0]}\u0000${first[1]}`;
    const list = (namespace === undefined ? this.#byPairAnyNs : this.#byPair).get(key) ?? [];
    return list.filter((it) => labelsMatch(selector, it.labels));
  }

  inNamespace(namespace: string | undefined): T[] {
    return namespace === undefined ? [...this.#all] : [...(this.#byNs.get(namespace) ?? [])];
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}
