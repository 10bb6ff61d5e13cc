/**
 * The whole pipeline: YAML documents -> classified, validated objects -> MeshModel -> lint. Pure: the
 * caller reads the files (src/platform/config_files.ts) or watches the Kubernetes API and hands over
 * text or plain objects.
 */
import type { MeshModel } from "../model/mod.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { sortDiagnostics } from "./diagnostic.ts";
import type { ControllerEntry, Entry, KindName } from "./entry.ts";
import { entryKey, entryOf } from "./entry.ts";
import { nearest } from "./hint.ts";
import { allKindNames, classify, KIND_BY_NAME, type KindInfo } from "./kinds.ts";
import { lint } from "./lint.ts";
import { normalize } from "./normalize.ts";
import type { ConfigFile, ParsedFile, SourceObject } from "./source.ts";
import { parseFile, unlocatedObject } from "./source.ts";
import { validateObject } from "./validate.ts";

export interface LoadResult {
  model: MeshModel;
  /** Sorted by file, line, column. */
  diagnostics: Diagnostic[];
}

/** Parse, normalize and lint a set of files as one configuration. Pure. */
export function parseConfig(files: readonly ConfigFile[]): LoadResult {
  return buildModel(files.map(parseFile));
}

/**
 * Build the model from files parsed earlier with parseFile (a watcher re-parses only the file that
 * changed and calls this again with the whole set).
 */
export function buildModel(parsed: readonly ParsedFile[]): LoadResult {
  const diagnostics: Diagnostic[] = parsed.flatMap((p) => p.diagnostics);
  const opts = { fileMode: true };
  return fromAccepted(parsed.flatMap((p) => acceptFile(p, opts)), diagnostics, opts);
}

/**
 * Normalize objects already parsed elsewhere (the Kubernetes API source): same rules, no positions.
 * Diagnostics name the object ("kubernetes:Kind/namespace/name") instead of a file.
 */
export function modelFromObjects(objects: readonly unknown[], opts: { source?: string } = {}): LoadResult {
  const src = opts.source ?? "kubernetes";
  const wrapped = objects.map((o) => {
    const m = (o as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null) ?? {};
    const id = [m.kind, m.metadata?.namespace, m.metadata?.name].filter((x) => typeof x === "string" && x).join("/");
    return unlocatedObject(o, id ? `${src}:${id}` : src);
  });
  const mode = { fileMode: false };
  return fromAccepted(expandLists(wrapped).map((o) => acceptOnce(o, mode)), [], mode);
}

function fromAccepted(accepted: readonly Accepted[], diagnostics: Diagnostic[], opts: { fileMode: boolean }): LoadResult {
  const entries: Accepted[] = [];
  const controllers: ControllerEntry[] = [];
  for (const a of accepted) {
    for (const d of a.diagnostics) diagnostics.push({ ...d });
    if (a.controller) controllers.push(a.controller);
    else if (a.entry) entries.push(a);
  }
  const unique = dedupe(entries, diagnostics);
  const normalized = normalize(unique);
  const { model, diagnostics: nd } = normalized;
  diagnostics.push(...nd, ...lint(normalized, unique, { ...opts, controllers }));
  return { model, diagnostics: sortDiagnostics(diagnostics) };
}

function diag(obj: SourceObject, path: (string | number)[], severity: Diagnostic["severity"], rule: string, message: string, key = false): Diagnostic {
  return { file: obj.file, ...obj.locate(path, { key }), severity, message, rule };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null; // not an array, Uint8Array (!!binary), Map (!!omap)...
}

/**
 * What a parsed object turned into, kept for as long as the object lives. A watcher re-parses only the
 * file that changed and rebuilds the model from every file; validating the other thousands of objects
 * again gave the same answer at a third of the build's cost. Objects are never changed after parsing.
 */
interface Accepted {
  fileMode: boolean;
  entry: Entry | undefined;
  controller: ControllerEntry | undefined;
  diagnostics: Diagnostic[];
  /** What makes two objects the same one (see dedupe). */
  key: string;
}
const acceptedOf = new WeakMap<SourceObject, Accepted>();
const listItemsOf = new WeakMap<SourceObject, SourceObject[]>();

