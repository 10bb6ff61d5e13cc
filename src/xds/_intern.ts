/**
 * Shares what repeats across the resources of one frame, so that a proxy holding a large mesh keeps one
 * copy of each: strings (namespaces, nodes, service accounts, identities, the workload uids that
 * Services' endpoints repeat) and small objects and arrays made only of primitives (label sets, port
 * lists, an endpoint's port map). JSON.parse gives every occurrence its own copy.
 *
 * It works in place, on resources just parsed from a frame: a copy of the whole configuration, even a
 * short-lived one, raises the process's peak memory, and the allocator keeps that peak resident (an
 * earlier attempt that built interned copies grew the RSS it meant to shrink). Shared objects are not
 * frozen (freezing an array makes the engine move it to a larger representation); like every resource a
 * proxy holds, they are never changed in place.
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #leaves = new Map<string, object>();
  readonly #shared = new WeakSet<object>();

  /** `v` itself, its repeated strings and primitive-only objects and arrays replaced by shared copies. */
  intern<T>(v: T): T {
    return this.#value(v) as T;
  }

  #value(v: unknown): unknown {
    if (typeof v === "string") {
      const s = this.#strings.get(v);
      if (s !== undefined) return s;
      this.#strings.set(v, v);
      return v;
    }
    if (v === null || typeof v !== "object") return v;
    let leaf = true;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      const y = this.#value(x);
      // Equal strings compare equal, so a string is always stored back: the copy held is then the shared one.
      if (y !== x || typeof y === "string") o[k] = y;
      if (y !== null && typeof y === "object" && !this.#shared.has(y)) leaf = false;
    }
    if (!leaf) return v;
    // Only small leaves are keyed by their JSON: a large one (a whole workload) is unique anyway.
    const key = (Array.isArray(v) ? "a" : "o") + JSON.stringify(v);
    if (key.length > MAX_LEAF_JSON) return v;
    const prev = this.#leaves.get(key);
    if (prev) return prev;
    this.#leaves.set(key, v);
    this.#shared.add(v);
    return v;
  }
}

/** Label sets, port lists and endpoint port maps are far below this; whole workloads and Services above. */
const MAX_LEAF_JSON = 200;
