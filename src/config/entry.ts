/**
 * One accepted object on its way into the model: its kind, identity, typed value and source. The value's
 * type is what that kind's schema accepts, so normalize and the lint rules read fields the schema has
 * already checked instead of guessing at an untyped object.
 */
import type * as v from "valibot";
import type * as schema from "./schema/mod.ts";
import type { SourceObject } from "./source.ts";

/** Each kind the mesh reads, with the value its schema accepts. */
export interface KindValues {
  Namespace: v.InferOutput<typeof schema.namespaceSchema>;
  ServiceAccount: v.InferOutput<typeof schema.serviceAccountSchema>;
  Service: v.InferOutput<typeof schema.serviceSchema>;
  Pod: v.InferOutput<typeof schema.podSchema>;
  WorkloadEntry: v.InferOutput<typeof schema.workloadEntrySchema>;
  AuthorizationPolicy: v.InferOutput<typeof schema.authorizationPolicySchema>;
  RequestAuthentication: v.InferOutput<typeof schema.requestAuthenticationSchema>;
  PeerAuthentication: v.InferOutput<typeof schema.peerAuthenticationSchema>;
  Gateway: v.InferOutput<typeof schema.gatewaySchema>;
  HTTPRoute: v.InferOutput<typeof schema.httpRouteSchema>;
  ReferenceGrant: v.InferOutput<typeof schema.referenceGrantSchema>;
  MeshConfig: v.InferOutput<typeof schema.meshConfigSchema>;
  ServiceEntry: v.InferOutput<typeof schema.serviceEntrySchema>;
  DestinationRule: v.InferOutput<typeof schema.destinationRuleSchema>;
  ExternalHost: v.InferOutput<typeof schema.externalHostSchema>;
}

export type KindName = keyof KindValues;

interface EntryFields {
  obj: SourceObject;
  /** As written; a kind under the wrong apiVersion is still read (and reported). */
  apiVersion: string;
  name: string;
  /** "" for cluster-scoped kinds; "default" when a namespaced object names none (as kubectl does). */
  namespace: string;
}

interface EntryOf<K extends KindName> extends EntryFields {
  kind: K;
  value: KindValues[K];
}

/** An accepted object of kind K; `Entry` alone is any of them, told apart by `kind`. */
export type Entry<K extends KindName = KindName> = { [P in K]: EntryOf<P> }[K];

/**
 * A Deployment or other controller: not validated (the mesh does not read it), kept only for its pod
 * template, which shows what the Services and policies around it were meant to select.
 */
export interface ControllerEntry extends EntryFields {
  controller: true;
  kind: string;
  value: Readonly<Record<string, unknown>>;
}

export function entryOf<K extends KindName>(kind: K, value: KindValues[K], fields: EntryFields): Entry<K> {
  return { obj: fields.obj, kind, apiVersion: fields.apiVersion, name: fields.name, namespace: fields.namespace, value };
}

export function isKind<K extends KindName>(e: Entry, kind: K): e is Extract<Entry, { kind: K }> {
  return e.kind === kind;
}

/** `spec` of a kind as the schema types it, absent taken as empty (every field of these specs is optional). */
export type SpecOf<K extends Exclude<KindName, "ServiceAccount">> = NonNullable<KindValues[K]["spec"]>;

export type EntriesByKind = { [K in KindName]: Entry<K>[] };

/** The entries of each kind, in their given order. */
export function byKind(entries: readonly Entry[]): EntriesByKind {
  const out: EntriesByKind = {
    Namespace: [],
    ServiceAccount: [],
    Service: [],
    Pod: [],
    WorkloadEntry: [],
    AuthorizationPolicy: [],
    RequestAuthentication: [],
    PeerAuthentication: [],
    Gateway: [],
    HTTPRoute: [],
    ReferenceGrant: [],
    MeshConfig: [],
    ServiceEntry: [],
    DestinationRule: [],
    ExternalHost: [],
  };
  for (const e of entries) add(out, e);
  return out;
}

function add<K extends KindName>(groups: EntriesByKind, e: Entry<K>): void {
  const kind: K = e.kind;
  groups[kind].push(e);
}

export function entryKey(e: { kind: string; namespace: string; name: string }): string {
  return e.namespace ? `${e.kind}/${e.namespace}/${e.name}` : `${e.kind}/${e.name}`;
}
