/**
 * The DNS side of the ztunnel role: its DNS proxy (./dns) with the upstream resolvers of this node
 * (--dns-upstream, else /etc/resolv.conf of the ztunnel's namespace), and the resolver the outbound path
 * uses for ServiceEntry hosts resolved by DNS. Without a proxy (`--dns-addr none`) the resolver still
 * works: DNS ServiceEntries do not depend on capturing pods' DNS.
 */
import { logger, splitAddr } from "../core/mod.ts";
import type { ModelIndex } from "../model/mod.ts";
import { readText } from "../platform/mod.ts";
import type { Registry } from "../telemetry/mod.ts";
import { CachingResolver, DnsMetrics, DnsProxy, type HostResolver, parseUpstreams, resolvConfServers, Upstream, type UpstreamServer } from "./dns/mod.ts";

const log = logger("ztunnel-dns");
const RESOLV_CONF = "/etc/resolv.conf";

export interface ZtunnelDns {
  /** The proxy's port, for the capture rules; undefined when no proxy runs. */
  readonly port: number | undefined;
  readonly resolver: HostResolver;
  listen(): Promise<void>;
  refreshAddresses(): void;
  stop(): Promise<void>;
}

function upstreamServers(spec: string | undefined): UpstreamServer[] {
  if (spec) return parseUpstreams(spec);
  try {
    return resolvConfServers(readText(RESOLV_CONF, "the node's resolver configuration"));
  } catch (e) {
    log.warn("no upstream resolver: names outside the mesh will not resolve", { error: (e as Error).message });
    return [];
  }
}

export function startDns(opts: { addr: string; upstream?: string; index: () => ModelIndex; registry: Registry }): ZtunnelDns {
  const upstream = new Upstream(upstreamServers(opts.upstream));
  const resolver = new CachingResolver(upstream);
  const enabled = opts.addr !== "none";
  const at = enabled ? splitAddr(opts.addr, 15053) : undefined;
  let proxy: DnsProxy | undefined;
  let refresh: ReturnType<typeof setInterval> | undefined;
  return {
    port: at?.port,
    resolver,
    async listen() {
      if (!at || proxy) return;
      proxy = await DnsProxy.start({ hostname: at.hostname, port: at.port, upstream, index: opts.index, metrics: new DnsMetrics(opts.registry) });
      // Pod links (and their gateway address) appear after start: bind the new addresses as they come.
      refresh = setInterval(() => proxy?.refreshAddresses(), 2000);
      (refresh as { unref?: () => void }).unref?.();
      log.info("DNS proxy listening", { addr: opts.addr, upstream: upstream.servers.map((s) => `${s.address}:${s.port}`) });
    },
    refreshAddresses() {
      proxy?.refreshAddresses();
    },
    async stop() {
      if (refresh) clearInterval(refresh);
      await proxy?.stop();
    },
  };
}
