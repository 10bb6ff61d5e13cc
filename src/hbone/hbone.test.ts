/**
 * HBONE end to end on loopback: real TLS 1.3 with test certificates, our client pool against our
 * server. Protocol details (frames, HPACK, flow control) have their own tests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTestCa, spiffeId, type TestTls } from "./_test_certs.ts";
import { type HboneError, HboneServer, HbonePool, type HboneStream } from "./mod.ts";

const SERVER_ID = spiffeId("x", "server");
const CLIENT_ID = spiffeId("x", "client");

let serverTls: TestTls;
let clientTls: TestTls;
let otherCaClient: TestTls;
let server: HboneServer;
const seen: { authority: string; headers: Record<string, string>; peer: string; context: unknown }[] = [];

/** Echo server: answers per authority port: 1 -> 401, 2 -> 503, otherwise 200 and echo. */
function onStream(s: HboneStream): void {
  seen.push({ authority: s.authority, headers: s.headers, peer: s.peerIdentity, context: s.context });
  if (s.authority.endsWith(":1")) return s.respond(401);
  if (s.authority.endsWith(":2")) return s.respond(503);
  if (s.authority.endsWith(":3")) throw new Error("handler bug");
  if (s.authority.endsWith(":4")) return; // never answers
  s.respond(200);
  s.on("data", (b) => {
    if (!s.write(b)) s.pause();
  });
  s.on("drain", () => s.resume());
  s.on("end", () => s.end());
}

beforeAll(async () => {
  const ca = await makeTestCa();
  serverTls = await ca.issue(SERVER_ID);
  clientTls = await ca.issue(CLIENT_ID);
  otherCaClient = await (await makeTestCa("other")).issue(CLIENT_ID);
  server = HboneServer.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: () => ({ ...serverTls, context: "ctx-1" }),
    onStream,
  });
});

afterAll(async () => {
  await server.close({ timeoutMs: 1000 });
});

/** Sends `data`, half-closes, and collects what comes back until the stream closes. */
function echo(s: HboneStream, data: Uint8Array): Promise<{ bytes: Buffer; err?: HboneError; ended: boolean }> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = [];
    let ended = false;
    s.on("data", (b) => parts.push(b.slice()));
    s.on("end", () => (ended = true));
    s.on("close", (err) => resolve({ bytes: Buffer.concat(parts), err, ended }));
    let off = 0;
    const pump = () => {
      while (off < data.length) {
        const n = Math.min(64 * 1024, data.length - off);
        const ok = s.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return;
      }
      s.end();
    };
    s.on("drain", pump);
    pump();
  });
}

function connectOpts(port: number, extra: Partial<Parameters<HbonePool["connect"]>[0]> = {}) {
  return {
    address: `127.0.0.1:${port}`,
    authority: "10.1.2.3:8080",
    tls: clientTls,
    expectedIdentities: [SERVER_ID],
    ...extra,
  };
}

