/**
 * The waypoint as an egress waypoint: it serves the ServiceEntries bound to it (istio.io/use-waypoint)
 * the way it serves Services, so policy, routing and telemetry run unchanged on a Service made from the
 * entry (its host as hostname, its ports). What differs lives here:
 * - the endpoint: a STATIC endpoint (round robin), the host itself (resolution DNS: resolved when
 *   connecting, cached for the record's TTL), or the address the client dialed (NONE);
 * - policy: AuthorizationPolicies attached by targetRefs kind ServiceEntry (and to the waypoint itself)
 *   decide; the endpoint is no mesh workload, so no selector or namespace policy applies to it;
 * - routes: HTTPRoutes with a parentRef of kind ServiceEntry; their backend is the entry itself;
 * - TLS origination: a DestinationRule for the host with `tls.mode: SIMPLE` (per port too) makes the
 *   waypoint speak TLS to it, with SNI `sni` (default the host) and the server's certificate verified
 *   against `caCertificates` (default: the system's roots) and the host name.
 */
import { resolve4 } from "node:dns/promises";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { formatHostPort } from "../core/mod.ts";
import type { ClientTls, HttpRoute, ModelIndex, RegistryHost, Service, ServiceEntry, ServiceEntryPort, Workload } from "../model/mod.ts";
import { entryOfService, entryService } from "../model/mod.ts";
import { routesForServiceEntry } from "../route/mod.ts";
import { readText } from "../platform/mod.ts";
import { type ByteStream, dialTcp, SocketStream, socketHandlers } from "../stream/mod.ts";

/** What a tunnel to a ServiceEntry address carries beside its (synthetic) Service. */
export interface ExternalDestination {
  at: RegistryHost;
  port: ServiceEntryPort;
  /** The DestinationRule's TLS for this host and port, when it originates TLS. */
  tls?: ClientTls;
}

const workloads = new WeakMap<ServiceEntry, Workload>();

/** The Service the request path sees for a ServiceEntry host (model entryService). */
export const externalService: (at: RegistryHost) => Service = entryService;

/** The ServiceEntry host behind a Service of the request path, when it is one. */
export const externalOf: (svc: Service | undefined) => RegistryHost | undefined = entryOfService;

/** The destination of an endpoint outside the mesh: never ambient, so it is dialed as plain TCP (or TLS). */
function externalWorkload(se: ServiceEntry): Workload {
  let w = workloads.get(se);
  if (!w) {
    w = {
      uid: `ServiceEntry/${se.namespace}/${se.name}`,
      kind: "WorkloadEntry",
      name: se.name,
      namespace: se.namespace,
      serviceAccount: "",
      identity: "",
      node: "",
      addresses: [],
      labels: se.labels,
      ambient: false,
      ports: [],
      ready: true,
    };
    workloads.set(se, w);
  }
  return w;
}

/** An endpoint of an external destination; `resolveHost` set: the address is looked up when connecting. */
export interface ExternalEndpoint {
  workload: Workload;
  ip: string;
  port: number;
  resolveHost?: string;
}

/** The next endpoint for `svc` (a ServiceEntry's) port `servicePort`, for a tunnel that dialed `dialed`. */
export function externalEndpoint(at: RegistryHost, servicePort: number, dialed: string, next: (n: number) => number): ExternalEndpoint | undefined {
  const se = at.entry;
  const port = se.ports.find((p) => p.number === servicePort);
  if (!port) return undefined;
  const target = port.targetPort ?? port.number;
  const workload = externalWorkload(se);
  switch (se.resolution) {
    case "STATIC": {
      if (!se.endpoints.length) return undefined;
      const ep = se.endpoints[next(se.endpoints.length)]!;
      return { workload, ip: ep.address, port: (port.name && ep.ports?.[port.name]) || target };
    }
    case "DNS":
      return { workload, ip: "", port: target, resolveHost: at.host };
    case "NONE":
      return { workload, ip: dialed, port: target };
  }
}

/**
 * Who policy is evaluated for: for an external host, the policies attached to its ServiceEntry (and to
 * the waypoint), never a workload's or a Service's; otherwise the endpoint's workload and the Service.
 */
