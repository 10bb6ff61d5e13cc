/**
 * The ztunnel's DNS proxy on 15053, UDP and TCP: the node's capture rules send its ambient pods' DNS
 * (port 53, both protocols) here. A query for a mesh name (./names.ts) is answered from the mesh's view:
 * A records, and an empty answer for AAAA (the mesh has IPv4 addresses only, and an error would make a
 * resolver give up on the name). Every other query is forwarded to the node's upstream resolver as it
 * came (./upstream.ts), and its answer passed back; a UDP client whose answer does not fit (512 bytes, or
 * its EDNS size) gets it truncated with TC set and asks again over TCP, which is served here too.
 * A message that cannot be read is dropped and counted: a pod must not be able to stop the proxy.
 *
 * UDP replies must leave from the address the client's packet was redirected to (conntrack then turns
 * it back into the resolver's address the pod asked). The kernel picks a reply's source by route, which
 * in node mode is not the redirect address, so besides the wildcard socket the proxy binds one socket
 * per local IPv4 address (`refreshAddresses` after links are added): a packet arrives on, and is
 * answered from, the socket of its own destination address.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { logger } from "../../core/mod.ts";
import {
  aRecordData,
  answerTo,
  CLASS_IN,
  DnsFormatError,
  type DnsMessage,
  parseMessage,
  RCODE,
  truncatedAnswer,
  TYPE,
  udpLimitOf,
} from "../../dns/mod.ts";
import type { ModelIndex } from "../../model/mod.ts";
import type { DnsMetrics } from "./metrics.ts";
import { meshName } from "./names.ts";
import { type Upstream, UpstreamError } from "./upstream.ts";

const log = logger("ztunnel-dns");

/** TTL of the mesh's own answers (Istio's ztunnel uses 30 s too). */
export const MESH_TTL_S = 30;
/** A TCP client idle this long is closed. */
const TCP_IDLE_MS = 10_000;
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

export interface DnsProxyOptions {
  hostname: string;
  port: number;
  upstream: Upstream;
  /** The current view of the mesh. */
  index: () => ModelIndex;
  metrics: DnsMetrics;
}

export type DnsProtocol = "udp" | "tcp";

/**
 * The answer to one message (no sockets: the listeners below and the tests call it). Undefined: drop it
 * (unreadable, or not a query).
 */
export async function answerQuery(
  opts: Pick<DnsProxyOptions, "upstream" | "index" | "metrics">,
  raw: Uint8Array,
  client: string,
  protocol: DnsProtocol,
): Promise<Uint8Array | undefined> {
  let query: DnsMessage;
  try {
    query = parseMessage(raw);
  } catch (e) {
    if (!(e instanceof DnsFormatError)) throw e;
    opts.metrics.malformed.inc({ request_protocol: protocol });
    log.debug("malformed DNS message dropped", { client, error: e.message });
    return undefined;
  }
  if (query.header.response) {
    opts.metrics.malformed.inc({ request_protocol: protocol });
    return undefined;
  }
  const index = opts.index();
  const w = index.workloadByAddress(client);
  const q = query.questions[0];
  const count = (answer: string) =>
    opts.metrics.requests.inc({
      source_workload: w?.name ?? "unknown",
      source_workload_namespace: w?.namespace ?? "unknown",
      request_protocol: protocol,
      request_query_type: q ? TYPE_NAMES[q.type] ?? String(q.type) : "none",
      answer,
    });
  if (query.header.opcode !== 0 || query.questions.length !== 1 || !q) {
    count("formerr");
    return answerTo(query, [], query.header.opcode !== 0 ? RCODE.NOTIMP : RCODE.FORMERR);
  }
  const mesh = q.class === CLASS_IN && (q.type === TYPE.A || q.type === TYPE.AAAA) ? meshName(index, q.name, w?.namespace) : undefined;
  let answer: Uint8Array;
  if (mesh) {
    count("mesh");
    const records = q.type === TYPE.A
      ? mesh.addresses.map((a) => ({ name: q.name, type: TYPE.A, class: CLASS_IN, ttl: MESH_TTL_S, data: aRecordData(a) }))
      : [];
    answer = answerTo(query, records);
  } else {
    const started = performance.now();
    opts.metrics.upstreamRequests.inc({ request_protocol: protocol });
    try {
      answer = (await opts.upstream.exchange(raw, { tcp: protocol === "tcp" })).answer;
      opts.metrics.upstreamDuration.observe({}, performance.now() - started);
      count("forwarded");
    } catch (e) {
      const reason = e instanceof UpstreamError ? e.reason : "error";
      opts.metrics.upstreamFailures.inc({ reason });
      count("servfail");
      log.warn("upstream resolver did not answer", { name: q.name, client, error: (e as Error).message });
      answer = answerTo(query, [], RCODE.SERVFAIL);
    }
  }
  if (protocol === "udp" && answer.length > udpLimitOf(query)) {
    try {
      return truncatedAnswer(answer);
    } catch {
      return answerTo(query, [], RCODE.SERVFAIL);
    }
  }
  return answer;
}

