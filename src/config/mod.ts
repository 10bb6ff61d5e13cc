/**
 * Configuration: mesh.yaml (Kubernetes-style multi-document YAML) and Kubernetes API objects, validated
 * with positions, normalized into the MeshModel, and linted. Pure: no I/O, no runtime-specific API
 * (files are read by src/platform/config_files.ts).
 *
 * @example
 * ```ts
 * const { model, diagnostics } = parseConfig([{ path: "mesh.yaml", text }]);
 * for (const d of diagnostics) console.log(formatDiagnostic(d));
 * if (hasErrors(diagnostics)) throw new Error("invalid configuration");
 * ```
 */
export type { ConfigFile, ParsedFile, Path as SourcePath, Position as SourcePosition, SourceObject } from "./source.ts";
export { parseFile } from "./source.ts";
export type { Diagnostic } from "./diagnostic.ts";
export { blockingErrors, ENFORCED_FAIL_CLOSED, formatDiagnostic, hasErrors, sortDiagnostics, summarize } from "./diagnostic.ts";
export type { LoadResult } from "./load.ts";
export { buildModel, modelFromObjects, parseConfig } from "./load.ts";
export { hasL7, l7Attributes } from "./l7.ts";
export type { L7Attribute } from "./l7.ts";
export { MESH_API_VERSION } from "./kinds.ts";
export { RULES } from "./rules.ts";
export { isIpBlock } from "./schema/mod.ts";
