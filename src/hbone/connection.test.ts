/**
 * The HTTP/2 state machine against a scripted peer (no sockets): what each protocol violation
 * costs (RFC 9113 sections 5-8), flow control on both sides, CONTINUATION, padding, GOAWAY.
 */
import { describe, expect, test } from "bun:test";
import { H2Code, HBONE } from "./constants.ts";
import { encodeFrame } from "./frame.ts";
import { Flag, type Frame, FrameType, ScriptedPeer, Setting, settingsPayload, u32 } from "./_test_peer.ts";

const goaway = (fs: Frame[]) => fs.find((f) => f.type === FrameType.GOAWAY);
const goawayCode = (fs: Frame[]) => {
  const g = goaway(fs);
  return g ? new DataView(g.payload.buffer, g.payload.byteOffset).getUint32(4) : undefined;
};
const rst = (fs: Frame[], stream: number) => {
  const f = fs.find((x) => x.type === FrameType.RST_STREAM && x.stream === stream);
  return f ? new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0) : undefined;
};

async function readyServer(settings: [number, number][] = []) {
  const p = new ScriptedPeer("server");
  p.handshake(settings);
  await p.frames();
  return p;
}

describe("connection start", () => {
  test("server sends SETTINGS with HBONE values, a connection WINDOW_UPDATE and ACKs ours", async () => {
    const p = new ScriptedPeer("server");
    p.handshake();
    const fs = await p.frames();
    const settings = fs.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
    const dv = new DataView(settings.payload.buffer);
    const vals = new Map<number, number>();
    for (let o = 0; o < settings.payload.length; o += 6) vals.set(dv.getUint16(o), dv.getUint32(o + 2));
    expect(vals.get(Setting.INITIAL_WINDOW_SIZE)).toBe(HBONE.streamWindow);
    expect(vals.get(Setting.MAX_FRAME_SIZE)).toBe(HBONE.maxFrameSize);
    expect(vals.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(HBONE.serverMaxConcurrentStreams);
    expect(vals.get(Setting.MAX_HEADER_LIST_SIZE)).toBe(HBONE.serverMaxHeaderListSize);
    const wu = fs.find((f) => f.type === FrameType.WINDOW_UPDATE && f.stream === 0)!;
    expect(new DataView(wu.payload.buffer).getUint32(0)).toBe(HBONE.connectionWindow - 65535);
    expect(fs.some((f) => f.type === FrameType.SETTINGS && f.flags & Flag.ACK)).toBe(true);
  });

  test("client starts with the preface and disables push", async () => {
    const p = new ScriptedPeer("client");
    const fs = await p.frames();
    const settings = fs[0];
    expect(settings.type).toBe(FrameType.SETTINGS);
    expect(new DataView(settings.payload.buffer).getUint16(0)).toBe(Setting.ENABLE_PUSH);
  });

  const connectionErrors: [string, (p: ScriptedPeer) => void, number][] = [
    ["bad preface", (p) => p.send(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), H2Code.PROTOCOL_ERROR],
    ["first frame is not SETTINGS", (p) => {
      p.send(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
      p.frame(FrameType.PING, 0, 0, new Uint8Array(8));
    }, H2Code.PROTOCOL_ERROR],
  ];
  for (const [name, act, code] of connectionErrors) {
    test(`${name} -> GOAWAY ${code}`, async () => {
      const p = new ScriptedPeer("server");
      act(p);
      expect(goawayCode(await p.frames())).toBe(code);
      expect(p.conn.closed).toBe(true);
    });
  }
});

describe("connection errors (GOAWAY)", () => {
  const cases: [string, (p: ScriptedPeer) => void, number][] = [
    ["SETTINGS on a stream", (p) => p.frame(FrameType.SETTINGS, 0, 1), H2Code.PROTOCOL_ERROR],
    ["SETTINGS length not a multiple of 6", (p) => p.frame(FrameType.SETTINGS, 0, 0, new Uint8Array(5)), H2Code.FRAME_SIZE_ERROR],
    ["SETTINGS ACK with payload", (p) => p.frame(FrameType.SETTINGS, Flag.ACK, 0, new Uint8Array(6)), H2Code.FRAME_SIZE_ERROR],
    ["ENABLE_PUSH=2", (p) => p.frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.ENABLE_PUSH, 2]])), H2Code.PROTOCOL_ERROR],
    ["INITIAL_WINDOW_SIZE 2^31", (p) => p.frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]])), H2Code.FLOW_CONTROL_ERROR],
    ["MAX_FRAME_SIZE below 16384", (p) => p.frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.MAX_FRAME_SIZE, 100]])), H2Code.PROTOCOL_ERROR],
    ["MAX_FRAME_SIZE above 2^24-1", (p) => p.frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.MAX_FRAME_SIZE, 2 ** 24]])), H2Code.PROTOCOL_ERROR],
    ["PING on a stream", (p) => p.frame(FrameType.PING, 0, 1, new Uint8Array(8)), H2Code.PROTOCOL_ERROR],
    ["PING of 7 bytes", (p) => p.frame(FrameType.PING, 0, 0, new Uint8Array(7)), H2Code.FRAME_SIZE_ERROR],
    ["GOAWAY on a stream", (p) => p.frame(FrameType.GOAWAY, 0, 1, new Uint8Array(8)), H2Code.PROTOCOL_ERROR],
    ["GOAWAY too short", (p) => p.frame(FrameType.GOAWAY, 0, 0, new Uint8Array(7)), H2Code.FRAME_SIZE_ERROR],
    ["WINDOW_UPDATE of 0 on the connection", (p) => p.frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0)), H2Code.PROTOCOL_ERROR],
    ["WINDOW_UPDATE of 3 bytes", (p) => p.frame(FrameType.WINDOW_UPDATE, 0, 0, new Uint8Array(3)), H2Code.FRAME_SIZE_ERROR],
    ["connection window overflow", (p) => p.frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), H2Code.FLOW_CONTROL_ERROR],
    ["WINDOW_UPDATE on an idle stream", (p) => p.frame(FrameType.WINDOW_UPDATE, 0, 5, u32(1)), H2Code.PROTOCOL_ERROR],
    ["RST_STREAM on stream 0", (p) => p.frame(FrameType.RST_STREAM, 0, 0, u32(0)), H2Code.PROTOCOL_ERROR],
    ["RST_STREAM on an idle stream", (p) => p.frame(FrameType.RST_STREAM, 0, 7, u32(8)), H2Code.PROTOCOL_ERROR],
    ["RST_STREAM of 5 bytes", (p) => {
      p.connect(1);
      p.frame(FrameType.RST_STREAM, 0, 1, new Uint8Array(5));
    }, H2Code.FRAME_SIZE_ERROR],
    ["DATA on stream 0", (p) => p.frame(FrameType.DATA, 0, 0, new Uint8Array(1)), H2Code.PROTOCOL_ERROR],
    ["DATA on an idle stream", (p) => p.frame(FrameType.DATA, 0, 3, new Uint8Array(1)), H2Code.PROTOCOL_ERROR],
    ["HEADERS on stream 0", (p) => p.frame(FrameType.HEADERS, Flag.END_HEADERS, 0, new Uint8Array([0x82])), H2Code.PROTOCOL_ERROR],
    ["HEADERS on an even stream", (p) => p.connect(2), H2Code.PROTOCOL_ERROR],
    ["HPACK index 0", (p) => p.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, new Uint8Array([0x80])), H2Code.COMPRESSION_ERROR],
    ["HPACK index past the tables", (p) => p.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, new Uint8Array([0xff, 0x7f])), H2Code.COMPRESSION_ERROR],
    ["CONTINUATION without HEADERS", (p) => p.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, new Uint8Array([0x82])), H2Code.PROTOCOL_ERROR],
    ["frame between HEADERS and CONTINUATION", (p) => {
      p.frame(FrameType.HEADERS, 0, 1, new Uint8Array([0x82]));
      p.frame(FrameType.PING, 0, 0, new Uint8Array(8));
    }, H2Code.PROTOCOL_ERROR],
    ["CONTINUATION on another stream", (p) => {
      p.frame(FrameType.HEADERS, 0, 1, new Uint8Array([0x82]));
      p.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, new Uint8Array([0x84]));
    }, H2Code.PROTOCOL_ERROR],
    ["PUSH_PROMISE", (p) => p.frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, new Uint8Array(4)), H2Code.PROTOCOL_ERROR],
    ["frame above MAX_FRAME_SIZE", (p) => p.send(new Uint8Array([0x10, 0x00, 0x01, 0, 0, 0, 0, 0, 0])), H2Code.FRAME_SIZE_ERROR],
    ["padding longer than DATA", (p) => {
      p.connect(1);
      p.frame(FrameType.DATA, Flag.PADDED, 1, new Uint8Array([5, 1, 2]));
    }, H2Code.PROTOCOL_ERROR],
    ["padding longer than HEADERS", (p) => p.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, new Uint8Array([9, 0x82])), H2Code.PROTOCOL_ERROR],
    ["connection window exceeded", (p) => {
      for (let i = 0; i < 5; i++) p.connect(1 + 2 * i);
      const big = new Uint8Array(HBONE.maxFrameSize);
      for (let n = 0; n < 17; n++) p.frame(FrameType.DATA, 0, 1 + 2 * (n % 5), big);
    }, H2Code.FLOW_CONTROL_ERROR],
  ];
  for (const [name, act, code] of cases) {
    test(`${name} -> GOAWAY ${code}`, async () => {
      const p = await readyServer();
      act(p);
      const fs = await p.frames();
      expect(goawayCode(fs)).toBe(code);
      expect(p.conn.closed).toBe(true);
      expect(p.transport.ended || p.transport.terminated).toBe(true);
    });
  }
});

