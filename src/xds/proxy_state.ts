/**
 * The configuration a proxy holds, and what each control-plane frame does to it. Pure (no I/O, no clock,
 * no logging) so that the merge a proxy trusts its policy to can be tested on its own, apart from the
 * session that carries the frames (as ztunnel keeps its ProxyStateUpdater apart from the xDS transport).
 *
 * The rules, from the protocol (./protocol.ts):
 * - a snapshot replaces everything held;
 * - a delta applies only on top of the version and epoch it names as `base`: anything else cannot be
 *   merged safely, so the proxy asks for a snapshot (resync) instead of guessing;
 * - inside a delta, removals apply before upserts, and a collection the delta does not mention is kept;
 * - a frame that does not parse, or a view the proxy's own check refuses, is NACKed by version (or answered
 *   with a resync when it carries no usable version), and the held state stays as it was.
 *
 * @example
 * let held: ProxyState | undefined;
 * const d = decideFrame(held, line, validate);
 * if (d.kind === "apply") held = d.state; // after the proxy applied d.state.view, ACK d.state.version
 */
import type { MeshConfig, MeshModel } from "../model/mod.ts";
import { Interner } from "./_intern.ts";
import {
  COLLECTIONS,
  type Collection,
  type DeltaMessage,
  DeltaMessageSchema,
  parseWith,
  type Resource,
  resourceKey,
  type SnapshotMessage,
  SnapshotMessageSchema,
  type XdsView,
} from "./protocol.ts";

/** Every collection's resources by resourceKey(); maps are shared between versions, so never mutate them. */
export type ResourceMaps = { readonly [C in Collection]: ReadonlyMap<string, Resource<C>> };

/** One version of the configuration, as held by a proxy. */
export interface ProxyState {
  readonly version: number;
  /** The control-plane instance the version came from: deltas only apply within one epoch. */
  readonly epoch: string;
  readonly meshConfig: MeshConfig;
  readonly trustBundlePem: string;
  readonly resources: ResourceMaps;
  /** What the proxy applies (built once per version). */
  readonly view: XdsView;
}

/** The proxy's own check of a view: a reason to refuse it, or undefined to accept. May throw (= refuse). */
export type Validate = (view: XdsView, version: number) => string | undefined;

/** What to do with one frame from the control plane. Only "apply" changes what is held. */
export type FrameDecision =
  /** Apply state.view; once applied, hold state and ACK its version. */
  | { kind: "apply"; state: ProxyState }
  | { kind: "nack"; version: number; reason: string }
  /** Ask for a full snapshot (nothing to NACK by, or a delta that does not fit what is held). */
  | { kind: "resync"; reason: string }
  /** The control plane refused this proxy (bad credentials, unknown proxy) and closes the stream. */
  | { kind: "error"; code: string; message: string };

/** The ways a proxy turns down a frame. */
export type Refusal = Extract<FrameDecision, { kind: "nack" | "resync" }>;

/** Decides what one newline-delimited frame does to the held state (undefined: nothing held yet). */
export function decideFrame(held: ProxyState | undefined, frame: string, validate?: Validate): FrameDecision {
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch {
    return { kind: "resync", reason: "unparsable frame" };
  }
  const type = (raw as { type?: unknown } | null)?.type;
  if (type === "error") {
    const m = raw as { code?: unknown; message?: unknown };
    return { kind: "error", code: String(m.code ?? "error"), message: String(m.message ?? "") };
  }
  if (type === "snapshot") {
    const p = parseWith(SnapshotMessageSchema, raw);
    if (!p.ok) return refusal(versionOf(raw), `invalid snapshot: ${p.error}`);
    return decideSnapshot(p.value as SnapshotMessage, validate);
  }
  if (type === "delta") {
    const p = parseWith(DeltaMessageSchema, raw);
    if (!p.ok) return refusal(versionOf(raw), `invalid delta: ${p.error}`);
    const d = p.value as DeltaMessage;
    if (!held || held.version !== d.base || held.epoch !== d.epoch) {
      return { kind: "resync", reason: `delta is based on version ${d.base}, this proxy holds ${held?.version ?? "nothing"}` };
    }
    return decided(mergeDelta(held, d), validate);
  }
  return { kind: "resync", reason: `unknown frame type ${JSON.stringify(type)}` };
}

