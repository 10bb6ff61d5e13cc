/**
 * The node's resolver, as the DNS proxy reaches it: a query goes over UDP to each upstream server in
 * turn (each with the timeout); an answer with TC set is asked again over TCP (RFC 7766), so the proxy
 * always holds the whole answer and decides itself whether its own client needs TCP. The ztunnel's own
 * sockets are never captured (node mode: OUTPUT path), so this cannot loop back into the proxy.
 */
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { parseHeader } from "../../dns/mod.ts";

export interface UpstreamServer {
  address: string;
  port: number;
}

export class UpstreamError extends Error {
  constructor(message: string, readonly reason: "timeout" | "error") {
    super(message);
  }
}

/** `nameserver` lines of a resolv.conf text (port 53). */
export function resolvConfServers(text: string): UpstreamServer[] {
  const out: UpstreamServer[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push({ address: m[1]!.replace(/%.*$/, ""), port: 53 });
  }
  return out;
}

/** "ip", "ip:port" or "[v6]:port" list, comma separated (--dns-upstream). */
export function parseUpstreams(spec: string): UpstreamServer[] {
  return spec.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    if (v6) return { address: v6[1]!, port: Number(v6[2] ?? 53) };
    const m = /^([^:]+)(?::(\d+))?$/.exec(s);
    if (m) return { address: m[1]!, port: Number(m[2] ?? 53) };
    return { address: s, port: 53 };
  });
}

export interface ExchangeResult {
  answer: Uint8Array;
  server: UpstreamServer;
  /** The UDP answer was truncated and the whole one came over TCP. */
  viaTcp: boolean;
}

export class Upstream {
  constructor(readonly servers: UpstreamServer[], readonly timeoutMs = 2000) {}

  /** The answer to a query (raw bytes in, raw bytes out), from the first server that answers. */
  async exchange(query: Uint8Array, opts: { tcp?: boolean } = {}): Promise<ExchangeResult> {
    if (!this.servers.length) throw new UpstreamError("no upstream resolver configured", "error");
    let last: unknown;
    for (const server of this.servers) {
      try {
        if (opts.tcp) return { answer: await tcpExchange(server, query, this.timeoutMs), server, viaTcp: true };
        const answer = await udpExchange(server, query, this.timeoutMs);
        if (parseHeader(answer).truncated) {
          return { answer: await tcpExchange(server, query, this.timeoutMs), server, viaTcp: true };
        }
        return { answer, server, viaTcp: false };
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof UpstreamError ? last : new UpstreamError(String((last as Error)?.message ?? last), "error");
  }
}

function udpExchange(server: UpstreamServer, query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  const id = (query[0]! << 8) | query[1]!;
  return new Promise((resolve, reject) => {
    const sock = createSocket(server.address.includes(":") ? "udp6" : "udp4");
    const done = (f: () => void) => {
      clearTimeout(timer);
      try {
        sock.close();
      } catch { /* already closed */ }
      f();
    };
    const timer = setTimeout(() => done(() => reject(new UpstreamError(`no answer from ${server.address}:${server.port} within ${timeoutMs} ms`, "timeout"))), timeoutMs);
    sock.on("error", (e) => done(() => reject(new UpstreamError(`${server.address}:${server.port}: ${e.message}`, "error"))));
    sock.on("message", (msg, rinfo) => {
      // Only the server's answer to this query counts (a stray or spoofed datagram is ignored).
      if (rinfo.port !== server.port || msg.length < 12 || ((msg[0]! << 8) | msg[1]!) !== id) return;
      done(() => resolve(new Uint8Array(msg)));
    });
    sock.send(query, server.port, server.address);
  });
}

/** One query over TCP: two-byte length prefix each way (RFC 1035 §4.2.2). */
function tcpExchange(server: UpstreamServer, query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: server.address, port: server.port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(`no TCP answer from ${server.address}:${server.port} within ${timeoutMs} ms`, "timeout"));
    }, timeoutMs);
    s.on("connect", () => {
      const framed = Buffer.alloc(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      framed.set(query, 2);
      s.write(framed);
    });
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        s.destroy();
        resolve(new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(new UpstreamError(`${server.address}:${server.port} (TCP): ${e.message}`, "error"));
    });
    s.on("close", () => {
      clearTimeout(timer);
      reject(new UpstreamError(`${server.address}:${server.port} (TCP) closed before answering`, "error"));
    });
  });
}
