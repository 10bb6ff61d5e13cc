/**
 * Test and bench helper: the two halves of an HBONE TCP tunnel, as a ztunnel pair would run them.
 * The client half accepts plain TCP and opens a CONNECT stream per connection; the server half
 * terminates HBONE and dials the :authority over TCP. Both join their two streams with the shared copy.
 */
import { logger, parseHostPort } from "../core/mod.ts";
import { type CopyOwner, dialTcp, listenTcp, StreamCopy, type TcpListener } from "../stream/mod.ts";
import type { H2Settings } from "./connection.ts";
import type { HbonePool } from "./pool.ts";
import { HboneServer } from "./server.ts";
import type { TlsMaterial } from "./tls.ts";

const log = logger("hbone");

/** Nobody to tell: the copy just runs. */
const UNOWNED: CopyOwner = { copyDone() {} };

/** HBONE server that forwards every accepted CONNECT to its :authority over TCP. */
export function startServerHalf(opts: {
  hostname?: string;
  port?: number;
  tls: TlsMaterial;
  settings?: Partial<H2Settings>;
  /** Told of each copy as it starts (tests watch counts and abort). */
  onCopy?: (c: StreamCopy) => void;
  owner?: CopyOwner;
}): HboneServer {
  return HboneServer.listen({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    tls: opts.tls,
    settings: opts.settings,
    onStream(stream) {
      const target = parseHostPort(stream.authority);
      if (!target) return stream.respond(400);
      dialTcp(target.host, target.port).then((upstream) => {
        if (stream.closed) return upstream.reset();
        stream.respond(200);
        const c = new StreamCopy(stream, upstream, opts.owner ?? UNOWNED);
        opts.onCopy?.(c);
      }, () => stream.respond(503));
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
  onCopy?: (c: StreamCopy) => void;
  owner?: CopyOwner;
}): TcpListener {
  return listenTcp({ hostname: opts.hostname ?? "127.0.0.1", port: opts.port ?? 0 }, (client) => {
    opts.pool.connect({
      address: opts.hbone,
      authority: opts.authority,
      headers: { forwarded: `for="${client.remoteAddress}:${client.socket.remotePort}"`, ...opts.headers },
      tls: opts.tls,
      expectedIdentities: opts.expectedIdentities,
    }).then((tunnel) => {
      const c = new StreamCopy(client, tunnel, opts.owner ?? UNOWNED);
      opts.onCopy?.(c);
    }, (e) => {
      log.debug("tunnel refused", { error: (e as Error).message });
      client.reset();
    });
  });
}
