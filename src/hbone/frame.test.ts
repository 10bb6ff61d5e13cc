/**
 * The frame codec on its own (RFC 9113 section 4 and 6): writers produce the bytes the RFC lays out,
 * the parser reads them back whatever the chunking, DATA is streamed with padding removed.
 */
import { describe, expect, test } from "bun:test";
import { Flag, FrameType, H2Code, PREFACE, Setting } from "./constants.ts";
import { H2ProtocolError } from "./errors.ts";
import {
  encodeFrame,
  type FrameHandler,
  FrameParser,
  writeData,
  writeGoaway,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from "./frame.ts";
import { OutBuf } from "./outbuf.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const out = (f: (o: OutBuf) => void) => {
  const o = new OutBuf(16);
  f(o);
  return hex(o.buf.subarray(o.start, o.end));
};

describe("writers (wire layout)", () => {
  const cases: [string, (o: OutBuf) => void, string][] = [
    ["SETTINGS", (o) => writeSettings(o, [[Setting.INITIAL_WINDOW_SIZE, 0x400000], [Setting.MAX_FRAME_SIZE, 0x100000]]),
      "00000c" + "04" + "00" + "00000000" + "0004" + "00400000" + "0005" + "00100000"],
    ["SETTINGS ACK", (o) => writeSettingsAck(o), "000000" + "04" + "01" + "00000000"],
    ["WINDOW_UPDATE", (o) => writeWindowUpdate(o, 3, 0xf00000), "000004" + "08" + "00" + "00000003" + "00f00000"],
    ["RST_STREAM", (o) => writeRstStream(o, 5, H2Code.CANCEL), "000004" + "03" + "00" + "00000005" + "00000008"],
    ["PING ACK", (o) => writePing(o, true, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), "000008" + "06" + "01" + "00000000" + "0102030405060708"],
    ["GOAWAY", (o) => writeGoaway(o, 7, H2Code.PROTOCOL_ERROR, "x"), "000009" + "07" + "00" + "00000000" + "00000007" + "00000001" + "78"],
    ["DATA with END_STREAM", (o) => writeData(o, 1, new Uint8Array([9, 9, 9]), 1, 2, true), "000002" + "00" + "01" + "00000001" + "0909"],
    ["HEADERS in one frame", (o) => writeHeaders(o, 1, new Uint8Array([0x82, 0x84]), false, 16384), "000002" + "01" + "04" + "00000001" + "8284"],
    ["HEADERS + CONTINUATION", (o) => writeHeaders(o, 3, new Uint8Array([1, 2, 3]), true, 2),
      "000002" + "01" + "01" + "00000003" + "0102" + "000001" + "09" + "04" + "00000003" + "03"],
    ["stream id top bit cleared", (o) => writeRstStream(o, 0x7fffffff, 0), "000004" + "03" + "00" + "7fffffff" + "00000000"],
  ];
  for (const [name, f, want] of cases) test(name, () => expect(out(f)).toBe(want));
});

interface Got {
  frames: [number, number, number, string][];
  data: string[];
  dataFrames: [number, number, number][];
  ends: [number, number][];
}

function collect(): [FrameHandler, Got] {
  const g: Got = { frames: [], data: [], dataFrames: [], ends: [] };
  let cur = "";
  return [{
    onFrame: (t, f, s, p) => void g.frames.push([t, f, s, hex(p)]),
    onDataFrame: (s, f, len) => {
      g.dataFrames.push([s, f, len]);
      cur = "";
    },
    onData: (_s, c) => void (cur += hex(c)),
    onDataEnd: (s, f) => {
      g.data.push(cur);
      g.ends.push([s, f]);
    },
  }, g];
}

function parseAll(bytes: Uint8Array, split: number, preface = false): Got {
  const [h, g] = collect();
  const p = new FrameParser(h, { expectPreface: preface, maxFrameSize: 1 << 20 });
  for (let i = 0; i < bytes.length; i += split) p.push(bytes.subarray(i, i + split));
  return g;
}

