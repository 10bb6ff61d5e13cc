/**
 * HBONE: HTTP/2 CONNECT tunnels over mutual TLS (TLS 1.3, ALPN h2, SPIFFE identities), the
 * transport between ztunnels and waypoints (DESIGN.md "HBONE", reference/HBONE.md).
 *
 * Our own HTTP/2 (RFC 9113) and HPACK (RFC 7541) on Bun's TLS sockets, limited to what HBONE needs
 * but correct against any conforming peer.
 *
 * Server (ztunnel inbound, waypoint):
 * @example
 * const server = HboneServer.listen({
 *   port: 15008,
 *   // per connection, before the handshake: pick the destination workload's certificate
 *   tls: ({ fd, localAddress }) => certFor(originalDst(fd)),   // undefined -> connection closed
 *   onStream(stream) {
 *     // stream.authority "10.0.0.7:8080", stream.headers.forwarded, stream.peerIdentity "spiffe://..."
 *     if (!allowed(stream.peerIdentity)) return stream.respond(401);
 *     stream.respond(200);
 *     stream.on("data", (b) => { if (!upstream.write(b)) stream.pause(); });
 *     stream.on("end", () => upstream.end());           // half-close travels on
 *   },
 * });
 *
 * Client (ztunnel outbound, waypoint):
 * @example
 * const pool = new HbonePool();
 * const stream = await pool.connect({ address: "10.0.0.7:15008", authority: "10.0.0.7:8080",
 *   headers: { forwarded: 'for="10.0.0.3"', baggage }, tls: sourceCert,
 *   expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/api"] });   // HboneError.status on 401/503
 *
 * node:http on a tunnel (waypoint):
 * @example
 * httpServer.emit("connection", toDuplex(stream));
 *
 * A Bun TCP socket spliced to a tunnel, with backpressure and half-close both ways (BUN-NOTES 3 handled):
 * @example
 * Bun.listen<SocketSplice>({ hostname, port, allowHalfOpen: true, socket: { ...spliceHandlers,
 *   open(sock) { const sp = new SocketSplice(sock); sock.data = sp;
 *     pool.connect(opts).then((stream) => sp.attach(stream), () => sock.terminate()); } } });
 *
 * Streams: `write(buf)` returns false -> wait for "drain"; `pause()`/`resume()`; `end()` half-closes;
 * events "data", "end" (peer half-closed), "drain", "close" (error set when reset); `reset(code)`.
 * Bytes wait (holding the peer's window) until a "data" listener or a sink is attached.
 */
export { HboneServer } from "./server.ts";
export type { ConnectionInfo, HboneServerOptions, HboneServerStats, ServerTls } from "./server.ts";
export { HbonePool } from "./pool.ts";
export type { HboneConnectOptions, HbonePoolOptions } from "./pool.ts";
export { HboneStream } from "./stream.ts";
export type { HboneStreamEvents, StreamSink } from "./stream.ts";
export { toDuplex } from "./duplex.ts";
export { HboneError } from "./errors.ts";
export { H2Code, HBONE } from "./constants.ts";
export type { H2Settings } from "./connection.ts";
export { identityOfCert, spiffeIdsFromSan } from "./tls.ts";
export type { TlsMaterial } from "./tls.ts";
export { SocketSplice, spliceHandlers } from "./splice.ts";
export { ALPN_H2, TLS13_ONLY } from "./tls.ts";
