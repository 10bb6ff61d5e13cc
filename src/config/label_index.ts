/**
 * Label selection without scanning every workload for every selector: workloads grouped by namespace
 * and by label pair, so a selector only looks at the workloads carrying its rarest pair. Each group keeps
 * the items' original order, so any group filtered by the selector gives the same list as a full scan.
 */
import type { Labels } from "../model/mod.ts";

export interface Labelled {
  namespace: string;
  labels: Labels;
}

/**
 * How many times a selector was tested against one workload, across every index. A test reads it to
 * prove that building a model does work proportional to what the selectors select, not to
 * selectors x workloads (a count, unlike a time, does not depend on the machine's load).
 */
export const selectorEvaluations = { count: 0 };

/** label key -> label value -> items */
type PairGroups<T> = Map<string, Map<string, T[]>>;

export class LabelIndex<T extends Labelled> {
  readonly #all: readonly T[];
  readonly #byNs = new Map<string, T[]>();
  /** namespace -> pairs of that namespace */
  readonly #byNsPair = new Map<string, PairGroups<T>>();
  readonly #byPair: PairGroups<T> = new Map();

  constructor(items: readonly T[]) {
    this.#all = items;
    for (const it of items) {
      push(this.#byNs, it.namespace, it);
      let nsPairs = this.#byNsPair.get(it.namespace);
      if (!nsPairs) this.#byNsPair.set(it.namespace, nsPairs = new Map());
      for (const k in it.labels) {
        if (!Object.hasOwn(it.labels, k)) continue;
        const v = it.labels[k]!;
        pushPair(nsPairs, k, v, it);
        pushPair(this.#byPair, k, v, it);
      }
    }
  }

  /** Items of `namespace` (every namespace when undefined) whose labels include every selector pair. */
  select(namespace: string | undefined, selector: Labels): T[] {
    const pairs = namespace === undefined ? this.#byPair : this.#byNsPair.get(namespace);
    const want = Object.entries(selector);
    if (!want.length) return this.inNamespace(namespace);
    let smallest: T[] | undefined;
    for (const [k, v] of want) {
      const list = pairs?.get(k)?.get(v);
      if (!list) return [];
      if (!smallest || list.length < smallest.length) smallest = list;
    }
    selectorEvaluations.count += smallest!.length;
    if (want.length === 1) return [...smallest!];
    // labelsMatch (../model), with the selector's pairs listed once rather than once per item.
    const out: T[] = [];
    next: for (const it of smallest!) {
      for (const [k, v] of want) if (it.labels[k] !== v) continue next;
      out.push(it);
    }
    return out;
  }

  /** Items of `namespace` (every namespace when undefined), in their original order; a copy. */
  inNamespace(namespace: string | undefined): T[] {
    return namespace === undefined ? [...this.#all] : [...(this.#byNs.get(namespace) ?? [])];
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

function pushPair<T>(m: PairGroups<T>, k: string, v: string, it: T): void {
  let values = m.get(k);
  if (!values) m.set(k, values = new Map());
  push(values, v, it);
}