describe("parser", () => {
  const stream = Buffer.concat([
    PREFACE,
    encodeFrame(FrameType.SETTINGS, 0, 0, new Uint8Array([0, 4, 0, 0, 0, 1])),
    encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, new Uint8Array([0x82])),
    encodeFrame(FrameType.DATA, 0, 1, new Uint8Array([1, 2, 3, 4])),
    encodeFrame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, new Uint8Array([2, 5, 6, 0, 0])),
    encodeFrame(FrameType.DATA, Flag.END_STREAM, 3),
    encodeFrame(FrameType.DATA, Flag.PADDED, 5, new Uint8Array([3, 0, 0, 0])),
    encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8)),
    encodeFrame(0x42, 0xff, 9, new Uint8Array([7])),
  ]);
  for (const split of [1, 2, 3, 7, 9, 10, 64, 4096]) {
    test(`the same frames whatever the chunking (${split}-byte chunks)`, () => {
      const g = parseAll(stream, split, true);
      expect(g.frames).toEqual([
        [FrameType.SETTINGS, 0, 0, "000400000001"],
        [FrameType.HEADERS, Flag.END_HEADERS, 1, "82"],
        [FrameType.PING, 0, 0, "0000000000000000"],
        [0x42, 0xff, 9, "07"],
      ]);
      expect(g.data).toEqual(["01020304", "0506", "", ""]);
      expect(g.dataFrames).toEqual([[1, 0, 4], [1, Flag.PADDED | Flag.END_STREAM, 5], [3, Flag.END_STREAM, 0], [5, Flag.PADDED, 4]]);
      expect(g.ends.map(([s, f]) => [s, f & Flag.END_STREAM])).toEqual([[1, 0], [1, 1], [3, 1], [5, 0]]);
    });
  }

  const errors: [string, Uint8Array, number][] = [
    ["bad preface", new TextEncoder().encode("PRI * HTTP/1.1\r\n"), H2Code.PROTOCOL_ERROR],
    ["frame longer than MAX_FRAME_SIZE", Buffer.concat([PREFACE, new Uint8Array([0x10, 0, 1, 0, 0, 0, 0, 0, 1])]), H2Code.FRAME_SIZE_ERROR],
    ["pad length = frame length", Buffer.concat([PREFACE, encodeFrame(FrameType.DATA, Flag.PADDED, 1, new Uint8Array([3, 0, 0]))]), H2Code.PROTOCOL_ERROR],
    ["padded DATA without pad length", Buffer.concat([PREFACE, encodeFrame(FrameType.DATA, Flag.PADDED, 1)]), H2Code.FRAME_SIZE_ERROR],
  ];
  for (const [name, bytes, code] of errors) {
    test(`${name} -> ${code}`, () => {
      let err: unknown;
      try {
        parseAll(bytes, 3, true);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(H2ProtocolError);
      expect((err as H2ProtocolError).h2Code).toBe(code);
    });
  }

  test("a large DATA frame is handed on in pieces as it arrives", () => {
    const payload = new Uint8Array(100_000).fill(5);
    const pieces: number[] = [];
    const p = new FrameParser({
      onFrame() {},
      onDataFrame() {},
      onData: (_s, c) => void pieces.push(c.length),
      onDataEnd() {},
    }, { expectPreface: false, maxFrameSize: 1 << 20 });
    const f = encodeFrame(FrameType.DATA, 0, 1, payload);
    for (let i = 0; i < f.length; i += 16384) p.push(f.subarray(i, i + 16384));
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.reduce((a, b) => a + b, 0)).toBe(100_000);
  });

  test("a handler can stop the parser mid-chunk", () => {
    const seen: number[] = [];
    const p: FrameParser = new FrameParser({
      onFrame: (t) => {
        seen.push(t);
        p.stopped = true;
      },
      onDataFrame() {},
      onData() {},
      onDataEnd() {},
    }, { expectPreface: false, maxFrameSize: 1 << 20 });
    p.push(Buffer.concat([encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8)), encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8))]));
    expect(seen).toEqual([FrameType.PING]);
  });
});