export function policyDestination(endpoint: { workload: Workload } | undefined, svc: Service | undefined): {
  workload?: Workload;
  service?: Service;
  serviceEntry?: ServiceEntry;
} {
  const ext = externalOf(svc);
  return ext ? { serviceEntry: ext.entry } : { workload: endpoint?.workload, service: svc };
}

const routeMemo = new WeakMap<ModelIndex, Map<string, HttpRoute[]>>();

/** The HTTPRoutes attached to the entry behind `svc`, as routes of `svc` (route routesForServiceEntry), per version. */
export function externalRoutes(index: ModelIndex, svc: Service, port: number): HttpRoute[] {
  const at = externalOf(svc);
  if (!at) return [];
  let memo = routeMemo.get(index);
  if (!memo) routeMemo.set(index, (memo = new Map()));
  const key = `${at.entry.namespace}/${at.entry.name}/${at.host}:${port}`;
  let routes = memo.get(key);
  if (!routes) memo.set(key, (routes = routesForServiceEntry(index.model.httpRoutes, at, svc, port)));
  return routes;
}

const dnsCache = new Map<string, { addresses: string[]; until: number }>();

/** A host's IPv4 addresses from the waypoint's resolver, kept for the answer's TTL (at least 1 s). */
async function resolveHost(host: string): Promise<string[]> {
  const hit = dnsCache.get(host);
  if (hit && hit.until > Date.now()) return hit.addresses;
  const records = await resolve4(host, { ttl: true });
  if (!records.length) throw new Error(`${host} has no IPv4 address`);
  const ttl = Math.max(1, Math.min(3600, Math.min(...records.map((r) => r.ttl))));
  const addresses = records.map((r) => r.address);
  if (dnsCache.size > 10_000) dnsCache.clear();
  dnsCache.set(host, { addresses, until: Date.now() + ttl * 1000 });
  return addresses;
}

/**
 * Connects to an external endpoint: plain TCP, or TLS originated for `host` when `tls` says SIMPLE. The
 * TLS handshake must verify (chain against the CA, name against the SNI) before a byte is sent.
 */
export async function dialExternal(endpoint: ExternalEndpoint, host: string, tls: ClientTls | undefined, timeoutMs: number): Promise<ByteStream> {
  const addresses = endpoint.resolveHost ? await resolveHost(endpoint.resolveHost) : [endpoint.ip];
  let last: unknown;
  for (const ip of addresses) {
    try {
      if (!tls || tls.mode !== "SIMPLE") return await dialTcp(ip, endpoint.port, { timeoutMs });
      return await dialTls(ip, endpoint.port, tls, host, timeoutMs);
    } catch (e) {
      last = e;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

function dialTls(ip: string, port: number, tls: ClientTls, host: string, timeoutMs: number): Promise<ByteStream> {
  const serverName = tls.sni || host;
  const ca = tls.caCertificates ? readText(tls.caCertificates, "the DestinationRule's caCertificates") : undefined;
  const target = formatHostPort(ip, port);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      reject(new Error(`TLS to ${serverName} at ${target}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no handshake within ${timeoutMs} ms`), timeoutMs);
    Bun.connect<SocketStream | undefined>({
      hostname: ip,
      port,
      allowHalfOpen: true,
      data: undefined,
      tls: { serverName, ...(ca ? { ca } : {}), rejectUnauthorized: true },
      socket: {
        ...socketHandlers,
        handshake(s, success, authorizationError) {
          clearTimeout(timer);
          if (settled) return void s.terminate();
          if (!success || authorizationError) {
            s.terminate();
            return fail(`the server's certificate does not verify (${authorizationError?.message ?? "handshake failed"})`);
          }
          const cert = s.getPeerCertificate() as unknown as PeerCertificate;
          const mismatch = checkServerIdentity(serverName, cert);
          if (mismatch) {
            s.terminate();
            return fail(mismatch.message);
          }
          settled = true;
          const stream = new SocketStream(s);
          s.setNoDelay(true);
          resolve(stream);
        },
        connectError(_s, error) {
          clearTimeout(timer);
          fail(error.message);
        },
        close(s, error) {
          if (!settled) {
            clearTimeout(timer);
            fail(`closed during the handshake (the server's certificate did not verify against the CA, or the server hung up)${error ? `: ${error.message}` : ""}`);
          }
          socketHandlers.close(s, error);
        },
      },
    }).catch((e) => fail((e as Error).message));
  });
}
