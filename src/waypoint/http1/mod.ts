/** HTTP/1.1 inside a tunnel: the downstream reader, the upstream pool and the forwarding between them. */
export { Http1Downstream, type Http1Request } from "./downstream.ts";
export { requestHead } from "./forward.ts";
export { serveHttp1 } from "./serve.ts";
export { Http1Upstream, Http1UpstreamPool } from "./upstream.ts";
