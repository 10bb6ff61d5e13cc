/**
 * Diagnostics: what `mesh check` prints, and what every configuration loader returns beside the model.
 * One diagnostic points at one place (file, 1-based line and column) and names the rule that raised it,
 * so users can search for the rule and tests can pin the exact position.
 */

export interface Diagnostic {
  file: string;
  /** 1-based; 0 when the object has no source position (Kubernetes API objects). */
  line: number;
  /** 1-based; 0 when unknown. */
  col: number;
  severity: "error" | "warning";
  message: string;
  /** Stable rule id, e.g. "unknown-field" (see RULES in ./rules.ts). */
  rule: string;
}

/** `file:line:col: severity: message [rule]` (line and column left out when unknown). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  return `${where}: ${d.severity}: ${d.message} [${d.rule}]`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === "error");
}

/**
 * Errors that `mesh check` reports but that the data plane already enforces safely (fail closed), so a
 * control plane must still serve the configuration that carries them. Refusing it would keep the last
 * good configuration, which is usually the LESS strict one: applying an L7 policy with no waypoint would
 * then silently leave traffic allowed. Every other error (syntax, schema, duplicates...) means the model
 * would not say what the user wrote, and the last good configuration keeps serving.
 */
export const ENFORCED_FAIL_CLOSED: ReadonlySet<string> = new Set([
  "l7-without-waypoint", // the destination ztunnel denies every connection
  "targetrefs-without-waypoint", // likewise
  "missing-waypoint", // the destination ztunnel admits only a waypoint that does not exist: nothing
  "waypoint-class", // the Gateway is not a waypoint: its destinations' L7 policies fail closed
  "policy-attachment", // ignored object; the policies it meant to bind fail closed
]);

/** Errors that make a configuration unservable (see ENFORCED_FAIL_CLOSED for the ones that do not). */
export function blockingErrors(ds: readonly Diagnostic[]): Diagnostic[] {
  return ds.filter((d) => d.severity === "error" && !ENFORCED_FAIL_CLOSED.has(d.rule));
}

/** Sorted by file, line, column, then rule, so output is stable whatever order the rules ran in. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) =>
    a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)
  );
}

/** "N errors, M warnings" (with singulars). */
export function summarize(ds: readonly Diagnostic[]): { errors: number; warnings: number; text: string } {
  const errors = ds.filter((d) => d.severity === "error").length;
  const warnings = ds.length - errors;
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
  return { errors, warnings, text: `${plural(errors, "error")}, ${plural(warnings, "warning")}` };
}