/** Per parsed file too: one look-up per unchanged file instead of one per object. */
const acceptedInFile = new WeakMap<ParsedFile, { fileMode: boolean; objects: readonly SourceObject[]; accepted: Accepted[] }>();

function acceptFile(file: ParsedFile, opts: { fileMode: boolean }): Accepted[] {
  const known = acceptedInFile.get(file);
  // The same file object with the same objects in it (a caller may have replaced some).
  if (known && known.fileMode === opts.fileMode && sameItems(known.objects, file.objects)) return known.accepted;
  const accepted = expandLists(file.objects).map((o) => acceptOnce(o, opts));
  acceptedInFile.set(file, { fileMode: opts.fileMode, objects: [...file.objects], accepted });
  return accepted;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function acceptOnce(obj: SourceObject, opts: { fileMode: boolean }): Accepted {
  const known = acceptedOf.get(obj);
  if (known && known.fileMode === opts.fileMode) return known;
  const diagnostics: Diagnostic[] = [];
  const accepted = accept(obj, diagnostics, opts);
  const entry = accepted && !("controller" in accepted) ? accepted : undefined;
  const controller = accepted && "controller" in accepted ? accepted : undefined;
  // There is one mesh-wide configuration, whatever its name.
  const key = !accepted ? "" : accepted.kind === "MeshConfig" ? "MeshConfig" : entryKey(accepted);
  const a: Accepted = { fileMode: opts.fileMode, entry, controller, diagnostics, key };
  acceptedOf.set(obj, a);
  return a;
}

/** `kind: List` (what `kubectl get -o yaml` prints for several objects) holds its objects in `items`. */
function expandLists(objects: readonly SourceObject[]): SourceObject[] {
  const out: SourceObject[] = [];
  for (const obj of objects) {
    const v = obj.value;
    if (isRecord(v) && v.kind === "List" && Array.isArray(v.items)) {
      // The same item objects each time, so that what they were accepted as is remembered too.
      let items = listItemsOf.get(obj);
      if (!items) {
        items = v.items.map((item, i): SourceObject => ({ ...obj, value: item, locate: (path, o) => obj.locate(["items", i, ...path], o) }));
        listItemsOf.set(obj, items);
      }
      out.push(...items);
      continue;
    }
    out.push(obj);
  }
  return out;
}

const WORKLOAD_HINT = "mesh reads Pods and WorkloadEntries, not controllers: declare the Pods it would create (with spec.nodeName and status.podIP) or WorkloadEntries";

function accept(obj: SourceObject, diagnostics: Diagnostic[], opts: { fileMode: boolean }): Entry | ControllerEntry | undefined {
  const v = obj.value;
  if (!isRecord(v)) {
    diagnostics.push(diag(obj, [], "error", "invalid-object", "Each YAML document must be a Kubernetes object (a map with apiVersion, kind and metadata)"));
    return undefined;
  }
  if (typeof v.kind !== "string" || v.kind === "") {
    diagnostics.push(diag(obj, [], "error", "missing-field", 'Missing field "kind": every object needs apiVersion and kind'));
    return undefined;
  }
  const kind = v.kind;
  const apiVersion = typeof v.apiVersion === "string" ? v.apiVersion : "";
  if (apiVersion === "") {
    const info = KIND_BY_NAME.get(kind);
    diagnostics.push(diag(obj, ["kind"], "error", "missing-field", `Missing field "apiVersion" in ${kind}${info ? `: use ${info.apiVersions[0]}` : ""}`));
    return undefined;
  }
  const c = classify(apiVersion, kind);
  switch (c.type) {
    case "workload-controller": {
      if (opts.fileMode) diagnostics.push(diag(obj, ["kind"], "warning", "ignored-kind", `${kind} is ignored: ${WORKLOAD_HINT}`));
      // Not part of the model, but its pod template tells the lint rules what the Services and
      // policies around it were meant to select.
      const md = isRecord(v.metadata) ? v.metadata : {};
      const name = typeof md.name === "string" ? md.name : "";
      const namespace = typeof md.namespace === "string" && md.namespace ? md.namespace : "default";
      return { obj, kind, apiVersion, name, namespace, value: v, controller: true };
    }
    case "ignored":
      if (opts.fileMode) diagnostics.push(diag(obj, ["kind"], "warning", "ignored-kind", `${kind} is ignored: mesh does not read it`));
      return undefined;
    case "unsupported":
      diagnostics.push(diag(obj, ["kind"], "warning", "unsupported-kind", `${kind} (${apiVersion}) is not supported by mesh and is ignored`));
      return undefined;
    case "istio-gateway":
      diagnostics.push(diag(obj, ["apiVersion"], "warning", "unsupported-kind", `Istio's Gateway (${apiVersion}) configures ingress/egress gateways, which mesh does not run; it is ignored. A waypoint is a gateway.networking.k8s.io/v1 Gateway with gatewayClassName: istio-waypoint`));
      return undefined;
    case "policy-attachment":
      diagnostics.push(diag(obj, ["kind"], "error", "policy-attachment", "PolicyAttachment does not bind a waypoint (no such kind in Istio or the Gateway API): create a Gateway with gatewayClassName: istio-waypoint and label the namespace, Service or Pod with istio.io/use-waypoint: <gateway name>"));
      return undefined;
    case "unknown": {
      const hint = nearest(kind, allKindNames());
      diagnostics.push(diag(obj, ["kind"], "error", "unknown-kind", `Unknown kind "${kind}"${hint ? `: did you mean "${hint}"?` : ""}`));
      return undefined;
    }
  }
  return acceptKnown(obj, c.info, { apiVersion, apiVersionOk: c.apiVersionOk }, diagnostics, opts);
}

/** An object of a kind the mesh reads, checked against that kind's schema. */
function acceptKnown<K extends KindName>(
  obj: SourceObject,
  info: KindInfo<K>,
  version: { apiVersion: string; apiVersionOk: boolean },
  diagnostics: Diagnostic[],
  opts: { fileMode: boolean },
): Entry<K> | undefined {
  const { kind } = info;
  const { apiVersion } = version;
  if (!version.apiVersionOk) {
    const want = info.apiVersions.length > 1 ? `${info.apiVersions[0]} (or ${info.apiVersions.slice(1).join(", ")})` : info.apiVersions[0];
    // Still read it: the rest of its diagnostics are worth having in the same run.
    diagnostics.push(diag(obj, ["apiVersion"], "error", "api-version", `${kind} needs apiVersion ${want}, not "${apiVersion}"`));
  }
  const val = validateObject(obj, kind, info.schema);
  // The API server has validated (and pruned) what it stores, and newer Kubernetes versions add fields:
  // an unknown field there is not the user's typo.
  diagnostics.push(...(opts.fileMode ? val.diagnostics : val.diagnostics.filter((d) => d.rule !== "unknown-field")));
  if (val.value === undefined) return undefined;
  const md = val.value.metadata;
  // Only a MeshConfig may leave out its metadata or name.
  const name = md?.name ?? (kind === "MeshConfig" ? "mesh" : "");
  const namespace = info.namespaced ? md?.namespace || "default" : "";
  return entryOf(kind, val.value, { obj, apiVersion, name, namespace });
}

function dedupe(accepted: readonly Accepted[], diagnostics: Diagnostic[]): Entry[] {
  const seen = new Map<string, Entry>();
  const out: Entry[] = [];
  for (const { entry: e, key } of accepted) {
    if (!e) continue;
    const first = seen.get(key);
    if (first) {
      const where = first.obj.locate([]);
      const at = where.line > 0 ? `${first.obj.file}:${where.line}:${where.col}` : first.obj.file;
      const what = e.kind === "MeshConfig" ? "A second MeshConfig" : `Duplicate ${e.kind} ${e.namespace ? `${e.namespace}/` : ""}${e.name}`;
      diagnostics.push(diag(e.obj, ["metadata", "name"], "error", "duplicate-object", `${what}: already defined at ${at}; this one is ignored`));
      continue;
    }
    seen.set(key, e);
    out.push(e);
  }
  return out;
}
