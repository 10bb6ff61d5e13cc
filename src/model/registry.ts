/**
 * The registry of destinations outside the Kubernetes Services: ServiceEntry hosts and addresses, and the
 * DestinationRules for them. Pure lookups, built once per configuration version beside the model index.
 *
 * Istio semantics followed:
 * - A host is matched exactly first; otherwise by the longest wildcard (`*.example.com` matches
 *   `api.example.com` and `a.b.example.com`, not `example.com`).
 * - `spec.addresses` (addresses or CIDR blocks) belong to every host of the entry; without them each
 *   non-wildcard host has its own allocated VIP.
 * - A DestinationRule applies to the host it names (exact, or a wildcard covering it); a port's
 *   portLevelSettings TLS wins over the rule's TLS.
 */
import type { ClientTls, DestinationRule, MeshModel, Service, ServiceEntry } from "./types.ts";

/** A ServiceEntry as reached through one of its hosts. */
export interface RegistryHost {
  entry: ServiceEntry;
  host: string;
}

export interface Registry {
  /** The entry (and host) an address belongs to: an allocated VIP, a spec address or CIDR, or a STATIC endpoint. */
  byAddress(ip: string): RegistryHost | undefined;
  /** The entry for a name (exact host, then the longest matching wildcard). */
  byHost(name: string): RegistryHost | undefined;
  /** The addresses a DNS answer gives for a host: the entry's spec addresses (not CIDRs) or its VIP. */
  addressesOf(h: RegistryHost): string[];
  /** The client TLS a DestinationRule asks for towards `host` on `port`, if any. */
  clientTls(host: string, port: number): { tls: ClientTls; rule: DestinationRule } | undefined;
}

/** Does `pattern` (a host or `*.suffix`) cover `name`? */
export function hostMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase().replace(/\.$/, "");
  if (!p.startsWith("*.")) return p === n;
  return n.endsWith(p.slice(1)) && n.length > p.length - 1;
}

function parseV4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** An IPv4 CIDR test; IPv6 blocks compare as exact addresses only. */
function inBlock(ip: string, block: string): boolean {
  const slash = block.indexOf("/");
  if (slash < 0) return ip === block;
  const base = parseV4(block.slice(0, slash));
  const a = parseV4(ip);
  const bits = Number(block.slice(slash + 1));
  if (base === undefined || a === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((base & mask) >>> 0);
}

/** Pick the most specific of several matching patterns: exact beats wildcard, longer wildcard beats shorter. */
function specificity(pattern: string): number {
  return pattern.startsWith("*.") ? pattern.length : 10_000 + pattern.length;
}

export function buildRegistry(model: MeshModel): Registry {
  const entries = model.serviceEntries ?? [];
  const rules = model.destinationRules ?? [];
  const byAddr = new Map<string, RegistryHost>();
  const blocks: { block: string; at: RegistryHost }[] = [];
  const exact = new Map<string, RegistryHost>();
  const wildcards: { pattern: string; at: RegistryHost }[] = [];
  for (const entry of entries) {
    for (const host of entry.hosts) {
      const at = { entry, host };
      const key = host.toLowerCase();
      if (key.startsWith("*.")) wildcards.push({ pattern: key, at });
      else if (!exact.has(key)) exact.set(key, at);
    }
    const first = { entry, host: entry.hosts[0] ?? entry.name };
    for (const a of entry.addresses) {
      if (a.includes("/")) blocks.push({ block: a, at: first });
      else if (!byAddr.has(a)) byAddr.set(a, first);
    }
    for (const v of entry.vips) if (!byAddr.has(v.address)) byAddr.set(v.address, { entry, host: v.host });
    if (entry.resolution === "STATIC") {
      for (const ep of entry.endpoints) if (!byAddr.has(ep.address)) byAddr.set(ep.address, first);
    }
  }
  wildcards.sort((a, b) => specificity(b.pattern) - specificity(a.pattern));
  return {
    byAddress(ip) {
      return byAddr.get(ip) ?? blocks.find((b) => inBlock(ip, b.block))?.at;
    },
    byHost(name) {
      const n = name.toLowerCase().replace(/\.$/, "");
      return exact.get(n) ?? wildcards.find((w) => hostMatches(w.pattern, n))?.at;
    },
    addressesOf(h) {
      if (h.entry.addresses.length) return h.entry.addresses.filter((a) => !a.includes("/"));
      const v = h.entry.vips.find((x) => x.host === h.host.toLowerCase());
      return v ? [v.address] : [];
    },
    clientTls(host, port) {
      let best: DestinationRule | undefined;
      for (const r of rules) {
        if (!hostMatches(r.host, host)) continue;
        if (!best || specificity(r.host.toLowerCase()) > specificity(best.host.toLowerCase())) best = r;
      }
      if (!best) return undefined;
      const tls = best.portTls?.[port] ?? best.tls;
      return tls ? { tls, rule: best } : undefined;
    },
  };
}

const entryServices = new WeakMap<ServiceEntry, Map<string, Service>>();
const serviceOrigins = new WeakMap<Service, RegistryHost>();

/**
 * A ServiceEntry host as a Service (its host as hostname, its ports, its waypoint), so an egress waypoint
 * and `mesh explain` run the request path of Services on it. One object per entry and host.
 */
export function entryService(at: RegistryHost): Service {
  let byHost = entryServices.get(at.entry);
  if (!byHost) entryServices.set(at.entry, (byHost = new Map()));
  let svc = byHost.get(at.host);
  if (!svc) {
    const se = at.entry;
    svc = {
      name: se.name,
      namespace: se.namespace,
      hostname: at.host,
      ports: se.ports.map((p) => ({
        port: p.number,
        ...(p.name ? { name: p.name } : {}),
        targetPort: p.targetPort ?? p.number,
        protocol: "TCP" as const,
        appProtocol: p.protocol.toLowerCase(),
      })),
      endpoints: [],
      labels: se.labels,
      ...(se.waypoint ? { waypoint: se.waypoint } : {}),
    };
    byHost.set(at.host, svc);
    serviceOrigins.set(svc, at);
  }
  return svc;
}

/** The ServiceEntry host a Service was made from (entryService), if it was. */
export function entryOfService(svc: Service | undefined): RegistryHost | undefined {
  return svc && serviceOrigins.get(svc);
}