describe("stream errors cost only the stream", () => {
  const cases: [string, (p: ScriptedPeer) => void, number, number][] = [
    ["CONNECT with :path", (p) => p.connect(3, "10.0.0.1:80", [":path", "/"]), 3, H2Code.PROTOCOL_ERROR],
    ["CONNECT without :authority", (p) => p.headers(3, [":method", "CONNECT"]), 3, H2Code.PROTOCOL_ERROR],
    ["upper-case field name", (p) => p.connect(3, "10.0.0.1:80", ["X-Upper", "1"]), 3, H2Code.PROTOCOL_ERROR],
    ["connection-specific field", (p) => p.connect(3, "10.0.0.1:80", ["connection", "close"]), 3, H2Code.PROTOCOL_ERROR],
    ["pseudo-header after a regular field", (p) => p.headers(3, [":method", "CONNECT", "x", "1", ":authority", "a:1"]), 3, H2Code.PROTOCOL_ERROR],
    ["unknown pseudo-header", (p) => p.connect(3, "10.0.0.1:80", [":foo", "1"]), 3, H2Code.PROTOCOL_ERROR],
    ["stream window exceeded", (p) => {
      p.connect(3);
      const big = new Uint8Array(HBONE.maxFrameSize);
      for (let n = 0; n < 5; n++) p.frame(FrameType.DATA, 0, 3, big);
    }, 3, H2Code.FLOW_CONTROL_ERROR],
    ["WINDOW_UPDATE of 0 on a stream", (p) => {
      p.connect(3);
      p.frame(FrameType.WINDOW_UPDATE, 0, 3, u32(0));
    }, 3, H2Code.PROTOCOL_ERROR],
    ["stream window overflow", (p) => {
      p.connect(3);
      p.frame(FrameType.WINDOW_UPDATE, 0, 3, u32(0x7fffffff));
    }, 3, H2Code.FLOW_CONTROL_ERROR],
    ["DATA after END_STREAM", (p) => {
      p.connect(3);
      p.frame(FrameType.DATA, Flag.END_STREAM, 3, new Uint8Array(1));
      p.frame(FrameType.DATA, 0, 3, new Uint8Array(1));
    }, 3, H2Code.STREAM_CLOSED],
    ["trailers on a CONNECT stream", (p) => {
      p.connect(3);
      p.headers(3, ["x", "1"], Flag.END_HEADERS | Flag.END_STREAM);
    }, 3, H2Code.PROTOCOL_ERROR],
    ["PRIORITY of 4 bytes", (p) => {
      p.connect(3);
      p.frame(FrameType.PRIORITY, 0, 3, new Uint8Array(4));
    }, 3, H2Code.FRAME_SIZE_ERROR],
  ];
  for (const [name, act, stream, code] of cases) {
    test(`${name} -> RST_STREAM ${code}, other streams go on`, async () => {
      const p = await readyServer();
      p.connect(1, "10.9.9.9:9");
      await p.frames();
      const other = p.streams[0];
      other.respond(200);
      act(p);
      const fs = await p.frames();
      expect(rst(fs, stream)).toBe(code);
      expect(goaway(fs)).toBeUndefined();
      expect(p.conn.closed).toBe(false);
      // The other stream still works both ways.
      const got: string[] = [];
      other.on("data", (b) => got.push(Buffer.from(b).toString()));
      p.frame(FrameType.DATA, 0, 1, new TextEncoder().encode("ping"));
      expect(got).toEqual(["ping"]);
      other.write(new TextEncoder().encode("pong"));
      const out = await p.frames();
      expect(out.some((f) => f.type === FrameType.DATA && f.stream === 1 && Buffer.from(f.payload).toString() === "pong"))
        .toBe(true);
    });
  }

  test("a non-CONNECT request is answered 400", async () => {
    const p = await readyServer();
    p.headers(1, [":method", "GET", ":scheme", "https", ":path", "/", ":authority", "a:1"]);
    const fs = await p.frames();
    const h = fs.find((f) => f.type === FrameType.HEADERS && f.stream === 1)!;
    expect(p.fields(h)).toEqual([":status", "400"]);
    expect(h.flags & Flag.END_STREAM).toBeTruthy();
    expect(p.streams.length).toBe(0);
  });

  for (const authority of ["10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "::1:80", "[::1]", ":80", "host:http"]) {
    test(`CONNECT to ${JSON.stringify(authority)} is answered 400`, async () => {
      const p = await readyServer();
      p.connect(1, authority);
      const fs = await p.frames();
      const h = fs.find((f) => f.type === FrameType.HEADERS && f.stream === 1)!;
      expect(p.fields(h)).toEqual([":status", "400"]);
      expect(p.streams.length).toBe(0);
    });
  }

  for (const authority of ["10.0.0.1:80", "[fd00::1]:8080", "reviews.default.svc.cluster.local:9080"]) {
    test(`CONNECT to ${JSON.stringify(authority)} reaches the handler`, async () => {
      const p = await readyServer();
      p.connect(1, authority);
      await p.frames();
      expect(p.streams[0]?.authority).toBe(authority);
    });
  }

  test("streams beyond MAX_CONCURRENT_STREAMS are refused", async () => {
    const p = new ScriptedPeer("server", { maxConcurrentStreams: 2 });
    p.handshake();
    for (const id of [1, 3, 5]) p.connect(id);
    const fs = await p.frames();
    expect(p.streams.length).toBe(2);
    expect(rst(fs, 5)).toBe(H2Code.REFUSED_STREAM);
  });
});

describe("frames", () => {
  test("PING is answered with the same payload", async () => {
    const p = await readyServer();
    p.frame(FrameType.PING, 0, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    const ack = (await p.frames()).find((f) => f.type === FrameType.PING)!;
    expect(ack.flags & Flag.ACK).toBe(Flag.ACK);
    expect([...ack.payload]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("ping() measures a round trip", async () => {
    const p = await readyServer();
    const rtt = p.conn.ping();
    const ping = (await p.frames()).find((f) => f.type === FrameType.PING)!;
    p.frame(FrameType.PING, Flag.ACK, 0, ping.payload);
    expect(await rtt).toBeGreaterThanOrEqual(0);
  });

  test("HEADERS split over CONTINUATION, delivered byte by byte, with padding and priority", async () => {
    const p = await readyServer();
    const block = p.encoder.encode([":method", "CONNECT", ":authority", "10.2.3.4:5678", "baggage", "a=".padEnd(3000, "b")]).slice();
    const first = new Uint8Array(1 + 5 + 100 + 4);
    first[0] = 4; // pad length
    first.set(block.subarray(0, 100), 6);
    p.send(encodeFrame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, first), true);
    p.send(encodeFrame(FrameType.CONTINUATION, 0, 1, block.subarray(100, 2000)), true);
    p.send(encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(2000)), true);
    await p.frames();
    expect(p.streams.length).toBe(1);
    expect(p.streams[0].authority).toBe("10.2.3.4:5678");
    expect(p.streams[0].headers.baggage.length).toBe(3000);
  });

  test("padded DATA delivers the content and returns the padding to the window", async () => {
    const p = await readyServer();
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    const got: number[] = [];
    s.on("data", (b) => got.push(...b));
    const payload = new Uint8Array(1 + 3 + 200);
    payload[0] = 200;
    payload.set([7, 8, 9], 1);
    p.send(encodeFrame(FrameType.DATA, Flag.PADDED, 1, payload), true);
    expect(got).toEqual([7, 8, 9]);
  });

  test("unknown frame types are ignored", async () => {
    const p = await readyServer();
    p.frame(0xee, 0xff, 0, new Uint8Array(10));
    p.frame(0xee, 0, 77, new Uint8Array(3));
    expect(goaway(await p.frames())).toBeUndefined();
    expect(p.conn.closed).toBe(false);
  });
});

describe("flow control (sending)", () => {
  test("DATA respects the peer's stream window, frame size and WINDOW_UPDATE", async () => {
    const p = await readyServer([[Setting.INITIAL_WINDOW_SIZE, 1000]]);
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    let drained = 0;
    s.on("drain", () => drained++);
    expect(s.write(new Uint8Array(5000).fill(1))).toBe(false);
    let fs = (await p.frames()).filter((f) => f.type === FrameType.DATA);
    expect(fs.reduce((n, f) => n + f.payload.length, 0)).toBe(1000);
    p.frame(FrameType.WINDOW_UPDATE, 0, 1, u32(4000));
    fs = (await p.frames()).filter((f) => f.type === FrameType.DATA);
    expect(fs.reduce((n, f) => n + f.payload.length, 0)).toBe(4000);
    expect(drained).toBe(1);
  });

  test("the connection window is shared and SETTINGS changes apply to open streams", async () => {
    const p = await readyServer([[Setting.INITIAL_WINDOW_SIZE, 10]]);
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    s.write(new Uint8Array(100));
    expect((await p.frames()).filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0)).toBe(10);
    p.frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 60]]));
    expect((await p.frames()).filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0)).toBe(50);
  });

  test("large writes are split at the peer's MAX_FRAME_SIZE (16384 by default)", async () => {
    const p = await readyServer();
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    p.frame(FrameType.WINDOW_UPDATE, 0, 0, u32(100_000));
    p.frame(FrameType.WINDOW_UPDATE, 0, 1, u32(100_000));
    s.write(new Uint8Array(40_000));
    const sizes = (await p.frames()).filter((f) => f.type === FrameType.DATA).map((f) => f.payload.length);
    expect(sizes).toEqual([16384, 16384, 7232]);
  });

  test("receiving: WINDOW_UPDATE returns consumed bytes, not bytes held by a paused reader", async () => {
    const p = await readyServer();
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    s.on("data", () => {});
    s.pause();
    const chunk = new Uint8Array(HBONE.maxFrameSize);
    for (let i = 0; i < 4; i++) p.frame(FrameType.DATA, 0, 1, chunk);
    let fs = await p.frames();
    expect(fs.filter((f) => f.type === FrameType.WINDOW_UPDATE)).toEqual([]);
    s.resume();
    fs = await p.frames();
    const streamWu = fs.filter((f) => f.type === FrameType.WINDOW_UPDATE && f.stream === 1)
      .reduce((n, f) => n + new DataView(f.payload.buffer).getUint32(0), 0);
    expect(streamWu).toBe(4 * HBONE.maxFrameSize);
  });
});

