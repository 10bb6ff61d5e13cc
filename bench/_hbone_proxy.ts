/**
 * The tunnel pairs bench/hbone.ts compares, each half in its own process (prints "ready"):
 *
 *   ours-server CERTS PORT                  our HBONE server; CONNECT -> TCP to :authority
 *   ours-client CERTS HBONE L:T [L:T...]    TCP on L -> our HBONE pool -> CONNECT 127.0.0.1:T
 *   h2node-server CERTS PORT                the same with Bun's node:http2
 *   h2node-client CERTS H2PORT L:T [...]    (one shared session, as the HBONE pair measured in docs/bun.md)
 *   tls-server CERTS P:T [P:T...]           plain mTLS tunnel on Bun TLS sockets: TLS on P -> TCP to T
 *   tls-client CERTS L:P [L:P...]           TCP on L -> a new mTLS connection to P per connection
 *
 * CERTS is a directory with ca.pem, server.pem, server-key.pem, client.pem, client-key.pem.
 * Both HTTP/2 pairs use HBONE's settings (4 MiB stream window, 16 MiB connection window where the
 * library allows it, TLS 1.3, ALPN h2, client certificates).
 */
import type { Socket } from "bun";
import http2 from "node:http2";
import net from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startClientHalf, startServerHalf } from "../src/hbone/_test_tunnel_pair.ts";
import { HbonePool } from "../src/hbone/mod.ts";
import { ALPN_H2, TLS13_ONLY } from "../src/hbone/mod.ts";

const [mode, certs, ...rest] = process.argv.slice(2);
// The bench asks for a full GC before it reads RSS, so that it measures live memory, not garbage.
process.on("SIGUSR2", () => Bun.gc(true));
process.on("SIGTERM", () => process.exit(0));
const HOST = "127.0.0.1";
const SERVER_ID = "spiffe://cluster.local/ns/bench/sa/server";
const read = (f: string) => readFileSync(join(certs, f), "utf8");
const server = { cert: read("server.pem"), key: read("server-key.pem"), ca: read("ca.pem") };
const client = { cert: read("client.pem"), key: read("client-key.pem"), ca: read("ca.pem") };
const pairs = (xs: string[]) => xs.map((x) => x.split(":").map(Number) as [number, number]);

// ---- a Bun socket <-> Bun socket splice, for the plain TLS tunnel ------------------------------

interface End {
  sock: Socket<End> | null;
  other: End;
  pending: Uint8Array | null;
  early: Uint8Array[];
  wantShutdown: boolean;
  didShutdown: boolean;
  closed: boolean;
}

function newPair(): [End, End] {
  const a = { sock: null, pending: null, early: [], wantShutdown: false, didShutdown: false, closed: false } as unknown as End;
  const b = { sock: null, pending: null, early: [], wantShutdown: false, didShutdown: false, closed: false } as unknown as End;
  a.other = b;
  b.other = a;
  return [a, b];
}

function send(to: End, chunk: Uint8Array): boolean {
  if (to.closed) return true;
  if (to.sock === null) {
    to.early.push(chunk);
    return true;
  }
  if (to.pending) {
    const m = new Uint8Array(to.pending.length + chunk.length);
    m.set(to.pending);
    m.set(chunk, to.pending.length);
    to.pending = m;
    return false;
  }
  const n = to.sock.write(chunk);
  if (n < chunk.length) {
    to.pending = chunk.subarray(Math.max(0, n));
    return false;
  }
  return true;
}

function maybeShutdown(e: End): void {
  if (e.wantShutdown && !e.didShutdown && !e.pending && e.sock && !e.closed) {
    e.didShutdown = true;
    e.sock.shutdown();
    if (e.other.didShutdown || e.other.closed) e.sock.end();
  }
}

