/**
 * Test and bench helper: the two halves of an HBONE TCP tunnel, as a ztunnel pair would run them.
 * The client half accepts plain TCP and opens a CONNECT stream per connection; the server half
 * terminates HBONE and dials the :authority over TCP. Both splice with SocketSplice.
 */
import type { Socket, TCPSocketListener } from "bun";
import { logger, parseHostPort } from "../core/mod.ts";
import type { H2Settings } from "./connection.ts";
import { HbonePool } from "./pool.ts";
import { HboneServer } from "./server.ts";
import { SocketSplice, spliceHandlers } from "./splice.ts";
import type { TlsMaterial } from "./tls.ts";

const log = logger("hbone");

/** One handler object for every upstream socket; the socket's data is its SocketSplice. */
const upstreamHandlers: Bun.SocketHandler<SocketSplice> = {
  ...spliceHandlers,
  open(s) {
    const splice = s.data;
    splice.bind(s as Socket<unknown>);
    const stream = splice.stream!;
    if (stream.closed) return s.terminate();
    stream.respond(200);
    splice.attach(stream);
  },
  connectError(s) {
    s.data.stream?.respond(503);
  },
};

/** HBONE server that forwards every accepted CONNECT to its :authority over TCP. */
export function startServerHalf(opts: {
  hostname?: string;
  port?: number;
  tls: TlsMaterial;
  settings?: Partial<H2Settings>;
}): HboneServer {
  return HboneServer.listen({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    tls: opts.tls,
    settings: opts.settings,
    onStream(stream) {
      const target = parseHostPort(stream.authority);
      if (!target) return stream.respond(400);
      const splice = new SocketSplice();
      splice.stream = stream;
      Bun.connect<SocketSplice>({
        hostname: target.host,
        port: target.port,
        allowHalfOpen: true,
        data: splice,
        socket: upstreamHandlers,
      }).catch(() => stream.respond(503));
    },
  });
}

/** TCP listener that tunnels each accepted connection to `authority` through `hbone`. */
export function startClientHalf(opts: {
  hostname?: string;
  port?: number;
  pool: HbonePool;
  hbone: string;
  authority: string;
  tls: TlsMaterial;
  expectedIdentities: string[];
  headers?: Record<string, string>;
}): TCPSocketListener<SocketSplice> {
  return Bun.listen<SocketSplice>({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    allowHalfOpen: true,
    socket: {
      ...spliceHandlers,
      open(s) {
        const splice = new SocketSplice(s as Socket<unknown>);
        s.data = splice;
        s.setNoDelay(true);
        opts.pool.connect({
          address: opts.hbone,
          authority: opts.authority,
          headers: { forwarded: `for="${s.remoteAddress}:${s.remotePort}"`, ...opts.headers },
          tls: opts.tls,
          expectedIdentities: opts.expectedIdentities,
        }).then((stream) => splice.attach(stream), (e) => {
          log.debug("tunnel refused", { error: (e as Error).message });
          s.terminate();
        });
      },
    },
  });
}
