/**
 * mTLS rules of HBONE over real sockets: TLS 1.3 only, client certificate required and carrying a
 * SPIFFE ID, server identity checked by URI SAN, per-connection certificate choice and hot swap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import tls from "node:tls";
import { makeTestCa, spiffeId, type TestCa, type TestTls } from "./_test_certs.ts";
import { isWorkloadIdentity } from "../model/mod.ts";
import { type ConnectionInfo, HboneServer, HbonePool, type HboneStream, spiffeIdsFromSan } from "./mod.ts";
import { peerSpiffeId } from "./tls.ts";

const A = spiffeId("tls", "a");
const B = spiffeId("tls", "b");
const CLIENT = spiffeId("tls", "client");
let ca: TestCa;
let certA: TestTls;
let certB: TestTls;
let clientTls: TestTls;
let current: TestTls | undefined;
const infos: ConnectionInfo[] = [];
const peers: string[] = [];
let server: HboneServer;

function echo(s: HboneStream): void {
  peers.push(s.peerIdentity);
  s.respond(200);
  s.on("data", (b) => s.write(b));
  s.on("end", () => s.end());
}

beforeAll(async () => {
  ca = await makeTestCa();
  certA = await ca.issue(A);
  certB = await ca.issue(B);
  clientTls = await ca.issue(CLIENT);
  current = certA;
  server = HboneServer.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: (info) => {
      infos.push(info);
      return current;
    },
    onStream: echo,
  });
});
afterAll(() => server.close({ timeoutMs: 500 }));

function ping(s: HboneStream, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    s.on("data", (b) => (got += Buffer.from(b).toString()));
    s.on("close", () => resolve(got));
    s.write(Buffer.from(text));
    s.end();
  });
}

/** Outcome of a node:tls handshake attempt against the server. */
function nodeTls(opts: tls.ConnectionOptions): Promise<"connected" | string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port: server.port, ALPNProtocols: ["h2"], rejectUnauthorized: false, ...opts });
    let settled = false;
    const done = (v: string) => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(v);
    };
    // TLS 1.3: a refused client certificate is reported after the client's handshake completes, so
    // "connected" means the server spoke: an accepted connection starts with the server's SETTINGS
    // frame, a refused one is closed without a byte. (A fixed wait after the handshake would call a
    // refusal that comes late on a loaded machine "connected".)
    s.on("data", () => done("connected"));
    s.on("error", (e) => done(`error: ${e.message}`));
    s.on("close", () => done("closed"));
    s.setTimeout(10_000, () => done("timeout"));
  });
}

describe("server side", () => {
  test("a TLS 1.2 client is refused", async () => {
    const r = await nodeTls({ cert: clientTls.cert, key: clientTls.key, ca: clientTls.ca, maxVersion: "TLSv1.2" });
    expect(r).not.toBe("connected");
    expect(r).toContain("error");
  });

  test("a client without a certificate is refused", async () => {
    expect(await nodeTls({ ca: clientTls.ca })).not.toBe("connected");
  });

  test("a client whose certificate has no SPIFFE ID is refused", async () => {
    const noId = await ca.issue("https://example.com/not-spiffe");
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: noId, expectedIdentities: [A] }).catch((e) => e);
      expect(e).toBeInstanceOf(Error);
    } finally {
      await pool.close();
    }
  });

  test("a client whose certificate has two SPIFFE IDs is refused, even if the first is a good one", async () => {
    const two = await ca.issue(CLIENT, { uris: [CLIENT, spiffeId("tls", "admin")] });
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    const before = server.stats.handshakeRefused;
    const seen = peers.length;
    try {
      const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: two, expectedIdentities: [A] }).catch((e) => e);
      expect(e).toBeInstanceOf(Error);
      expect(server.stats.handshakeRefused).toBe(before + 1);
      expect(peers.length).toBe(seen);
    } finally {
      await pool.close();
    }
  });

  test("a TLS 1.3 client with a good certificate and ALPN h2 gets through (control for the above)", async () => {
    expect(await nodeTls({ cert: clientTls.cert, key: clientTls.key, ca: clientTls.ca })).toBe("connected");
  });

  test("the certificate callback sees the socket before the handshake; undefined closes it", async () => {
    const before = infos.length;
    current = undefined;
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: clientTls, expectedIdentities: [A] }).catch((e) => e);
      expect(e.code).toBe("MESH_UNREACHABLE");
      const info = infos[before];
      expect(info.localAddress).toBe("127.0.0.1");
      expect(info.localPort).toBe(server.port);
      expect(info.fd).toBeGreaterThan(0);
      expect(server.stats.noCertificate).toBeGreaterThanOrEqual(1);
      expect(server.stats.handshakeRefused).toBeGreaterThanOrEqual(3);
    } finally {
      current = certA;
      await pool.close();
    }
  });
});

