/**
 * `mesh describe serviceentry NAMESPACE/NAME`: what the mesh does with traffic to a ServiceEntry's hosts:
 * the addresses the ztunnel's DNS proxy answers (spec addresses or allocated VIPs), where connections go
 * (its resolution and endpoints), the egress waypoint, and what that waypoint applies (AuthorizationPolicies
 * by targetRefs, HTTPRoutes by parentRef, the TLS a DestinationRule originates). Pure.
 */
import type { ModelIndex, ServiceEntry } from "../model/mod.ts";
import { authorizationPoliciesFor, entryService } from "../model/mod.ts";
import { routesForServiceEntry } from "../route/mod.ts";

export interface ServiceEntryDescription {
  kind: "ServiceEntry";
  namespace: string;
  name: string;
  /** Each host with the addresses the DNS proxy answers for it (none: left to the upstream resolver). */
  hosts: { host: string; addresses: string[] }[];
  resolution: ServiceEntry["resolution"];
  location: ServiceEntry["location"];
  ports: string[];
  endpoints: string[];
  waypoint: { gateway: string; exists: boolean } | null;
  policies: { policy: string; action: string; source: string | null }[];
  routes: string[];
  /** Per host and port: the TLS the egress waypoint originates (DestinationRule). */
  tls: { host: string; port: number; mode: string; sni: string; caCertificates: string | null; rule: string }[];
  source: string | null;
  warnings: string[];
}

export function describeServiceEntry(index: ModelIndex, se: ServiceEntry): ServiceEntryDescription {
  const warnings: string[] = [];
  const reg = index.registry;
  const hosts = se.hosts.map((host) => ({ host, addresses: reg.addressesOf({ entry: se, host }) }));
  const wp = se.waypoint ? { gateway: se.waypoint.gateway, exists: index.waypointByKey(se.waypoint.gateway) !== undefined } : null;
  if (wp && !wp.exists) warnings.push(`waypoint ${wp.gateway} does not exist: every connection to its hosts is refused`);
  const waypoint = wp?.exists ? index.waypointByKey(wp.gateway) : undefined;
  const policies = waypoint
    ? authorizationPoliciesFor(index, { serviceEntry: se, waypoint }).map((p) => ({
      policy: `${p.namespace}/${p.name}`,
      action: p.action,
      source: p.source ? `${p.source.file}:${p.source.line}:${p.source.col}` : null,
    }))
    : [];
  const routes = new Set<string>();
  const tls: ServiceEntryDescription["tls"] = [];
  for (const host of se.hosts) {
    const at = { entry: se, host };
    for (const p of se.ports) {
      for (const r of routesForServiceEntry(index.model.httpRoutes, at, entryService(at), p.number)) routes.add(`${r.namespace}/${r.name}`);
      const t = reg.clientTls(host, p.number);
      if (t && t.tls.mode === "SIMPLE") {
        tls.push({ host, port: p.number, mode: t.tls.mode, sni: t.tls.sni || host, caCertificates: t.tls.caCertificates ?? null, rule: `${t.rule.namespace}/${t.rule.name}` });
      }
    }
  }
  if (!wp && (routes.size || tls.length)) warnings.push("HTTPRoutes and TLS origination act at an egress waypoint, and this ServiceEntry has none (label istio.io/use-waypoint)");
  if (hosts.every((h) => !h.addresses.length)) warnings.push("no host has an address the DNS proxy can answer: clients resolve them upstream and connect to the real addresses");
  return {
    kind: "ServiceEntry",
    namespace: se.namespace,
    name: se.name,
    hosts,
    resolution: se.resolution,
    location: se.location,
    ports: se.ports.map((p) => `${p.number}${p.name ? `/${p.name}` : ""} ${p.protocol}${p.targetPort ? ` -> ${p.targetPort}` : ""}`),
    endpoints: se.endpoints.map((e) => `${e.address}${e.ports ? ` (${Object.entries(e.ports).map(([k, v]) => `${k}:${v}`).join(", ")})` : ""}`),
    waypoint: wp,
    policies,
    routes: [...routes],
    tls,
    source: se.source ? `${se.source.file}:${se.source.line}:${se.source.col}` : null,
    warnings,
  };
}

export function formatServiceEntry(d: ServiceEntryDescription): string {
  const l = [`ServiceEntry ${d.namespace}/${d.name}${d.source ? `  (${d.source})` : ""}`];
  l.push(`  resolution ${d.resolution}, ${d.location}; ports ${d.ports.join(", ")}`);
  for (const h of d.hosts) l.push(`  host ${h.host}: ${h.addresses.length ? `DNS proxy answers ${h.addresses.join(", ")}` : "left to the upstream resolver"}`);
  if (d.endpoints.length) l.push(`  endpoints: ${d.endpoints.join(", ")}`);
  l.push(`  egress waypoint: ${d.waypoint ? `${d.waypoint.gateway}${d.waypoint.exists ? "" : " (missing)"}` : "none: the source ztunnel connects directly"}`);
  for (const p of d.policies) l.push(`  policy ${p.policy} (${p.action})${p.source ? `  ${p.source}` : ""}`);
  for (const r of d.routes) l.push(`  HTTPRoute ${r}`);
  for (const t of d.tls) l.push(`  TLS to ${t.host} (port ${t.port}): ${t.mode}, SNI ${t.sni}, CA ${t.caCertificates ?? "system roots"} (DestinationRule ${t.rule})`);
  if (d.warnings.length) l.push("", "Warnings:", ...d.warnings.map((w) => `  ! ${w}`));
  return l.join("\n") + "\n";
}
