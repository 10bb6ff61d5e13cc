/**
 * The DNS proxy over real sockets on loopback: mesh names answered from the model, other names forwarded
 * to a fake upstream (UDP and TCP), truncation, upstream failure, and garbage that must not stop it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import {
  aRecordAddress,
  aRecordData,
  answerTo,
  CLASS_IN,
  encodeQuery,
  parseMessage,
  RCODE,
  TYPE,
} from "../../dns/mod.ts";
import { indexModel } from "../../model/mod.ts";
import { Registry } from "../../telemetry/mod.ts";
import { meshModel as model, service, serviceEntry, workload as pod } from "../../../test/support/mod.ts";
import { CachingResolver, DnsMetrics, DnsProxy, parseUpstreams, resolvConfServers, Upstream } from "./mod.ts";

const client = pod("web", "shop", "127.0.0.1", "n1");
const partner = serviceEntry("partner", "shop", ["api.partner.example"], { vips: [{ host: "api.partner.example", address: "240.240.7.7" }] });
const index = indexModel(model({
  workloads: [client],
  services: [service("api", "shop", "10.96.0.5", [{ port: 80, targetPort: 8080 }], [])],
  serviceEntries: [partner],
}));

/** A fake upstream: "ext.example" -> 192.0.2.1 (TTL 2); "big.example" too big for UDP (TC), whole over TCP. */
class FakeUpstream {
  udp = createSocket("udp4");
  tcp: Server = createServer();
  queries: string[] = [];
  port = 0;
  silent = false;
  answer(raw: Uint8Array, viaTcp: boolean): Uint8Array {
    const q = parseMessage(raw);
    const name = q.questions[0]!.name;
    this.queries.push(`${viaTcp ? "tcp" : "udp"}:${name}`);
    if (name === "ext.example") return answerTo(q, [{ name, type: TYPE.A, class: CLASS_IN, ttl: 2, data: aRecordData("192.0.2.1") }]);
    if (name === "big.example") {
      const records = Array.from({ length: 60 }, (_, i) => ({ name, type: TYPE.A, class: CLASS_IN, ttl: 60, data: aRecordData(`192.0.2.${i + 1}`) }));
      if (!viaTcp) {
        const full = parseMessage(answerTo(q, []));
        return new Uint8Array([...answerTo(full, []).subarray(0, 2), 0x82, 0x80, ...answerTo(full, []).subarray(4)]);
      }
      return answerTo(q, records);
    }
    return answerTo(q, [], RCODE.NXDOMAIN);
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.tcp.listen(0, "127.0.0.1", () => r()));
    this.port = (this.tcp.address() as { port: number }).port;
    this.tcp.on("connection", (s) => {
      let buf = Buffer.alloc(0);
      s.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const a = this.answer(new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0))), true);
          const f = Buffer.alloc(2 + a.length);
          f.writeUInt16BE(a.length, 0);
          f.set(a, 2);
          s.end(f);
        }
      });
    });
    this.udp.on("message", (m, r) => {
      if (!this.silent) this.udp.send(this.answer(new Uint8Array(m), false), r.port, r.address);
    });
    await new Promise<void>((r) => this.udp.bind(this.port, "127.0.0.1", () => r()));
  }
  stop(): void {
    this.udp.close();
    this.tcp.close();
  }
}

function udpAsk(port: number, bytes: Uint8Array, timeoutMs = 3000): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on("message", (m) => {
      clearTimeout(t);
      s.close();
      resolve(new Uint8Array(m));
    });
    s.send(bytes, port, "127.0.0.1");
  });
}

function tcpAsk(port: number, bytes: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    let buf = Buffer.alloc(0);
    s.on("connect", () => {
      const f = Buffer.alloc(2 + bytes.length);
      f.writeUInt16BE(bytes.length, 0);
      f.set(bytes, 2);
      s.write(f);
    });
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.destroy();
        resolve(new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    s.on("error", reject);
    s.on("close", () => reject(new Error("closed without an answer")));
  });
}

const addresses = (bytes: Uint8Array | undefined) => parseMessage(bytes!).answers.map((r) => aRecordAddress(r.data));

