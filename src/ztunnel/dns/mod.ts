/**
 * The ztunnel's DNS proxy (15053, UDP and TCP): answers Service and ServiceEntry names from the mesh's
 * view and forwards the rest to the node's resolver; and the resolver of DNS-resolved ServiceEntry hosts.
 */
export { answerQuery, DnsProxy, type DnsProxyOptions, MESH_TTL_S } from "./server.ts";
export { DnsMetrics } from "./metrics.ts";
export { meshName, type MeshName } from "./names.ts";
export { parseUpstreams, resolvConfServers, Upstream, UpstreamError, type UpstreamServer } from "./upstream.ts";
export { CachingResolver, type HostResolver } from "./resolver.ts";
