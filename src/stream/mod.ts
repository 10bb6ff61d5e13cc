/**
 * Byte streams and the copy between them: the data path every proxy shares. A TCP socket, a TLS
 * socket and an HBONE tunnel all take the one ByteStream shape (src/hbone's HboneStream implements
 * it; ./socket.ts adapts Bun sockets), and one bidirectional copy joins any two of them with
 * half-close, backpressure, byte counts and abort handled once.
 *
 * @example
 * const listener = listenTcp({ hostname: "127.0.0.1", port: 15001 }, async (client) => {
 *   const upstream = await dialTcp("10.0.0.7", 8080).catch(() => undefined);
 *   if (!upstream) return client.reset();
 *   new StreamCopy(client, upstream, { copyDone: (c) => report(c.received, c.sent, c.error) });
 * });
 */
export type { ByteStream, StreamEvents } from "./byte_stream.ts";
export { copyBidirectional, StreamCopy } from "./copy.ts";
export { toDuplex } from "./duplex.ts";
export type { CopyLeftovers, CopyOwner, CopyResult } from "./copy.ts";
export { dialTcp, listenTcp, plainAddress, SocketStream, socketHandlers } from "./socket.ts";
export type { DialOptions, SocketTls, TcpListener } from "./socket.ts";