describe("half-close and GOAWAY", () => {
  test("END_STREAM each way closes the stream only when both are done", async () => {
    const p = await readyServer();
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    let ended = false;
    let closed = false;
    s.on("data", () => {});
    s.on("end", () => (ended = true));
    s.on("close", () => (closed = true));
    p.frame(FrameType.DATA, Flag.END_STREAM, 1, new Uint8Array(0));
    await Promise.resolve();
    expect(ended).toBe(true);
    expect(closed).toBe(false);
    s.write(new TextEncoder().encode("after peer end"));
    s.end();
    const fs = await p.frames();
    const data = fs.filter((f) => f.type === FrameType.DATA && f.stream === 1);
    expect(Buffer.from(data[0].payload).toString()).toBe("after peer end");
    expect(data.at(-1)!.flags & Flag.END_STREAM).toBe(Flag.END_STREAM);
    expect(closed).toBe(true);
  });

  test("graceful close: GOAWAY, streams in flight finish, new ones are refused", async () => {
    const p = await readyServer();
    p.connect(1);
    await p.frames();
    const s = p.streams[0];
    s.respond(200);
    s.on("data", () => {});
    p.conn.close();
    let fs = await p.frames();
    expect(goawayCode(fs)).toBe(H2Code.NO_ERROR);
    expect(new DataView(goaway(fs)!.payload.buffer).getUint32(0)).toBe(1);
    p.connect(3);
    fs = await p.frames();
    expect(rst(fs, 3)).toBe(H2Code.REFUSED_STREAM);
    expect(p.conn.closed).toBe(false);
    s.end();
    p.frame(FrameType.DATA, Flag.END_STREAM, 1);
    await p.frames();
    await Promise.resolve();
    expect(p.conn.closed).toBe(true);
    expect(p.closeError).toBeUndefined();
  });

  test("client: GOAWAY fails streams above last-stream-id as retryable", async () => {
    const p = new ScriptedPeer("client");
    p.handshake();
    const a = p.conn.openStream([":method", "CONNECT", ":authority", "a:1"]);
    const b = p.conn.openStream([":method", "CONNECT", ":authority", "a:2"]);
    let errB: { retryable?: boolean } | undefined;
    b.on("close", (e) => (errB = e));
    p.frame(FrameType.GOAWAY, 0, 0, new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0]));
    expect(errB?.retryable).toBe(true);
    expect(a.closed).toBe(false);
    expect(p.conn.draining).toBe(true);
    expect(() => p.conn.openStream([":method", "CONNECT", ":authority", "a:3"])).toThrow();
  });
});

