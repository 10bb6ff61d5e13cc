/**
 * The bytes a connection has framed but the socket has not taken yet. Frames are appended here and
 * flushed in one socket write per turn of the event loop, so a frame header and its payload (and the
 * control frames produced while reading one TCP chunk) become one TLS record instead of several.
 */
import { FRAME_HEADER_LENGTH } from "./constants.ts";

export class OutBuf {
  buf: Uint8Array;
  start = 0;
  end = 0;

  constructor(initial = 4096) {
    this.buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.end - this.start;
  }

  /** Makes room for `n` more bytes and returns the position to write them at. */
  reserve(n: number): number {
    if (this.end + n <= this.buf.length) return this.end;
    const live = this.end - this.start;
    if (live + n <= this.buf.length && this.start >= this.buf.length >>> 1) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      let cap = this.buf.length * 2;
      while (cap < live + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
    }
    this.start = 0;
    this.end = live;
    return this.end;
  }

  frameHeader(length: number, type: number, flags: number, stream: number): void {
    const p = this.reserve(FRAME_HEADER_LENGTH);
    const b = this.buf;
    b[p] = (length >>> 16) & 0xff;
    b[p + 1] = (length >>> 8) & 0xff;
    b[p + 2] = length & 0xff;
    b[p + 3] = type;
    b[p + 4] = flags;
    b[p + 5] = (stream >>> 24) & 0x7f;
    b[p + 6] = (stream >>> 16) & 0xff;
    b[p + 7] = (stream >>> 8) & 0xff;
    b[p + 8] = stream & 0xff;
    this.end = p + FRAME_HEADER_LENGTH;
  }

  u32(v: number): void {
    const p = this.reserve(4);
    const b = this.buf;
    b[p] = (v >>> 24) & 0xff;
    b[p + 1] = (v >>> 16) & 0xff;
    b[p + 2] = (v >>> 8) & 0xff;
    b[p + 3] = v & 0xff;
    this.end = p + 4;
  }

  u16(v: number): void {
    const p = this.reserve(2);
    this.buf[p] = (v >>> 8) & 0xff;
    this.buf[p + 1] = v & 0xff;
    this.end = p + 2;
  }

  bytes(src: Uint8Array, off = 0, len = src.length - off): void {
    const p = this.reserve(len);
    this.buf.set(len === src.length ? src : src.subarray(off, off + len), p);
    this.end = p + len;
  }

  /** Drops `n` bytes the socket accepted. */
  consume(n: number): void {
    this.start += n;
    if (this.start === this.end) {
      this.start = this.end = 0;
      // Give back a buffer a burst grew beyond 1 MiB, so an idle connection stays small.
      if (this.buf.length > 1 << 20) this.buf = new Uint8Array(16 * 1024);
    }
  }
}
