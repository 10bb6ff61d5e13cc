/**
 * HBONE: HTTP/2 CONNECT tunnels over mutual TLS (TLS 1.3, ALPN h2, SPIFFE identities), the
 * transport between ztunnels and waypoints (docs/hbone.md).
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
 * A tunnel is a ByteStream (src/stream): node:http serves on it through src/stream's toDuplex,
 * @example
 * httpServer.emit("connection", toDuplex(stream));
 *
 * and one copy joins it to a TCP socket:
 * @example
 * listenTcp({ hostname, port }, (client) => pool.connect(opts).then(
 *   (tunnel) => new StreamCopy(client, tunnel, owner), () => client.reset()));
 *
 * Streams: `write(buf)` returns false -> wait for "drain"; `pause()`/`resume()`; `end()` half-closes;
 * events "data", "end" (peer half-closed), "drain", "close" (error set when reset); `reset(code)`.
 * Bytes wait (holding the peer's window) until a "data" listener or a consumer (`bind`) is attached.
 */
export { HboneServer } from "./server.ts";
export type { ConnectionInfo, HboneServerOptions, HboneServerStats, ServerTls } from "./server.ts";
export { HbonePool } from "./pool.ts";
export type { HboneConnectOptions, HbonePoolOptions } from "./pool.ts";
export { HboneStream } from "./stream.ts";
export type { HboneStreamEvents } from "./stream.ts";
export { HboneError } from "./errors.ts";
export { H2Code, HBONE } from "./constants.ts";
export type { H2Settings } from "./connection.ts";
export { identityOfCert, spiffeIdsFromSan } from "./tls.ts";
export type { TlsMaterial } from "./tls.ts";
export { ALPN_H2, TLS13_ONLY } from "./tls.ts";