describe("keepalive", () => {
  test("an idle connection is pinged, and dropped when the PING goes unanswered", async () => {
    // A timeout long against the interval, so a loaded machine cannot close it before we look.
    const p = new ScriptedPeer("server", { pingIntervalMs: 40, pingTimeoutMs: 600 });
    p.handshake();
    await p.frames();
    let pinged = false;
    for (let i = 0; i < 100 && !pinged; i++) {
      await Bun.sleep(10);
      pinged = (await p.frames()).some((f) => f.type === FrameType.PING && !(f.flags & Flag.ACK));
    }
    expect(pinged).toBe(true);
    expect(p.conn.closed).toBe(false);
    for (let i = 0; i < 300 && !p.conn.closed; i++) await Bun.sleep(10);
    expect(p.conn.closed).toBe(true);
    expect(String(p.closeError?.message)).toContain("PING");
  });

  test("an answered PING keeps the connection", async () => {
    const p = new ScriptedPeer("server", { pingIntervalMs: 40, pingTimeoutMs: 80 });
    p.handshake();
    for (let i = 0; i < 8; i++) {
      await Bun.sleep(30);
      for (const f of await p.frames()) {
        if (f.type === FrameType.PING && !(f.flags & Flag.ACK)) p.frame(FrameType.PING, Flag.ACK, 0, f.payload);
      }
    }
    expect(p.conn.closed).toBe(false);
    p.conn.destroy();
  });
});
