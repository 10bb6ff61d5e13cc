/**
 * Fuzzing the frame parser and the connection state machine: 100 000+ random, structured-random and
 * mutated inputs, each fed in random splits to a fresh server-side (and some client-side)
 * connection. Whatever arrives, receive() never throws, output stays bounded, and the connection
 * either ends with GOAWAY or still answers a PING (it is never wedged). Deterministic seed, so a
 * failure names the input that caused it.
 */
import { describe, expect, test } from "bun:test";
import { FrameType, PREFACE } from "./constants.ts";
import { encodeFrame } from "./frame.ts";
import { HpackEncoder } from "./hpack.ts";
import { ScriptedPeer, Setting, settingsPayload, u32 } from "./_test_peer.ts";
import type { HboneStream } from "./stream.ts";

const POOL = (() => {
  const b = new Uint8Array(1 << 20);
  let x = 0x2545f491;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
})();

/** xorshift32: reproducible inputs. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    int: (n: number) => next() % n,
    /** Random bytes: a view into a pre-filled pool (callers copy before changing them). */
    bytes(n: number) {
      const at = next() % (POOL.length - n);
      return POOL.subarray(at, at + n);
    },
    pick<T>(a: readonly T[]): T {
      return a[next() % a.length];
    },
  };
}
type Rng = ReturnType<typeof rng>;

const MAX_OUTPUT = 8 << 20;

function echo(s: HboneStream): void {
  s.respond(200);
  s.on("data", (b) => s.write(b));
  s.on("end", () => s.end());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A plausible conversation: settings, CONNECTs (some split over CONTINUATION), data, updates, pings. */
function conversation(r: Rng): Uint8Array[] {
  const enc = new HpackEncoder({ huffman: r.pick(["auto", "always", "never"] as const) });
  const frames: Uint8Array[] = [encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 1 + r.int(70000)], [Setting.HEADER_TABLE_SIZE, r.int(8192)]]))];
  let id = 1;
  for (let i = 0, n = 1 + r.int(5); i < n; i++) {
    const block = enc.encode([":method", "CONNECT", ":authority", `10.0.${r.int(255)}.${r.int(255)}:${1 + r.int(65535)}`, "baggage", "k=" + "v".repeat(r.int(300)), "forwarded", `for="10.0.0.${r.int(255)}"`]).slice();
    if (r.int(3) === 0 && block.length > 4) {
      const cut = 1 + r.int(block.length - 1);
      frames.push(encodeFrame(FrameType.HEADERS, 0, id, block.subarray(0, cut)));
      frames.push(encodeFrame(FrameType.CONTINUATION, 0x4, id, block.subarray(cut)));
    } else frames.push(encodeFrame(FrameType.HEADERS, 0x4, id, block));
    for (let k = 0, m = r.int(4); k < m; k++) {
      const padded = r.int(4) === 0;
      const body = r.bytes(r.int(1200));
      frames.push(padded ? encodeFrame(FrameType.DATA, 0x8, id, concat([new Uint8Array([r.int(20)]), body, new Uint8Array(20)])) : encodeFrame(FrameType.DATA, 0, id, body));
    }
    if (r.int(2)) frames.push(encodeFrame(FrameType.WINDOW_UPDATE, 0, r.int(2) ? 0 : id, u32(1 + r.int(100000))));
    if (r.int(3) === 0) frames.push(encodeFrame(FrameType.PING, 0, 0, r.bytes(8)));
    if (r.int(3) === 0) frames.push(encodeFrame(FrameType.DATA, 0x1, id));
    if (r.int(4) === 0) frames.push(encodeFrame(FrameType.RST_STREAM, 0, id, u32(r.int(14))));
    if (r.int(6) === 0) frames.push(encodeFrame(FrameType.PRIORITY, 0, id, r.bytes(5)));
    id += 2;
  }
  if (r.int(8) === 0) frames.push(encodeFrame(FrameType.GOAWAY, 0, 0, concat([u32(id), u32(0)])));
  return frames;
}

/** One random, structurally valid-looking frame (any type, flags, stream, payload). */
function randomFrame(r: Rng): Uint8Array {
  const type = r.int(12);
  const flags = r.int(256);
  const stream = r.pick([0, 1, 2, 3, 5, 0x7fffffff, r.int(100)]);
  const len = r.pick([0, 1, 4, 5, 6, 8, 9, 12, r.int(64), r.int(2000)]);
  return encodeFrame(type, flags, stream, r.bytes(len));
}

