/**
 * Schema pieces shared by every kind: object metadata, label maps, selectors, references. Fields that
 * Kubernetes itself writes (uid, resourceVersion, managedFields...) are accepted and ignored, so objects
 * exported with `kubectl get -o yaml` check clean; a typo is still an unknown field.
 */
import * as v from "valibot";

/** Accepted, not used by the mesh. */
export const ignored = v.optional(v.unknown());

export const nonEmpty = v.pipe(v.string(), v.minLength(1, "Must not be empty"));

export const labels = v.record(v.string(), v.string("Label and annotation values must be strings (quote them)"));

export const port = v.pipe(
  v.number("Must be a port number"),
  v.integer("Must be a whole port number"),
  v.minValue(1, "Must be a port number from 1 to 65535"),
  v.maxValue(65535, "Must be a port number from 1 to 65535"),
);

export const stringList = v.array(v.string());

export const metadata = v.strictObject({
  name: nonEmpty,
  namespace: v.optional(nonEmpty),
  labels: v.optional(labels),
  annotations: v.optional(labels),
  uid: ignored,
  resourceVersion: ignored,
  generation: ignored,
  creationTimestamp: v.optional(v.union([v.string(), v.date(), v.null()])),
  deletionTimestamp: ignored,
  deletionGracePeriodSeconds: ignored,
  managedFields: ignored,
  ownerReferences: ignored,
  finalizers: ignored,
  generateName: ignored,
  selfLink: ignored,
});

/** Istio's WorkloadSelector. */
export const workloadSelector = v.strictObject({ matchLabels: v.optional(labels) });

/** Istio's PolicyTargetReference. */
export const policyTargetRef = v.strictObject({
  group: v.optional(v.string()),
  kind: nonEmpty,
  name: nonEmpty,
  namespace: v.optional(v.string()),
});

/** Status is written by controllers; never an error. */
export const status = v.optional(v.looseObject({}));

/** The envelope of every object. */
export function resource<S extends v.GenericSchema>(spec: S) {
  return resourceWithStatus(spec, status);
}

/** The envelope of an object whose status the mesh reads. */
export function resourceWithStatus<S extends v.GenericSchema, T extends v.GenericSchema>(spec: S, objectStatus: T) {
  return v.strictObject({
    apiVersion: v.string(),
    kind: v.string(),
    metadata,
    spec,
    status: objectStatus,
  });
}

/** An IPv4 or IPv6 address (no prefix, no port). */
export const ipAddress = v.pipe(v.string(), v.ip("Must be an IP address"));

export function isIpAddress(s: string): boolean {
  return v.is(ipAddress, s);
}

/**
 * An address or CIDR block as AuthorizationPolicy's ipBlocks and ip conditions take it: "10.0.0.0/16",
 * "fd00::/8" or a single address. The prefix fits the family; an IPv4-mapped IPv6 block ("::ffff:10.0.0.0/104")
 * must cover the 96 mapping bits. (src/policy reads exactly these; anything else it evaluates fail closed.)
 */
export function isIpBlock(s: string): boolean {
  const slash = s.indexOf("/");
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (!isIpAddress(addr)) return false;
  if (slash < 0) return true;
  const p = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p)) return false;
  const n = Number(p);
  if (!addr.includes(":")) return n <= 32;
  return n <= 128 && (n >= 96 || !isIpv4Mapped(addr));
}

/** ::ffff:a.b.c.d in any spelling (::ffff:0a00:1, 0:0:0:0:0:ffff:...): the policy engine reads it as IPv4. */
function isIpv4Mapped(addr: string): boolean {
  const a = addr.toLowerCase().replace(/%.*$/, "");
  const halves = a.split("::");
  const groups = (h: string) => (h === "" ? [] : h.split(":").flatMap((g) => (g.includes(".") ? ["v4", "v4"] : [g])));
  const head = groups(halves[0]!);
  const tail = halves.length > 1 ? groups(halves[1]!) : [];
  const all = halves.length > 1 ? [...head, ...new Array(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail] : head;
  return all.length === 8 && all.slice(0, 5).every((g) => /^0+$/.test(g)) && all[5] === "ffff";
}

/** A port as AuthorizationPolicy writes it (a string or a number): a decimal number from 1 to 65535, nothing around it. */
export function isPortValue(p: string | number): boolean {
  const s = String(p);
  if (!/^\d{1,5}$/.test(s)) return false;
  const n = Number(s);
  return n >= 1 && n <= 65535;
}

/** A list of addresses or CIDR blocks (ipBlocks, remoteIpBlocks). */
export const ipBlockList = v.array(
  v.pipe(
    v.string(),
    v.check(isIpBlock, (i) => `${JSON.stringify(i.input)} is not an IP address or a CIDR block such as 10.0.0.0/16 (prefix up to /32 for IPv4, /128 for IPv6)`),
  ),
);

/** Istio types ports as strings; a bare number is what people write, so take both. */
export const portValueList = v.array(
  v.pipe(
    v.union([v.string(), v.number()], 'Ports must be strings such as "8080"'),
    v.check(isPortValue, (i) => `${JSON.stringify(i.input)} is not a port number from 1 to 65535 written as digits only (e.g. "8080")`),
  ),
);