describe("HBONE loopback", () => {
  test("CONNECT with headers, identities both ways, echo and half-close", async () => {
    const pool = new HbonePool();
    try {
      const s = await pool.connect(connectOpts(server.port, {
        headers: { Forwarded: 'for="10.0.0.9:4000"', baggage: "k8s.namespace.name=x", traceparent: "00-" + "a".repeat(32) + "-" + "b".repeat(16) + "-00" },
      }));
      expect(s.status).toBe(200);
      expect(s.peerIdentity).toBe(SERVER_ID);
      const r = await echo(s, Buffer.from("hello through the tunnel"));
      expect(r.err).toBeUndefined();
      expect(r.ended).toBe(true);
      expect(r.bytes.toString()).toBe("hello through the tunnel");
      const last = seen.at(-1)!;
      expect(last.authority).toBe("10.1.2.3:8080");
      expect(last.peer).toBe(CLIENT_ID);
      expect(last.context).toBe("ctx-1");
      expect(last.headers.forwarded).toBe('for="10.0.0.9:4000"');
      expect(last.headers.baggage).toBe("k8s.namespace.name=x");
      expect(last.headers.traceparent).toMatch(/^00-a{32}-b{16}-00$/);
    } finally {
      await pool.close();
    }
  });

  test("32 MiB each way keeps every byte in order", async () => {
    const pool = new HbonePool();
    try {
      const s = await pool.connect(connectOpts(server.port));
      const data = new Uint8Array(32 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) crypto.getRandomValues(data.subarray(i, i + 4096));
      const r = await echo(s, data);
      expect(r.err).toBeUndefined();
      expect(r.bytes.length).toBe(data.length);
      expect(Buffer.compare(r.bytes, Buffer.from(data))).toBe(0);
    } finally {
      await pool.close();
    }
  });

  test("non-2xx answers reject with the status", async () => {
    const pool = new HbonePool();
    try {
      const e401 = await pool.connect(connectOpts(server.port, { authority: "10.1.2.3:1" })).catch((e) => e);
      expect(e401.status).toBe(401);
      expect(e401.code).toBe("MESH_HBONE_REFUSED");
      const e503 = await pool.connect(connectOpts(server.port, { authority: "10.1.2.3:2" })).catch((e) => e);
      expect(e503.status).toBe(503);
      // The connection survives refused streams.
      const ok = await pool.connect(connectOpts(server.port));
      expect((await echo(ok, Buffer.from("x"))).bytes.toString()).toBe("x");
      expect(pool.connections).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test("the server identity must be expected", async () => {
    const pool = new HbonePool();
    try {
      const e = await pool.connect(connectOpts(server.port, { expectedIdentities: [spiffeId("x", "someone-else")] }))
        .catch((e) => e);
      expect(e.code).toBe("MESH_IDENTITY_INVALID");
      expect(String(e.message)).toContain(SERVER_ID);
    } finally {
      await pool.close();
    }
  });

  test("a client certificate from another CA is refused", async () => {
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const e = await pool.connect(connectOpts(server.port, { tls: otherCaClient })).catch((e) => e);
      expect(e).toBeInstanceOf(Error);
      expect(e.status).toBeUndefined();
    } finally {
      await pool.close();
    }
  });

  test("streams share a connection up to the stream limit", async () => {
    const pool = new HbonePool({ maxStreamsPerConnection: 4 });
    try {
      const streams = await Promise.all(Array.from({ length: 10 }, () => pool.connect(connectOpts(server.port))));
      expect(pool.connections).toBe(3);
      const results = await Promise.all(streams.map((s, i) => echo(s, Buffer.from(`stream ${i}`))));
      results.forEach((r, i) => expect(r.bytes.toString()).toBe(`stream ${i}`));
    } finally {
      await pool.close();
    }
  });

  test("server drain: the stream in flight finishes, the pool moves to a new connection", async () => {
    const pool = new HbonePool();
    try {
      const first = await pool.connect(connectOpts(server.port));
      const firstConn = first.conn;
      server.drain();
      // Wait for the GOAWAY to reach the client.
      for (let i = 0; i < 100 && !firstConn.draining; i++) await Bun.sleep(10);
      expect(firstConn.draining).toBe(true);
      const second = await pool.connect(connectOpts(server.port));
      expect(second.conn).not.toBe(firstConn);
      const [a, b] = await Promise.all([echo(first, Buffer.from("in flight")), echo(second, Buffer.from("new"))]);
      expect(a.bytes.toString()).toBe("in flight");
      expect(a.err).toBeUndefined();
      expect(b.bytes.toString()).toBe("new");
      for (let i = 0; i < 100 && !firstConn.closed; i++) await Bun.sleep(10);
      expect(firstConn.closed).toBe(true);
      expect(pool.connections).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test("the pool follows the server's SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    const small = HboneServer.listen({ hostname: "127.0.0.1", port: 0, tls: serverTls, onStream, settings: { maxConcurrentStreams: 2 } });
    const pool = new HbonePool();
    try {
      // The first connection learns the limit from the server's SETTINGS; later ones respect it.
      const first = await pool.connect(connectOpts(small.port));
      const rest = await Promise.all(Array.from({ length: 4 }, () => pool.connect(connectOpts(small.port))));
      expect(first.conn.peerMaxConcurrentStreams).toBe(2);
      expect(pool.connections).toBe(3);
      const rs = await Promise.all([first, ...rest].map((s, i) => echo(s, Buffer.from(`n${i}`))));
      rs.forEach((r, i) => expect(r.bytes.toString()).toBe(`n${i}`));
    } finally {
      await pool.close();
      await small.close({ timeoutMs: 500 });
    }
  });

  test("an idle pooled connection is closed after idleTimeoutMs", async () => {
    const pool = new HbonePool({ idleTimeoutMs: 100 });
    try {
      const s = await pool.connect(connectOpts(server.port));
      const conn = s.conn;
      await echo(s, Buffer.from("x"));
      for (let i = 0; i < 100 && !conn.closed; i++) await Bun.sleep(20);
      expect(conn.closed).toBe(true);
      expect(pool.connections).toBe(0);
    } finally {
      await pool.close();
    }
  });

  test("a handler that throws costs its stream only; a CONNECT without an answer times out", async () => {
    const pool = new HbonePool({ responseTimeoutMs: 300 });
    try {
      const ok = await pool.connect(connectOpts(server.port));
      const bug = await pool.connect(connectOpts(server.port, { authority: "10.1.2.3:3" })).catch((e) => e);
      expect(bug.h2Code).toBe(2); // INTERNAL_ERROR
      const silent = await pool.connect(connectOpts(server.port, { authority: "10.1.2.3:4" })).catch((e) => e);
      expect(silent.code).toBe("MESH_UNREACHABLE");
      expect(String(silent.message)).toContain("within 300 ms");
      expect((await echo(ok, Buffer.from("still fine"))).bytes.toString()).toBe("still fine");
      expect(pool.connections).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test("a data listener that throws resets its stream, not the connection", async () => {
    const pool = new HbonePool();
    try {
      const a = await pool.connect(connectOpts(server.port));
      const b = await pool.connect(connectOpts(server.port));
      const closed = new Promise<unknown>((r) => a.on("close", r));
      a.on("data", () => {
        throw new Error("listener bug");
      });
      a.write(Buffer.from("boom"));
      const err = (await closed) as { h2Code?: number };
      expect(err?.h2Code).toBe(2);
      expect((await echo(b, Buffer.from("other stream"))).bytes.toString()).toBe("other stream");
    } finally {
      await pool.close();
    }
  });
});