describe("certificates change without closing connections", () => {
  test("server certificate swap: the open connection keeps working, new connections present the new identity", async () => {
    current = certA;
    const poolA = new HbonePool();
    const poolB = new HbonePool();
    try {
      const base = { address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: clientTls };
      const s1 = await poolA.connect({ ...base, expectedIdentities: [A] });
      current = certB;
      // Same pool key: the existing connection (still identity A) carries the next stream.
      const s2 = await poolA.connect({ ...base, expectedIdentities: [A] });
      expect(await ping(s1, "one")).toBe("one");
      expect(await ping(s2, "two")).toBe("two");
      expect(poolA.connections).toBe(1);
      // A new connection gets certificate B.
      const s3 = await poolB.connect({ ...base, expectedIdentities: [B] });
      expect(s3.peerIdentity).toBe(B);
      expect(await ping(s3, "three")).toBe("three");
      // ...and a client expecting A refuses it.
      const e = await new HbonePool().connect({ ...base, expectedIdentities: [A] }).catch((e) => e);
      expect(e.code).toBe("MESH_IDENTITY_INVALID");
    } finally {
      current = certA;
      await poolA.close();
      await poolB.close();
    }
  });

  test("client certificates are per call: a renewed one reuses the connection, another identity opens one", async () => {
    current = certA;
    const pool = new HbonePool();
    try {
      const base = { address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", expectedIdentities: [A] };
      await ping(await pool.connect({ ...base, tls: clientTls }), "x");
      const renewed = await ca.issue(CLIENT);
      await ping(await pool.connect({ ...base, tls: renewed }), "y");
      expect(pool.connections).toBe(1);
      const other = await ca.issue(spiffeId("tls", "other-client"));
      await ping(await pool.connect({ ...base, tls: other }), "z");
      expect(pool.connections).toBe(2);
      expect(peers.at(-1)).toBe(spiffeId("tls", "other-client"));
    } finally {
      await pool.close();
    }
  });

  test("an expired server certificate is refused by the client", async () => {
    current = await ca.issue(A, { notBefore: new Date(Date.now() - 2 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const pool = new HbonePool();
    try {
      const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: clientTls, expectedIdentities: [A] }).catch((e) => e);
      expect(e.code).toBe("MESH_CERT_INVALID");
    } finally {
      current = certA;
      await pool.close();
    }
  });

  test("a server certificate with two SPIFFE IDs is refused by the client, whichever of them it expects", async () => {
    current = await ca.issue(A, { uris: [A, B] });
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      for (const expected of [A, B]) {
        const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: clientTls, expectedIdentities: [expected] }).catch((e) => e);
        expect(e.code).toBe("MESH_IDENTITY_INVALID");
        expect(e.message).toContain("2 SPIFFE IDs");
      }
    } finally {
      current = certA;
      await pool.close();
    }
  });

  test("a server certificate from another CA is refused by the client", async () => {
    current = await (await makeTestCa("rogue")).issue(A);
    const pool = new HbonePool();
    try {
      const e = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "1.1.1.1:80", tls: clientTls, expectedIdentities: [A] }).catch((e) => e);
      expect(["MESH_CERT_INVALID", "MESH_UNREACHABLE"]).toContain(e.code);
    } finally {
      current = certA;
      await pool.close();
    }
  });
});

