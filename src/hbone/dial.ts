/**
 * Opens one HBONE client connection: TCP, TLS 1.3 with the source workload's certificate, the
 * server identity check, then the HTTP/2 preface.
 */
import type { Socket } from "bun";
import { ErrorCode } from "../core/mod.ts";
import { H2Connection, type H2Settings } from "./connection.ts";
import { HboneError } from "./errors.ts";
import { checkServerPeer, clientTlsOptions, type TlsMaterial } from "./tls.ts";

export interface DialOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  /** The server's certificate must carry one of these SPIFFE IDs. */
  expectedIdentities: readonly string[];
  settings?: Partial<H2Settings>;
  timeoutMs?: number;
}

interface DialData {
  conn: H2Connection | null;
  expected: readonly string[];
  settings?: Partial<H2Settings>;
  done: ((err: HboneError | null, conn?: H2Connection) => void) | null;
}

function fail(s: Socket<DialData>, err: HboneError): void {
  const done = s.data.done;
  s.data.done = null;
  done?.(err);
}

const handlers = {
  handshake(s: Socket<DialData>, _ok: boolean, authError: Error | null) {
    const d = s.data;
    if (!d.done) return;
    const [reason, identity] = checkServerPeer(s as never, authError, d.expected);
    if (reason) {
      const errCode = (authError as { code?: string } | null)?.code;
      const code = reason.startsWith("server identity")
        ? ErrorCode.IdentityInvalid
        : errCode === "ECONNRESET" || errCode === "EPIPE"
        ? ErrorCode.Unreachable // closed by the server before a certificate was seen
        : ErrorCode.CertificateInvalid;
      fail(s, new HboneError(code, `HBONE connection to ${s.remoteAddress}:${s.remotePort} refused: ${reason}`));
      s.terminate();
      return;
    }
    const conn = new H2Connection(s as never, { isClient: true, settings: d.settings });
    conn.peerIdentity = identity;
    conn.peerAddress = `${s.remoteAddress}:${s.remotePort}`;
    conn.localAddress = `${s.localAddress}:${s.localPort}`;
    d.conn = conn;
    conn.start();
    const done = d.done;
    d.done = null;
    done(null, conn);
  },
  data(s: Socket<DialData>, chunk: Uint8Array) {
    s.data.conn?.receive(chunk);
  },
  drain(s: Socket<DialData>) {
    s.data.conn?.writable();
  },
  end(s: Socket<DialData>) {
    const c = s.data.conn;
    if (c) c.transportClosed();
    else s.terminate();
  },
  close(s: Socket<DialData>, err?: Error) {
    fail(s, new HboneError(ErrorCode.Unreachable, `HBONE connection to ${s.remoteAddress}:${s.remotePort} closed during the TLS handshake${err ? `: ${err.message}` : " (certificate refused by the server?)"}`, { cause: err }));
    s.data.conn?.transportClosed(err);
  },
  error(s: Socket<DialData>, err: Error) {
    fail(s, new HboneError(ErrorCode.Unreachable, `HBONE connection failed: ${err.message}`, { cause: err }));
  },
  timeout(s: Socket<DialData>) {
    // Set only once the connection is closed on our side: the peer did not close its side in time.
    s.terminate();
  },
  connectError(s: Socket<DialData>, err: Error) {
    fail(s, new HboneError(ErrorCode.Unreachable, `Cannot connect to HBONE endpoint: ${err.message}`, { cause: err }));
  },
};

/** Dials `host:port` and resolves with a started client connection. */
export function dial(opts: DialOptions): Promise<H2Connection> {
  return new Promise<H2Connection>((resolve, reject) => {
    let sock: Socket<DialData> | undefined;
    const timer = setTimeout(() => {
      if (!data.done) return;
      data.done = null;
      sock?.terminate();
      reject(new HboneError(ErrorCode.Unreachable, `HBONE connection to ${opts.host}:${opts.port} timed out`));
    }, opts.timeoutMs ?? 10_000);
    const data: DialData = {
      conn: null,
      expected: opts.expectedIdentities,
      settings: opts.settings,
      done: (err, conn) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(conn!);
      },
    };
    Bun.connect<DialData>({
      hostname: opts.host,
      port: opts.port,
      data,
      tls: clientTlsOptions(opts.tls) as Bun.TLSOptions,
      socket: handlers,
    }).then((s) => {
      sock = s;
      if (!data.done) s.terminate(); // timed out while connecting
    }, (e) => data.done?.(new HboneError(ErrorCode.Unreachable, `Cannot connect to HBONE endpoint ${opts.host}:${opts.port}: ${(e as Error).message}`, { cause: e })));
  });
}
