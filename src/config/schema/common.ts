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
export function resource<S extends v.GenericSchema>(spec: S, extra: v.ObjectEntries = {}) {
  return v.strictObject({
    apiVersion: v.string(),
    kind: v.string(),
    metadata,
    spec,
    status,
    ...extra,
  });
}

/** An IPv4 or IPv6 address (no prefix, no port). */
export const ipAddress = v.pipe(v.string(), v.ip("Must be an IP address"));

export function isIpAddress(s: string): boolean {
  return v.is(ipAddress, s);
}