export class DnsProxy {
  readonly #opts: DnsProxyOptions;
  readonly #udp = new Map<string, UdpSocket>();
  readonly #tcp: Server;
  readonly #clients = new Set<Socket>();
  #stopped = false;

  private constructor(opts: DnsProxyOptions, tcp: Server) {
    this.#opts = opts;
    this.#tcp = tcp;
  }

  /** Listens on UDP and TCP; resolves once both are bound. */
  static async start(opts: DnsProxyOptions): Promise<DnsProxy> {
    const tcp = createServer();
    const proxy = new DnsProxy(opts, tcp);
    tcp.on("connection", (s) => proxy.#serveTcp(s));
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      // Shared with an overlapping restart of the ztunnel, as its other listeners are (UDP: reuseAddr).
      tcp.listen({ host: opts.hostname, port: opts.port, reusePort: true } as Parameters<Server["listen"]>[0], () => {
        tcp.off("error", reject);
        tcp.on("error", (e) => log.warn("DNS proxy TCP listener error", { error: e.message }));
        resolve();
      });
    });
    try {
      await proxy.#bindUdp(opts.hostname);
      proxy.refreshAddresses();
    } catch (e) {
      await proxy.stop();
      throw e;
    }
    return proxy;
  }

  get port(): number {
    return (this.#tcp.address() as { port: number }).port;
  }

  /** Binds a UDP socket to every local IPv4 address not bound yet (a wildcard listener only). */
  refreshAddresses(): void {
    if (this.#stopped || (this.#opts.hostname !== "0.0.0.0" && this.#opts.hostname !== "")) return;
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        if (a.family !== "IPv4" || this.#udp.has(a.address)) continue;
        this.#bindUdp(a.address).catch((e) => log.warn("DNS proxy cannot listen on a local address", { address: a.address, error: (e as Error).message }));
      }
    }
  }

  #bindUdp(address: string): Promise<void> {
    const sock = createSocket({ type: "udp4", reuseAddr: true });
    this.#udp.set(address, sock);
    sock.on("message", (msg, rinfo) => {
      answerQuery(this.#opts, new Uint8Array(msg), rinfo.address, "udp").then(
        (answer) => {
          if (answer && !this.#stopped) sock.send(answer, rinfo.port, rinfo.address);
        },
        (e) => log.error("DNS query failed", { error: (e as Error).message }),
      );
    });
    return new Promise((resolve, reject) => {
      sock.once("error", (e) => {
        this.#udp.delete(address);
        reject(e);
      });
      sock.bind(this.#opts.port || this.port, address, () => {
        sock.removeAllListeners("error");
        sock.on("error", (e) => log.warn("DNS proxy UDP socket error", { address, error: e.message }));
        resolve();
      });
    });
  }

  /** Length-prefixed messages (RFC 1035 §4.2.2), several per connection, answered in order. */
  #serveTcp(s: Socket): void {
    const client = (s.remoteAddress ?? "").replace(/^::ffff:/, "");
    this.#clients.add(s);
    s.setTimeout(TCP_IDLE_MS, () => s.destroy());
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    s.on("data", (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + msg.length);
        chain = chain.then(async () => {
          const answer = await answerQuery(this.#opts, msg, client, "tcp");
          if (!answer) {
            // A stream that carried garbage cannot be resynchronised.
            s.destroy();
            return;
          }
          const framed = Buffer.alloc(2 + answer.length);
          framed.writeUInt16BE(answer.length, 0);
          framed.set(answer, 2);
          if (!s.destroyed) s.write(framed);
        }).catch((e) => {
          log.error("DNS query failed", { error: (e as Error).message });
          s.destroy();
        });
      }
    });
    s.on("error", () => {});
    s.on("close", () => this.#clients.delete(s));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#udp.values()) {
      try {
        s.close();
      } catch { /* not bound */ }
    }
    this.#udp.clear();
    for (const c of this.#clients) c.destroy();
    await new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
  }
}
