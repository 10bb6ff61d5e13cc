/**
 * ServiceEntry and DestinationRule objects -> the model (src/model ServiceEntry, DestinationRule). Pure.
 * Istio semantics followed:
 * - `resolution` defaults to NONE, `location` to MESH_EXTERNAL; DNS_ROUND_ROBIN is DNS to mesh.
 * - Without `spec.addresses`, each non-wildcard host of an entry resolved STATIC or DNS gets a VIP from
 *   240.240.0.0/16 (NONE entries get none: their clients connect to the real address, as in Istio).
 * - A port's `targetPort` applies to endpoints without their own port of that name.
 * - istio.io/use-waypoint on the ServiceEntry (or its namespace) binds an egress waypoint, which must serve
 *   services (istio.io/waypoint-for service or all).
 */
import type { ClientTls, DestinationRule, Labels, ServiceEntry, ServiceEntryPort, SourceRef, WaypointBinding } from "../model/mod.ts";
import { allocateVips } from "../model/mod.ts";
import type { Entry, SpecOf } from "./entry.ts";

/** What normalize lends this file: its waypoint binding (labels, namespace) and object positions. */
export interface EgressContext {
  bind(labels: Labels, namespace: string): WaypointBinding | undefined;
  sourceOf(e: Entry): SourceRef | undefined;
}

type TlsSpec = NonNullable<NonNullable<SpecOf<"DestinationRule">["trafficPolicy"]>["tls"]>;

function located<T extends object>(e: Entry, o: T, ctx: EgressContext): T & { source?: SourceRef } {
  const source = ctx.sourceOf(e);
  if (source) (o as T & { source?: SourceRef }).source = source;
  return o;
}

/** Whether the entry's hosts get allocated VIPs. */
function wantsVips(spec: SpecOf<"ServiceEntry">): boolean {
  return !(spec.addresses ?? []).length && (spec.resolution ?? "NONE") !== "NONE";
}

export function serviceEntries(entries: readonly Entry<"ServiceEntry">[], ctx: EgressContext): ServiceEntry[] {
  const vips = allocateVips(
    entries.filter((e) => wantsVips(e.value.spec)).flatMap((e) => e.value.spec.hosts.filter((h) => !h.startsWith("*."))),
  );
  return entries.map((e) => serviceEntry(e, vips, ctx));
}

function serviceEntry(e: Entry<"ServiceEntry">, vips: Map<string, string>, ctx: EgressContext): ServiceEntry {
  const spec = e.value.spec;
  const labels: Labels = { ...(e.value.metadata.labels ?? {}) };
  const ports: ServiceEntryPort[] = (spec.ports ?? []).map((p) => {
    const out: ServiceEntryPort = { number: p.number, protocol: p.protocol ?? "TCP" };
    if (p.name) out.name = p.name;
    if (p.targetPort !== undefined) out.targetPort = p.targetPort;
    return out;
  });
  const resolution = spec.resolution === "DNS_ROUND_ROBIN" ? "DNS" : spec.resolution ?? "NONE";
  const se: ServiceEntry = {
    name: e.name,
    namespace: e.namespace,
    hosts: spec.hosts.map((h) => h.toLowerCase()),
    addresses: [...(spec.addresses ?? [])],
    vips: wantsVips(spec)
      ? spec.hosts.flatMap((h) => {
        const address = vips.get(h.toLowerCase());
        return address ? [{ host: h.toLowerCase(), address }] : [];
      })
      : [],
    ports,
    resolution,
    location: spec.location ?? "MESH_EXTERNAL",
    endpoints: (spec.endpoints ?? []).flatMap((ep) =>
      ep.address ? [{ address: ep.address, labels: { ...(ep.labels ?? {}) }, ...(ep.ports ? { ports: { ...ep.ports } } : {}) }] : []
    ),
    labels,
  };
  const wp = ctx.bind(labels, e.namespace);
  if (wp) se.waypoint = wp;
  return located(e, se, ctx);
}

function clientTls(t: TlsSpec): ClientTls {
  const out: ClientTls = { mode: t.mode ?? "DISABLE" };
  if (t.sni) out.sni = t.sni;
  if (t.caCertificates) out.caCertificates = t.caCertificates;
  return out;
}

export function destinationRule(e: Entry<"DestinationRule">, ctx: EgressContext): DestinationRule {
  const spec = e.value.spec;
  const tp = spec.trafficPolicy;
  const dr: DestinationRule = { name: e.name, namespace: e.namespace, host: spec.host.toLowerCase() };
  if (tp?.tls) dr.tls = clientTls(tp.tls);
  const perPort = (tp?.portLevelSettings ?? []).filter((s) => s.tls);
  if (perPort.length) dr.portTls = Object.fromEntries(perPort.map((s) => [s.port.number, clientTls(s.tls!)]));
  return located(e, dr, ctx);
}