describe("ztunnel DNS proxy", () => {
  const upstream = new FakeUpstream();
  const registry = new Registry();
  const metrics = new DnsMetrics(registry);
  let proxy: DnsProxy;

  beforeAll(async () => {
    await upstream.start();
    proxy = await DnsProxy.start({
      hostname: "127.0.0.1",
      port: 0,
      upstream: new Upstream([{ address: "127.0.0.1", port: upstream.port }], 300),
      index: () => index,
      metrics,
    });
  });
  afterAll(async () => {
    await proxy.stop();
    upstream.stop();
  });

  test.each([
    ["api", "10.96.0.5"],
    ["api.shop", "10.96.0.5"],
    ["api.shop.svc", "10.96.0.5"],
    ["api.shop.svc.cluster.local", "10.96.0.5"],
    ["API.Shop.svc.cluster.local", "10.96.0.5"],
    ["api.partner.example", "240.240.7.7"],
    ["api.partner.example.shop.svc.cluster.local", "240.240.7.7"],
  ])("A %s -> %s, from the mesh (the upstream never asked)", async (name, ip) => {
    const before = upstream.queries.length;
    const a = await udpAsk(proxy.port, encodeQuery(11, name, TYPE.A));
    const m = parseMessage(a!);
    expect(m.header).toMatchObject({ id: 11, response: true, rcode: RCODE.NOERROR });
    expect(addresses(a)).toEqual([ip]);
    expect(m.answers[0]!.ttl).toBe(30);
    expect(upstream.queries.length).toBe(before);
  });

  test("AAAA of a mesh name is an empty NOERROR answer", async () => {
    const m = parseMessage((await udpAsk(proxy.port, encodeQuery(12, "api.partner.example", TYPE.AAAA)))!);
    expect(m.header.rcode).toBe(RCODE.NOERROR);
    expect(m.answers).toEqual([]);
  });

  test("other names go to the upstream, its answer comes back as it was", async () => {
    expect(addresses(await udpAsk(proxy.port, encodeQuery(13, "ext.example", TYPE.A)))).toEqual(["192.0.2.1"]);
    expect(parseMessage((await udpAsk(proxy.port, encodeQuery(14, "nope.example", TYPE.A)))!).header.rcode).toBe(RCODE.NXDOMAIN);
    expect(upstream.queries).toContain("udp:ext.example");
    expect(metrics.requests.value({ source_workload: "web", source_workload_namespace: "shop", request_protocol: "udp", request_query_type: "A", answer: "forwarded" })).toBe(2);
  });

  test("a truncated upstream answer is fetched over TCP; a UDP client gets TC, a TCP client the whole answer", async () => {
    const udp = parseMessage((await udpAsk(proxy.port, encodeQuery(15, "big.example", TYPE.A)))!);
    expect(udp.header.truncated).toBe(true);
    expect(udp.answers).toEqual([]);
    expect(upstream.queries).toContain("tcp:big.example");
    const tcp = parseMessage(await tcpAsk(proxy.port, encodeQuery(16, "big.example", TYPE.A)));
    expect(tcp.header.truncated).toBe(false);
    expect(tcp.answers.length).toBe(60);
    expect(tcp.header.id).toBe(16);
  });

  test("an upstream that does not answer: SERVFAIL after the timeout, counted", async () => {
    upstream.silent = true;
    try {
      const started = performance.now();
      const m = parseMessage((await udpAsk(proxy.port, encodeQuery(17, "ext.example", TYPE.A)))!);
      expect(m.header.rcode).toBe(RCODE.SERVFAIL);
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect(metrics.upstreamFailures.value({ reason: "timeout" })).toBe(1);
    } finally {
      upstream.silent = false;
    }
  });

  test("fuzz: random and cut packets are dropped and counted, and the proxy keeps answering", async () => {
    let s = 14;
    const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    const valid = encodeQuery(18, "api.shop", TYPE.A);
    const sock = createSocket("udp4");
    for (let i = 0; i < 500; i++) {
      const b = i % 2
        ? Uint8Array.from({ length: Math.floor(rand() * 60) }, () => Math.floor(rand() * 256))
        : valid.subarray(0, Math.floor(rand() * (valid.length - 1)));
      sock.send(b, proxy.port, "127.0.0.1");
    }
    // Garbage over TCP too: a frame of junk, and the proxy closes that connection.
    await expect(tcpAsk(proxy.port, Uint8Array.from([1, 2, 3]))).rejects.toThrow(/closed without an answer/);
    await Bun.sleep(200);
    sock.close();
    expect(metrics.malformed.value({ request_protocol: "udp" })).toBeGreaterThan(200);
    expect(addresses(await udpAsk(proxy.port, valid))).toEqual(["10.96.0.5"]);
    expect(addresses(await tcpAsk(proxy.port, valid))).toEqual(["10.96.0.5"]);
  });

  test("the resolver of DNS ServiceEntries caches for the record's TTL", async () => {
    let now = 1_000_000;
    const r = new CachingResolver(new Upstream([{ address: "127.0.0.1", port: upstream.port }], 300), () => now);
    const before = upstream.queries.filter((q) => q === "udp:ext.example").length;
    expect(await r.resolve("ext.example")).toEqual(["192.0.2.1"]);
    expect(await r.resolve("EXT.example")).toEqual(["192.0.2.1"]);
    now += 2500; // past the TTL of 2 s
    expect(await r.resolve("ext.example")).toEqual(["192.0.2.1"]);
    expect(upstream.queries.filter((q) => q === "udp:ext.example").length - before).toBe(2);
    await expect(r.resolve("nope.example")).rejects.toThrow(/rcode 3/);
  });
});

describe("upstream configuration", () => {
  test("resolv.conf nameservers and --dns-upstream", () => {
    expect(resolvConfServers("search x\nnameserver 10.0.0.2\n# nameserver 1.1.1.1\nnameserver fe80::1%eth0\n")).toEqual([
      { address: "10.0.0.2", port: 53 },
      { address: "fe80::1", port: 53 },
    ]);
    expect(parseUpstreams("10.99.0.5, 10.99.0.6:5353,[fd00::1]:53")).toEqual([
      { address: "10.99.0.5", port: 53 },
      { address: "10.99.0.6", port: 5353 },
      { address: "fd00::1", port: 53 },
    ]);
  });
});
