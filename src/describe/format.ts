/** The text form of a description (`mesh describe --format text`). */
import { formatServiceEntry, type ServiceEntryDescription } from "./service_entry.ts";
import type { ConnectionRow, PolicyPlacementRow, ServiceDescription, WorkloadDescription } from "./types.ts";

const row = (lines: string[], k: string, v: string) => lines.push(`  ${k.padEnd(14)}${v}`);

function policies(lines: string[], rows: PolicyPlacementRow[]) {
  lines.push("", "Policies:");
  if (!rows.length) {
    lines.push("  (none apply: every connection from the mesh is allowed)");
    return;
  }
  for (const p of rows) {
    lines.push(`  ${p.kind} ${p.policy}${p.action ? ` ${p.action}` : ""} [${p.layer}], ${p.attachment}${p.source ? ` (${p.source})` : ""}`);
    lines.push(`      ${p.effect}`);
    for (const at of p.enforcedAt) lines.push(`      at ${at}`);
  }
}

function connections(lines: string[], rows: ConnectionRow[] | null) {
  lines.push("", "Recent connections:");
  if (rows === null) {
    lines.push("  (offline: no access log read; run against a live control plane, or give --access-log FILE)");
    return;
  }
  if (!rows.length) {
    lines.push("  (none in the access logs read)");
    return;
  }
  for (const c of rows) {
    const arrow = c.direction === "inbound" ? "<-" : "->";
    const verdict = c.result.replace(/^\w+/, (w) => w.toUpperCase());
    const by = `${c.proxy ?? "(unknown proxy)"}${c.reporter ? ` (${c.reporter})` : ""}`;
    lines.push(`  ${c.time}  ${by.padEnd(29)} ${arrow} ${c.peer}: ${verdict}${c.request ? ` ${c.request}` : ""}${c.reason ? `: ${c.reason}` : ""}${c.id ? `  [id ${c.id}${c.tunnelId ? `, tunnel ${c.tunnelId}` : ""}]` : ""}`);
  }
}

export function formatWorkload(d: WorkloadDescription): string {
  const l: string[] = [];
  l.push(`${d.kind} ${d.namespace}/${d.name}${d.source ? `  (${d.source})` : ""}`);
  row(l, "address", d.addresses.join(", ") || "(none)");
  row(l, "node", d.node || "(none)");
  row(l, "identity", `${d.identity} (service account ${d.serviceAccount})`);
  const c = d.certificate;
  row(l, "certificate", c.issued === null ? "issued at run time (offline: not asked)" : c.issued ? `expires ${c.notAfter} (${c.expires}), held by ${c.heldBy}` : "NOT ISSUED yet");
  l.push("", `Captured: ${d.capture.captured ? (d.capture.effective === false ? "YES in the configuration, but NOT SERVED now" : "YES") : "NO"}`);
  for (const r of d.capture.reasons) l.push(`  - ${r}`);
  if (d.ztunnel) {
    l.push("", `Managed by: ${d.ztunnel.proxy}${d.capture.captured ? "" : " (would be, once enrolled)"}`);
    l.push(`  ${d.ztunnel.state}`);
  }
  l.push("", "Services:");
  if (!d.services.length) l.push("  (none selects it)");
  for (const s of d.services) {
    l.push(`  ${s.host}${s.vip ? ` ${s.vip}` : ""}  ports ${s.ports.join(", ")}${s.waypoint ? `  waypoint ${s.waypoint.gateway}` : ""}`);
  }
  l.push("", "Waypoint:");
  if (!d.waypoints.length) l.push("  (none: L7 policies cannot be enforced for it; L4 ones are enforced by its ztunnel)");
  for (const w of d.waypoints) {
    l.push(`  ${w.gateway} for ${w.servesFor}, via ${w.via}`);
    l.push(`      ${w.state}`);
  }
  for (const n of d.waypointNotes) l.push(`  note: ${n}`);
  l.push("", "Inbound traffic:");
  for (const p of d.inbound) l.push(`  via ${p.via}: ${p.summary}`);
  policies(l, d.policies);
  const pa = d.peerAuthentication;
  l.push("", `PeerAuthentication: ${pa.mode}, decided by ${pa.decidedBy}`);
  for (const p of pa.ports) l.push(`  port ${p.port}: ${p.mode}`);
  l.push(`  ${pa.meaning}`);
  connections(l, d.connections);
  return footer(l, d);
}

export function formatService(d: ServiceDescription): string {
  const l: string[] = [];
  l.push(`Service ${d.name}.${d.namespace} (${d.hostname})${d.source ? `  (${d.source})` : ""}`);
  row(l, "address", d.vip ?? "(headless)");
  row(l, "ports", d.ports.join(", ") || "(none)");
  row(l, "selector", d.selector ? Object.entries(d.selector).map(([k, v]) => `${k}=${v}`).join(",") : "(none)");
  l.push("", "Waypoint:");
  if (d.waypoint) {
    l.push(`  ${d.waypoint.gateway}, via ${d.waypoint.via}`);
    l.push(`      ${d.waypoint.state}`);
  } else l.push("  (none: traffic goes from ztunnel to ztunnel; L7 policies and HTTPRoutes cannot act)");
  for (const n of d.waypointNotes) l.push(`  note: ${n}`);
  l.push("", "Endpoints:");
  if (!d.endpoints.length) l.push("  (none)");
  for (const e of d.endpoints) {
    l.push(`  ${e.kind} ${e.workload} on ${e.node || "(no node)"} ${e.addresses.join(", ")}  ports ${e.ports.join(", ")}  ${e.captured ? "captured" : "NOT captured"}${e.ready ? "" : ", NOT ready"}`);
    l.push(`      ${e.path.summary}`);
  }
  policies(l, d.policies);
  if (d.routes.length) {
    l.push("", "HTTPRoutes:");
    for (const r of d.routes) l.push(`  ${r.route}: ${r.effect}${r.source ? ` (${r.source})` : ""}`);
  }
  connections(l, d.connections);
  return footer(l, d);
}

export function formatDescription(d: WorkloadDescription | ServiceDescription | ServiceEntryDescription): string {
  return d.kind === "ServiceEntry" ? formatServiceEntry(d) : d.kind === "Service" ? formatService(d) : formatWorkload(d);
}

/** Warnings and the source of the description, last in every description. */
function footer(l: string[], d: { warnings: string[]; basedOn: string }): string {
  if (d.warnings.length) {
    l.push("", "Warnings:");
    for (const w of d.warnings) l.push(`  ! ${w}`);
  }
  l.push("", `Based on ${d.basedOn}.`);
  return l.join("\n") + "\n";
}
