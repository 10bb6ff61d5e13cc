/**
 * Hostile and careless peers over real TLS: a peer that never reads (our memory stays bounded), a
 * PING flood from a peer that never reads our answers, and thousands of streams opened and reset on
 * one connection next to a running tunnel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { makeTestCa, spiffeId, type TestTls } from "./_test_certs.ts";
import { FrameType, H2Code, PREFACE, Setting } from "./constants.ts";
import { dial } from "./dial.ts";
import { encodeFrame } from "./frame.ts";
import { HpackEncoder } from "./hpack.ts";
import { HboneServer, type HboneStream } from "./mod.ts";
import { ALPN_H2 } from "./tls.ts";
import { settingsPayload, u32 } from "./_test_peer.ts";
import { waitFor } from "../../test/support/mod.ts";

const SERVER_ID = spiffeId("lim", "server");
let serverTls: TestTls;
let clientTls: TestTls;
let server: HboneServer;
let handler: (s: HboneStream) => void = (s) => s.respond(503);

beforeAll(async () => {
  const ca = await makeTestCa();
  serverTls = await ca.issue(SERVER_ID);
  clientTls = await ca.issue(spiffeId("lim", "client"));
  server = HboneServer.listen({ hostname: "127.0.0.1", port: 0, tls: serverTls, onStream: (s) => handler(s) });
});
afterAll(() => server.close({ timeoutMs: 500 }));

/** A raw TLS HTTP/2 client that we script frame by frame. */
async function rawPeer(): Promise<{ sock: Socket<{ queue: Uint8Array[] }>; send(b: Uint8Array): void; close(): void }> {
  let opened!: () => void;
  const ready = new Promise<void>((r) => (opened = r));
  const flush = (s: Socket<{ queue: Uint8Array[] }>) => {
    const q = s.data.queue;
    while (q.length) {
      const n = s.write(q[0]);
      if (n < 0) return;
      if (n < q[0].length) {
        q[0] = q[0].subarray(n);
        return;
      }
      q.shift();
    }
  };
  const sock = await Bun.connect<{ queue: Uint8Array[] }>({
    hostname: "127.0.0.1",
    port: server.port,
    data: { queue: [] },
    tls: { cert: clientTls.cert, key: clientTls.key, ca: clientTls.ca, ALPNProtocols: ALPN_H2, rejectUnauthorized: false },
    socket: {
      handshake() {
        opened();
      },
      data() {},
      drain: flush,
      close() {},
      error() {},
    },
  });
  await ready;
  return {
    sock,
    send(b) {
      sock.data.queue.push(b);
      flush(sock);
    },
    close: () => sock.terminate(),
  };
}

function connectHeaders(enc: HpackEncoder, id: number): Uint8Array {
  return encodeFrame(FrameType.HEADERS, 0x4, id, enc.encode([":method", "CONNECT", ":authority", "10.0.0.1:80"]).slice());
}

