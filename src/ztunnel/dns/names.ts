/**
 * Which names the ztunnel's DNS proxy answers itself, and with which addresses (pure, over the ztunnel's
 * view of the mesh). Istio's ztunnel answers the same set:
 * - Service names: `name` (in the client's own namespace), `name.ns`, `name.ns.svc`,
 *   `name.ns.svc.cluster.local`; the answer is the ClusterIP, or the ready endpoints of a headless Service.
 * - ServiceEntry hosts: exact, or covered by a wildcard; the answer is the host's VIP or the entry's own
 *   addresses. A host with no address to give (a wildcard without addresses) is left to the upstream.
 * - A name that a Kubernetes resolver built by appending one of the client's search domains
 *   (`<ns>.svc.cluster.local`, `svc.cluster.local`, `cluster.local`) to a ServiceEntry host is answered
 *   for that host, so a pod with `ndots:5` gets the mesh's answer on its first try.
 * Everything else goes to the upstream resolver.
 */
import type { ModelIndex, Service } from "../../model/mod.ts";

const CLUSTER_DOMAIN = "cluster.local";

export interface MeshName {
  /** What the name resolved to, for logs and metrics: "Service shop/api" or "ServiceEntry shop/partner". */
  what: string;
  /** IPv4 addresses of the answer (may be empty: the name is the mesh's, with no IPv4 address). */
  addresses: string[];
}

function serviceAddresses(index: ModelIndex, s: Service): string[] {
  if (s.vip) return [s.vip];
  const out: string[] = [];
  for (const e of s.endpoints) {
    const w = index.workloadByUid(e.workloadUid);
    if (w?.ready) out.push(...w.addresses);
  }
  return out;
}

function ipv4(addresses: string[]): string[] {
  return addresses.filter((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a));
}

function service(index: ModelIndex, name: string, clientNamespace: string | undefined): Service | undefined {
  const labels = name.split(".");
  if (labels.length === 1) return clientNamespace ? index.serviceByName(clientNamespace, labels[0]!) : undefined;
  const rest = labels.slice(2).join(".");
  if (rest !== "" && rest !== "svc" && rest !== `svc.${CLUSTER_DOMAIN}`) return undefined;
  return index.serviceByName(labels[1]!, labels[0]!);
}

function entry(index: ModelIndex, name: string): MeshName | undefined {
  const at = index.registry.byHost(name);
  if (!at) return undefined;
  const addresses = ipv4(index.registry.addressesOf(at));
  // A wildcard without addresses, or resolution NONE without any: the real address is the upstream's.
  if (!addresses.length) return undefined;
  return { what: `ServiceEntry ${at.entry.namespace}/${at.entry.name}`, addresses };
}

/** The mesh's answer for `name` asked by a client of `clientNamespace`, or undefined to forward it. */
export function meshName(index: ModelIndex, name: string, clientNamespace: string | undefined): MeshName | undefined {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (!n) return undefined;
  const direct = entry(index, n);
  if (direct) return direct;
  const s = service(index, n, clientNamespace);
  if (s) return { what: `Service ${s.namespace}/${s.name}`, addresses: ipv4(serviceAddresses(index, s)) };
  const searches = [clientNamespace && `${clientNamespace}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN];
  for (const suffix of searches) {
    if (!suffix || !n.endsWith(`.${suffix}`)) continue;
    const base = n.slice(0, -(suffix.length + 1));
    // Only hosts with a dot: a single label under a search domain is a Service name, handled above.
    if (base.includes(".")) {
      const e = entry(index, base);
      if (e) return e;
    }
  }
  return undefined;
}