describe("SPIFFE IDs from SANs", () => {
  const cases: [string, string[]][] = [
    ["URI:spiffe://cluster.local/ns/a/sa/b", ["spiffe://cluster.local/ns/a/sa/b"]],
    ["DNS:x, URI:spiffe://td/ns/a/sa/b, IP Address:1.2.3.4", ["spiffe://td/ns/a/sa/b"]],
    ["URI:spiffe://td/ns/a/sa/b/extra", []],
    ["URI:spiffe://td/ns/a", []],
    ["URI:https://td/ns/a/sa/b", []],
    ["", []],
    ['URI:"spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d"', []], // one quoted value, not two IDs
    // The SPIFFE rules (model's parser), not only the shape: no upper case or port in a trust domain.
    ["URI:spiffe://Cluster.Local/ns/a/sa/b", []],
    ["URI:spiffe://td:8443/ns/a/sa/b", []],
    ['DNS:"x, URI:spiffe://td/ns/a/sa/b, y"', []], // a DNS name, quoted because of its commas
  ];
  for (const [san, ids] of cases) {
    test(JSON.stringify(san), () => expect(spiffeIdsFromSan(san)).toEqual(ids));
  }
  const peers: [string | undefined, string][] = [
    ["URI:spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/b"],
    ["DNS:x, URI:spiffe://td/ns/a/sa/b, URI:https://example.com", "spiffe://td/ns/a/sa/b"],
    ["URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d", "2 SPIFFE IDs"],
    ["URI:spiffe://td/ns/a/sa/b, URI:SPIFFE://td/anything", "2 SPIFFE IDs"], // a malformed second one still counts
    ["URI:spiffe://td/ns/a", "not a workload identity"],
    ["URI:spiffe://Cluster.Local/ns/a/sa/b", "is invalid: trust domain characters are limited"],
    ["URI:spiffe://td/ns/a/sa/b%41", "is invalid: path segment characters are limited"],
    ['DNS:"x, URI:spiffe://td/ns/a/sa/b, y"', "no SPIFFE ID"],
    ["DNS:x", "no SPIFFE ID"],
    [undefined, "no SPIFFE ID"],
  ];
  for (const [san, want] of peers) {
    test(`peerSpiffeId(${JSON.stringify(san)})`, () => {
      const p = peerSpiffeId(san);
      if (want.startsWith("spiffe://")) expect(p).toEqual({ id: want });
      else expect("error" in p && p.error).toContain(want);
    });
  }
  test("isWorkloadIdentity", () => {
    expect(isWorkloadIdentity("spiffe://cluster.local/ns/x/sa/y")).toBe(true);
    expect(isWorkloadIdentity("spiffe://cluster.local/ns/x/sa/")).toBe(false);
  });
});

describe("trust domain", () => {
  test("a trust domain given as a function is asked at each handshake (it follows the configuration)", async () => {
    let domain = "cluster.local";
    const td = HboneServer.listen({ hostname: "127.0.0.1", port: 0, tls: certA, trustDomain: () => domain, onStream: echo });
    try {
      const base = { address: `127.0.0.1:${td.port}`, authority: "1.1.1.1:80", expectedIdentities: [A], tls: clientTls };
      const pool1 = new HbonePool({ connectTimeoutMs: 3000 });
      expect(await ping(await pool1.connect(base), "in")).toBe("in");
      await pool1.close();
      domain = "prod.example";
      const pool2 = new HbonePool({ connectTimeoutMs: 3000 });
      expect(await pool2.connect(base).catch((e) => e)).toBeInstanceOf(Error);
      expect(td.stats.handshakeRefused).toBe(1);
      await pool2.close();
    } finally {
      await td.close({ timeoutMs: 500 });
    }
  });

  test("a client outside the configured trust domain is refused", async () => {
    const td = HboneServer.listen({ hostname: "127.0.0.1", port: 0, tls: certA, trustDomain: "cluster.local", onStream: echo });
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const base = { address: `127.0.0.1:${td.port}`, authority: "1.1.1.1:80", expectedIdentities: [A] };
      expect(await ping(await pool.connect({ ...base, tls: clientTls }), "in")).toBe("in");
      const foreign = await ca.issue("spiffe://other.domain/ns/tls/sa/client");
      const e = await pool.connect({ ...base, tls: foreign }).catch((e) => e);
      expect(e).toBeInstanceOf(Error);
      expect(td.stats.handshakeRefused).toBe(1);
    } finally {
      await pool.close();
      await td.close({ timeoutMs: 500 });
    }
  });
});