/**
 * A parsed snapshot, checked: also how a proxy takes its last-known-good file back at start. Its resources
 * are taken over, not copied: repeated values in them are replaced by shared ones (./_intern.ts).
 */
export function decideSnapshot(s: SnapshotMessage, validate?: Validate): { kind: "apply"; state: ProxyState } | Refusal {
  return decided(stateOfSnapshot(s), validate);
}

/**
 * How to refuse a frame: a NACK names a version, so a frame without a usable one can only be answered
 * with a request for a snapshot.
 */
export function refusal(version: unknown, reason: string): Refusal {
  const usable = typeof version === "number" && Number.isInteger(version) && version >= 0;
  return usable ? { kind: "nack", version, reason } : { kind: "resync", reason };
}

/** The held state as a snapshot message (what the last-known-good file stores). */
export function snapshotOf(s: ProxyState): SnapshotMessage {
  const resources = Object.fromEntries(COLLECTIONS.map((c) => [c, [...s.resources[c].values()]])) as SnapshotMessage["resources"];
  return { type: "snapshot", version: s.version, epoch: s.epoch, meshConfig: s.meshConfig, trustBundlePem: s.trustBundlePem, resources };
}

function stateOfSnapshot(s: SnapshotMessage): ProxyState {
  const resources = {} as Record<Collection, Map<string, Resource<Collection>>>;
  const interner = new Interner();
  for (const c of COLLECTIONS) {
    const m = new Map<string, Resource<Collection>>();
    for (const r of s.resources[c] ?? []) {
      const shared = interner.intern(r);
      m.set(resourceKey(c, shared), shared);
    }
    resources[c] = m;
  }
  return stateOf({ version: s.version, epoch: s.epoch, meshConfig: s.meshConfig, trustBundlePem: s.trustBundlePem, resources: resources as ResourceMaps });
}

/** `d` on top of `held`; the caller has checked that d.base and d.epoch are what is held. */
function mergeDelta(held: ProxyState, d: DeltaMessage): ProxyState {
  const resources: Record<Collection, ReadonlyMap<string, Resource<Collection>>> = { ...held.resources };
  const interner = new Interner();
  for (const c of COLLECTIONS) {
    const up = d.upsert[c] as Resource<Collection>[] | undefined;
    const rm = d.remove[c];
    if (!up?.length && !rm?.length) continue;
    const m = new Map(held.resources[c] as ReadonlyMap<string, Resource<Collection>>);
    for (const k of rm ?? []) m.delete(k);
    for (const r of up ?? []) {
      const shared = interner.intern(r);
      m.set(resourceKey(c, shared), shared);
    }
    resources[c] = m;
  }
  return stateOf({
    version: d.version,
    epoch: d.epoch,
    meshConfig: d.meshConfig ?? held.meshConfig,
    trustBundlePem: d.trustBundlePem ?? held.trustBundlePem,
    resources: resources as ResourceMaps,
  });
}

function stateOf(s: Omit<ProxyState, "view">): ProxyState {
  const model = { meshConfig: s.meshConfig } as MeshModel;
  for (const c of COLLECTIONS) (model as unknown as Record<string, unknown>)[c] = [...s.resources[c].values()];
  return { ...s, view: { model, trustBundlePem: s.trustBundlePem } };
}

function decided(state: ProxyState, validate?: Validate): { kind: "apply"; state: ProxyState } | Refusal {
  let reason: string | undefined;
  try {
    reason = validate?.(state.view, state.version);
  } catch (e) {
    reason = `validation failed: ${(e as Error).message}`;
  }
  return reason === undefined ? { kind: "apply", state } : refusal(state.version, reason);
}

function versionOf(raw: unknown): unknown {
  return (raw as { version?: unknown }).version;
}
