/**
 * Test-only: drives an H2Connection through an in-memory transport, as a scripted raw HTTP/2 peer
 * would. The peer writes frames byte by byte if asked (every split point gets exercised) and reads
 * back what the connection wrote, parsed into frames.
 */
import { Flag, FrameType, PREFACE, Setting } from "./constants.ts";
import { H2Connection, type H2Settings, type Transport } from "./connection.ts";
import { encodeFrame, type FrameHandler, FrameParser } from "./frame.ts";
import { HpackDecoder, HpackEncoder } from "./hpack.ts";
import type { HboneStream } from "./stream.ts";

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

/** Collects frames; DATA frames arrive whole with padding removed. */
class Collector implements FrameHandler {
  frames: Frame[] = [];
  #data: Uint8Array[] = [];
  onFrame(type: number, flags: number, stream: number, payload: Uint8Array): void {
    this.frames.push({ type, flags, stream, payload: payload.slice() });
  }
  onDataFrame(): void {
    this.#data = [];
  }
  onData(_s: number, chunk: Uint8Array): void {
    this.#data.push(chunk.slice());
  }
  onDataEnd(stream: number, flags: number): void {
    this.frames.push({ type: FrameType.DATA, flags, stream, payload: Buffer.concat(this.#data) });
  }
}

export class MemoryTransport implements Transport {
  out: Uint8Array[] = [];
  ended = false;
  terminated = false;
  paused = false;
  /** When set, write() accepts at most this many bytes per call (simulates a full socket). */
  accept = Infinity;
  written = 0;
  write(data: Uint8Array, offset: number, length: number): number {
    if (this.ended || this.terminated) return -1;
    const n = Math.min(length, this.accept);
    if (n > 0) this.out.push(data.slice(offset, offset + n));
    this.written += n;
    return n;
  }
  end(): void {
    this.ended = true;
  }
  terminate(): void {
    this.terminated = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

export const u32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
};

export function settingsPayload(list: [number, number][]): Uint8Array {
  const b = new Uint8Array(list.length * 6);
  const dv = new DataView(b.buffer);
  list.forEach(([k, v], i) => {
    dv.setUint16(i * 6, k);
    dv.setUint32(i * 6 + 2, v >>> 0);
  });
  return b;
}

/** A scripted peer of a connection under test. */
export class ScriptedPeer {
  readonly conn: H2Connection;
  readonly transport = new MemoryTransport();
  readonly streams: HboneStream[] = [];
  readonly encoder = new HpackEncoder();
  readonly decoder = new HpackDecoder();
  #collector = new Collector();
  #parser: FrameParser;
  #read = 0;
  closeError: Error | undefined | null = null;

  /** `side` is the side of the connection under test. */
  constructor(side: "server" | "client", settings: Partial<H2Settings> = {}) {
    this.conn = new H2Connection(this.transport, {
      isClient: side === "client",
      settings: { pingIntervalMs: 0, ...settings },
    });
    this.conn.onStream = (s) => this.streams.push(s);
    this.conn.onClose = (e) => (this.closeError = e);
    this.#parser = new FrameParser(this.#collector, { expectPreface: side === "client", maxFrameSize: 1 << 24 });
    this.conn.start();
  }

  /** Raw bytes into the connection, optionally one byte at a time. */
  send(bytes: Uint8Array, byteByByte = false): void {
    if (!byteByByte) return this.conn.receive(bytes);
    for (let i = 0; i < bytes.length; i++) this.conn.receive(bytes.subarray(i, i + 1));
  }

  frame(type: number, flags: number, stream: number, payload?: Uint8Array, byteByByte = false): void {
    this.send(encodeFrame(type, flags, stream, payload), byteByByte);
  }

  /** Client preface + empty SETTINGS (server under test) or SETTINGS (client under test). */
  handshake(settings: [number, number][] = []): void {
    if (!this.conn.isClient) this.send(PREFACE);
    this.frame(FrameType.SETTINGS, 0, 0, settingsPayload(settings));
  }

  headers(stream: number, fields: string[], flags: number = Flag.END_HEADERS): void {
    this.frame(FrameType.HEADERS, flags, stream, this.encoder.encode(fields).slice());
  }

  connect(stream: number, authority = "10.0.0.1:80", extra: string[] = []): void {
    this.headers(stream, [":method", "CONNECT", ":authority", authority, ...extra]);
  }

  /** Frames the connection wrote since the last call (after its flush at the end of the event-loop turn). */
  async frames(): Promise<Frame[]> {
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    const t = this.transport;
    while (this.#read < t.out.length) this.#parser.push(t.out[this.#read++]);
    const f = this.#collector.frames;
    this.#collector.frames = [];
    return f;
  }

  /** Decoded fields of a HEADERS frame the connection sent. */
  fields(f: Frame): string[] {
    let p = f.payload;
    if (f.flags & Flag.PADDED) p = p.subarray(1, p.length - p[0]);
    if (f.flags & Flag.PRIORITY) p = p.subarray(5);
    return this.decoder.decode(p);
  }
}

export { Flag, FrameType, Setting };
