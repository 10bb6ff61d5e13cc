/**
 * @peculiar/x509 reaches tsyringe, which refuses to load without the Reflect metadata API (normally from the
 * "reflect-metadata" package, not a dependency here). tsyringe only stores and reads constructor metadata,
 * so a WeakMap-backed implementation of the three functions it calls is enough. Import this module before
 * @peculiar/x509 (./_x509.ts does).
 */
type Target = object;
const store = new WeakMap<Target, Map<unknown, unknown>>();
const R = Reflect as unknown as Record<string, unknown>;

function own(target: Target, create: boolean): Map<unknown, unknown> | undefined {
  let m = store.get(target);
  if (!m && create) store.set(target, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== "function") {
  R.defineMetadata = (key: unknown, value: unknown, target: Target) => void own(target, true)!.set(key, value);
  R.getOwnMetadata = (key: unknown, target: Target) => own(target, false)?.get(key);
  R.getMetadata = (key: unknown, target: Target) => {
    for (let t: Target | null = target; t; t = Object.getPrototypeOf(t)) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.hasMetadata = (key: unknown, target: Target) => (R.getMetadata as (k: unknown, t: Target) => unknown)(key, target) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: Target) => void own(target, true)!.set(key, value);
}
export {};
