/**
 * The few Reflect metadata functions that @peculiar/x509's dependency (tsyringe) calls at load time.
 * No reflect polyfill package is installed; this one covers only what tests need to create
 * certificates. Import it before @peculiar/x509.
 */
type Target = object;
const store = new WeakMap<Target, Map<unknown, Map<unknown, unknown>>>();
const R = Reflect as unknown as Record<string, unknown>;

function own(target: Target, key: unknown, create: boolean): Map<unknown, unknown> | undefined {
  let byKey = store.get(target);
  if (!byKey && create) store.set(target, (byKey = new Map()));
  let m = byKey?.get(key);
  if (!m && create && byKey) byKey.set(key, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== "function") {
  R.defineMetadata = (k: unknown, v: unknown, t: Target, p?: unknown) => own(t, p, true)!.set(k, v);
  R.getOwnMetadata = (k: unknown, t: Target, p?: unknown) => own(t, p, false)?.get(k);
  R.hasOwnMetadata = (k: unknown, t: Target, p?: unknown) => own(t, p, false)?.has(k) ?? false;
  R.getMetadata = (k: unknown, t: Target, p?: unknown) => {
    for (let o: Target | null = t; o; o = Object.getPrototypeOf(o)) {
      const m = own(o, p, false);
      if (m?.has(k)) return m.get(k);
    }
    return undefined;
  };
  R.hasMetadata = (k: unknown, t: Target, p?: unknown) => R.getMetadata !== undefined &&
    (R.getMetadata as (k: unknown, t: Target, p?: unknown) => unknown)(k, t, p) !== undefined;
  R.metadata = (k: unknown, v: unknown) => (t: Target, p?: unknown) => own(t, p, true)!.set(k, v);
}
export {};