describe("bounded memory", () => {
  test("a peer that never reads: writes stall, our buffers stay bounded", async () => {
    let stream: HboneStream | undefined;
    let offered = 0;
    const chunk = new Uint8Array(64 * 1024);
    handler = (s) => {
      stream = s;
      s.respond(200);
      const pump = () => {
        while (offered < 1024 * 1024 * 1024 && !s.closed) {
          offered += chunk.length;
          if (!s.write(chunk)) return;
        }
      };
      s.on("drain", pump);
      pump();
    };
    const rssBefore = process.memoryUsage().rss;
    const peer = await rawPeer();
    try {
      peer.sock.pause(); // never read a byte
      const enc = new HpackEncoder();
      // Huge windows: only TCP backpressure can stop us.
      peer.send(new Uint8Array([...PREFACE]));
      peer.send(encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 0x7fffffff]])));
      peer.send(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65535)));
      peer.send(connectHeaders(enc, 1));
      await waitFor("the stream", () => stream !== undefined, 5000);
      let last = -1;
      await waitFor("the writer to stall", () => {
        const stuck = offered === last;
        last = offered;
        return stuck;
      }, 10_000);
      const conn = stream!.conn;
      if (process.env.HBONE_DEBUG) console.log({ offered, buffered: conn.bufferedBytes, pending: stream!.writableLength });
      expect(offered).toBeLessThan(96 * 1024 * 1024);
      expect(stream!.writableLength).toBeLessThanOrEqual(chunk.length);
      expect(conn.bufferedBytes).toBeLessThanOrEqual(2 * 1024 * 1024 + chunk.length);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(128 * 1024 * 1024);
    } finally {
      peer.close();
    }
  }, 30_000);

  test("a PING flood from a peer that never reads: we stop reading instead of queueing answers", async () => {
    let stream: HboneStream | undefined;
    handler = (s) => {
      stream = s;
      s.respond(200);
    };
    const peer = await rawPeer();
    try {
      peer.sock.pause();
      peer.send(new Uint8Array([...PREFACE]));
      peer.send(encodeFrame(FrameType.SETTINGS, 0, 0));
      peer.send(connectHeaders(new HpackEncoder(), 1));
      await waitFor("the stream", () => stream !== undefined, 5000);
      const ping = encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8));
      const burst = new Uint8Array(ping.length * 10_000);
      for (let i = 0; i < 10_000; i++) burst.set(ping, i * ping.length);
      for (let i = 0; i < 60; i++) peer.send(burst); // 600 000 PINGs, 10 MB of answers
      await Bun.sleep(1500);
      expect(stream!.conn.bufferedBytes).toBeLessThan(5 * 1024 * 1024);
      expect(stream!.conn.closed).toBe(false);
    } finally {
      peer.close();
    }
  }, 30_000);
});

describe("rapid reset", () => {
  test("10 000 streams opened and reset on one connection leave a running tunnel intact", async () => {
    let serverConnStreams = () => -1;
    handler = (s) => {
      serverConnStreams = () => s.conn.peerStreams;
      s.respond(200);
      s.on("data", (b) => {
        if (!s.write(b)) s.pause();
      });
      s.on("drain", () => s.resume());
      s.on("end", () => s.end());
    };
    const conn = await dial({ host: "127.0.0.1", port: server.port, tls: clientTls, expectedIdentities: [SERVER_ID] });
    try {
      const tunnel = conn.openStream([":method", "CONNECT", ":authority", "10.0.0.1:80"]);
      await new Promise<void>((r) => (tunnel.onResponse = () => r()));
      const total = 16 * 1024 * 1024;
      const data = new Uint8Array(total);
      for (let i = 0; i < total; i += 4096) crypto.getRandomValues(data.subarray(i, i + 4096));
      const parts: Uint8Array[] = [];
      const done = new Promise<Error | undefined>((r) => tunnel.on("close", r));
      tunnel.on("data", (b) => parts.push(b.slice()));
      let off = 0;
      const pump = () => {
        while (off < total) {
          const ok = tunnel.write(data.subarray(off, off + 32768));
          off += 32768;
          if (!ok) return;
        }
        tunnel.end();
      };
      tunnel.on("drain", pump);
      pump();
      let opened = 0;
      while (opened < 10_000) {
        for (let i = 0; i < 250; i++, opened++) {
          conn.openStream([":method", "CONNECT", ":authority", "10.0.0.2:80"]).reset(H2Code.CANCEL);
        }
        await Bun.sleep(1);
      }
      const err = await done;
      expect(err).toBeUndefined();
      expect(conn.closed).toBe(false);
      const got = Buffer.concat(parts);
      expect(got.length).toBe(total);
      expect(Buffer.compare(got, Buffer.from(data))).toBe(0);
      await waitFor("every stream closed", () => serverConnStreams() === 0, 3000);
      expect(serverConnStreams()).toBe(0);
      expect(server.connections).toBe(1);
    } finally {
      conn.destroy();
    }
  }, 60_000);
});