function mutate(r: Rng, input: Uint8Array): Uint8Array {
  const b = input.slice();
  switch (r.int(5)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + r.int(4); i < n && b.length; i++) b[r.int(b.length)] ^= 1 << r.int(8);
      return b;
    case 1: // overwrite bytes
      for (let i = 0, n = 1 + r.int(8); i < n && b.length; i++) b[r.int(b.length)] = r.int(256);
      return b;
    case 2: // truncate
      return b.subarray(0, r.int(b.length + 1));
    case 3: { // duplicate a slice
      const a = r.int(b.length + 1);
      const e = Math.min(b.length, a + r.int(64));
      return concat([b.subarray(0, e), b.subarray(a, e), b.subarray(e)]);
    }
    default: // insert random bytes
      {
        const at = r.int(b.length + 1);
        return concat([b.subarray(0, at), r.bytes(1 + r.int(16)), b.subarray(at)]);
      }
  }
}

/** Feeds `input` in random splits; checks the invariants; returns whether the connection survived. */
function run(r: Rng, side: "server" | "client", input: Uint8Array, wholeFrames: boolean): boolean {
  const p = new ScriptedPeer(side);
  p.conn.onStream = echo;
  if (side === "client") {
    // A client under test has a stream open so responses and data have somewhere to go.
    p.conn.openStream([":method", "CONNECT", ":authority", "10.0.0.1:80"]);
  }
  let off = 0;
  while (off < input.length) {
    const n = 1 + r.int(Math.min(4096, input.length - off));
    p.conn.receive(input.subarray(off, off + n)); // must not throw
    off += n;
  }
  const out = p.transport.written;
  if (out > MAX_OUTPUT) throw new Error(`output of ${out} bytes`);
  if (p.conn.bufferedBytes > MAX_OUTPUT) throw new Error(`buffered ${p.conn.bufferedBytes} bytes`);
  if (p.conn.closed) return false;
  if (wholeFrames) {
    // Not wedged: a PING is answered, or it is a protocol error that closes the connection.
    const before = p.transport.written;
    p.conn.receive(encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8)));
    if (!p.conn.closed && p.transport.written === before && p.conn.bufferedBytes === 0) {
      throw new Error("PING neither answered nor rejected");
    }
  }
  p.conn.destroy();
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 256)).toString("hex");
}

describe("fuzz", () => {
  test("100 000+ random, structured and mutated inputs", async () => {
    const r = rng(0x5eed1234);
    const start = performance.now();
    const rssBefore = process.memoryUsage().rss;
    const counts = { random: 0, frames: 0, mutated: 0, client: 0, survived: 0 };
    const prefix = concat([PREFACE, encodeFrame(FrameType.SETTINGS, 0, 0)]);
    let n = 0;
    const check = async (side: "server" | "client", input: Uint8Array, whole: boolean, kind: keyof typeof counts) => {
      // Let queued flushes (microtasks) run now and then, as the event loop would between reads.
      if (++n % 64 === 0) await Bun.sleep(0);
      try {
        if (run(r, side, input, whole)) counts.survived++;
      } catch (e) {
        throw new Error(`${kind} input (${side}) failed: ${(e as Error).message}\n${hex(input)}`);
      }
      counts[kind]++;
    };
    for (let i = 0; i < 35_000; i++) {
      await check("server", concat([prefix, r.bytes(r.int(300))]), false, "random");
    }
    for (let i = 0; i < 40_000; i++) {
      const frames = [prefix];
      for (let k = 0, n = 1 + r.int(6); k < n; k++) frames.push(randomFrame(r));
      await check("server", concat(frames), true, "frames");
    }
    for (let i = 0; i < 20_000; i++) {
      const conv = concat([PREFACE, ...conversation(r)]);
      await check("server", r.int(10) === 0 ? conv : mutate(r, conv), false, "mutated");
    }
    for (let i = 0; i < 10_000; i++) {
      const enc = new HpackEncoder();
      const frames = [encodeFrame(FrameType.SETTINGS, 0, 0)];
      const resp = enc.encode([":status", r.pick(["200", "100", "401", "503", "2000", "abc"]), "x", "y"]).slice();
      frames.push(encodeFrame(FrameType.HEADERS, r.pick([4, 5, 0]), 1, resp));
      for (let k = 0, n = r.int(4); k < n; k++) frames.push(r.int(2) ? randomFrame(r) : encodeFrame(FrameType.DATA, r.int(2), 1, r.bytes(r.int(500))));
      const input = concat(frames);
      await check("client", r.int(3) === 0 ? mutate(r, input) : input, false, "client");
    }
    const total = counts.random + counts.frames + counts.mutated + counts.client;
    const seconds = (performance.now() - start) / 1000;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    console.log(`fuzz: ${total} inputs in ${seconds.toFixed(1)} s, ${counts.survived} connections survived, RSS +${(rssGrowth / 1e6).toFixed(0)} MB`);
    expect(total).toBeGreaterThanOrEqual(100_000);
    // Some inputs must be valid enough to keep the connection alive, or the fuzzer only tests the preface.
    expect(counts.survived).toBeGreaterThan(10_000);
    expect(rssGrowth).toBeLessThan(512 * 1024 * 1024);
  }, 120_000);
});
