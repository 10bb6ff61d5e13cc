/** The text form of an Explanation (`mesh explain --format text`). */
import type { Explanation } from "./explain.ts";

/**
 * Renders an explanation for a terminal: the request, the path through the mesh hop by hop, then the
 * verdict (decision, status, who decided, policy, route, backend).
 */
export function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  const src = e.source.workload
    ? `${e.source.workload}${e.source.address ? ` (${e.source.address})` : ""}${e.source.node ? ` on ${e.source.node}` : ""}`
    : e.source.address ?? "(no workload)";
  const dst = e.destination.service
    ? `Service ${e.destination.service} port ${e.destination.port}${e.destination.address ? ` (${e.destination.address})` : ""}`
    : `${e.destination.workload ?? e.destination.address}:${e.destination.port}`;
  lines.push(`${e.request.method} ${e.request.path} (Host ${e.request.host})`);
  lines.push(`  from ${src}${e.source.identity ? `, identity ${e.source.identity}` : ", no mesh identity"}${e.source.inMesh ? "" : " (outside the mesh)"}`);
  lines.push(`  to   ${dst}${e.destination.waypoint ? `, served by waypoint ${e.destination.waypoint}` : ""}`);
  lines.push("");
  lines.push("Path:");
  if (e.hops.length === 0) lines.push("  (no mesh proxy on the path)");
  e.hops.forEach((h, i) => {
    lines.push(`  ${i + 1}. ${h.name}${h.decided ? "  <- decides" : ""}`);
    for (const s of h.steps) lines.push(`       ${s}`);
  });
  lines.push("");
  const status = e.status === null ? (e.decision === "allow" ? "connection passed through (L4)" : "connection refused") : String(e.status);
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(12)}${v}`);
  lines.push("Verdict:");
  row("decision", `${e.decision.toUpperCase()} (${status})`);
  row("enforced by", e.enforcedBy === "waypoint" && e.waypoint ? `waypoint ${e.waypoint}` : e.enforcedBy);
  row("policy", e.policy ? `${e.policy}${e.rule !== null ? ` rule ${e.rule}` : ""}` : "(none)");
  if (e.authentication) {
    const a = e.authentication;
    row("token", a.status === "ok" ? `valid: ${a.principal}` : a.status === "invalid" ? `invalid: ${a.error}` : "none presented");
  }
  if (e.route) {
    const r = e.route;
    const name = r.name ? `HTTPRoute ${r.namespace}/${r.name} rule ${r.ruleIndex}${r.ruleName ? ` (${r.ruleName})` : ""}${r.source ? ` at ${r.source}` : ""}` : "";
    row("route", r.via === "default" ? "none attached: to the Service itself" : r.via === "none" ? `no rule matches (${r.error ?? "404"})` : name + (r.error ? `: ${r.error}` : ""));
  }
  if (e.filters.length) row("filters", e.filters.map((f) => `${f.type}${f.level === "backend" ? " (backendRef)" : ""}`).join(", "));
  if (e.redirect) row("redirect", `${e.redirect.status} Location: ${e.redirect.location}`);
  if (e.backend) {
    const b = e.backend;
    const at = b.workload ? ` -> ${b.workload}${b.address ? ` ${b.address}:${b.targetPort ?? b.port}` : ""}` : "";
    row("backend", `${b.service ? `${b.service}:${b.port}` : ""}${at}`.trim());
    const extra: string[] = [];
    if (b.timeoutMs !== undefined) extra.push(`timeout ${b.timeoutMs}ms`);
    if (b.backendTimeoutMs !== undefined) extra.push(`per-try timeout ${b.backendTimeoutMs}ms`);
    if (b.retry) extra.push(`retry ${b.retry.attempts}x on ${b.retry.codes.length ? b.retry.codes.join(",") : "connection errors"}`);
    if (b.mirrors?.length) extra.push(`mirrored to ${b.mirrors.join(", ")}`);
    if (extra.length) row("", extra.join("; "));
  }
  row("reason", e.reason);
  for (const w of e.warnings) row("warning", w);
  return lines.join("\n") + "\n";
}