const pipeHandlers: Bun.SocketHandler<End> = {
  open(s) {
    s.data.sock = s;
    s.setNoDelay?.(true);
    for (const c of s.data.early) send(s.data, c);
    s.data.early = [];
    maybeShutdown(s.data);
  },
  data(s, chunk) {
    if (!send(s.data.other, chunk)) s.pause();
  },
  drain(s) {
    const e = s.data;
    const p = e.pending;
    if (p) {
      e.pending = null;
      if (!send(e, p)) return;
    }
    maybeShutdown(e);
    e.other.sock?.resume();
  },
  end(s) {
    s.data.other.wantShutdown = true;
    maybeShutdown(s.data.other);
  },
  close(s, err) {
    const e = s.data;
    e.closed = true;
    if (!err && e.didShutdown) {
      // Bun quirk 3: after our shutdown(), the peer's FIN arrives as a clean close.
      e.other.wantShutdown = true;
      maybeShutdown(e.other);
      return;
    }
    if (!e.other.closed) e.other.sock?.terminate();
  },
  error() {},
};

// ---- modes -------------------------------------------------------------------------------------

if (mode === "ours-server") {
  startServerHalf({ port: Number(rest[0]), tls: server });
} else if (mode === "ours-client") {
  const pool = new HbonePool();
  for (const [l, t] of pairs(rest.slice(1))) {
    startClientHalf({ port: l, pool, hbone: `${HOST}:${rest[0]}`, authority: `${HOST}:${t}`, tls: client, expectedIdentities: [SERVER_ID] });
  }
} else if (mode === "h2node-server") {
  const srv = http2.createSecureServer({
    ...server,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
    settings: { initialWindowSize: 4 * 1024 * 1024, maxFrameSize: 1024 * 1024 },
  });
  srv.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    const [host, port] = String(headers[":authority"]).split(":");
    const up = net.connect({ host, port: Number(port), allowHalfOpen: true }, () => {
      stream.respond({ ":status": 200 });
      stream.pipe(up);
      up.pipe(stream);
    });
    up.on("error", () => stream.close(http2.constants.NGHTTP2_CONNECT_ERROR));
    stream.on("error", () => up.destroy());
  });
  srv.listen(Number(rest[0]), HOST);
} else if (mode === "h2node-client") {
  let session: http2.ClientHttp2Session | null = null;
  const getSession = () => {
    if (session && !session.closed && !session.destroyed) return session;
    session = http2.connect(`https://${HOST}:${rest[0]}`, {
      ...client,
      minVersion: "TLSv1.3",
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
      settings: { initialWindowSize: 4 * 1024 * 1024, maxFrameSize: 1024 * 1024 },
    });
    session.on("connect", (s) => s.setLocalWindowSize(16 * 1024 * 1024));
    session.on("error", () => {});
    return session;
  };
  for (const [l, t] of pairs(rest.slice(1))) {
    net.createServer({ allowHalfOpen: true }, (sock) => {
      sock.setNoDelay(true);
      const req = getSession().request({ ":method": "CONNECT", ":authority": `${HOST}:${t}` });
      req.on("response", () => {
        sock.pipe(req);
        req.pipe(sock);
      });
      req.on("error", () => sock.destroy());
      sock.on("error", () => req.close(http2.constants.NGHTTP2_CANCEL));
    }).listen(l, HOST);
  }
} else if (mode === "tls-server") {
  for (const [p, t] of pairs(rest)) {
    Bun.listen<End>({
      hostname: HOST,
      port: p,
      allowHalfOpen: true,
      tls: { ...server, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ALPN_H2, secureOptions: TLS13_ONLY } as Bun.TLSOptions,
      socket: {
        ...pipeHandlers,
        open(s) {
          const [a, b] = newPair();
          s.data = a;
          a.sock = s;
          Bun.connect<End>({ hostname: HOST, port: t, allowHalfOpen: true, data: b, socket: pipeHandlers }).catch(() => s.terminate());
        },
      },
    });
  }
} else if (mode === "tls-client") {
  for (const [l, p] of pairs(rest)) {
    Bun.listen<End>({
      hostname: HOST,
      port: l,
      allowHalfOpen: true,
      socket: {
        ...pipeHandlers,
        open(s) {
          s.setNoDelay(true);
          const [a, b] = newPair();
          s.data = a;
          a.sock = s;
          Bun.connect<End>({
            hostname: HOST,
            port: p,
            allowHalfOpen: true,
            data: b,
            tls: { ...client, ALPNProtocols: ALPN_H2, secureOptions: TLS13_ONLY, rejectUnauthorized: false } as Bun.TLSOptions,
            socket: pipeHandlers,
          }).catch(() => s.terminate());
        },
      },
    });
  }
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
console.log("ready");
