/**
 * HTTP/2 frame layer (RFC 9113 section 4): a push parser that turns TCP chunks into frames, and the
 * writers for every frame type HBONE sends.
 *
 * DATA payloads are not reassembled: they are handed on as they arrive (padding stripped), so a
 * 1 MiB frame costs no 1 MiB buffer and its first bytes go out before its last ones arrive.
 * Other frames are delivered whole, as a view into the chunk when they fit in one.
 */
import { Flag, FRAME_HEADER_LENGTH, FrameType, H2Code, PREFACE } from "./constants.ts";
import { H2ProtocolError } from "./errors.ts";
import type { OutBuf } from "./outbuf.ts";

export interface FrameHandler {
  /** A complete frame other than DATA. */
  onFrame(type: number, flags: number, stream: number, payload: Uint8Array): void;
  /** Start of a DATA frame: `length` is the whole payload, padding included (what flow control counts). */
  onDataFrame(stream: number, flags: number, length: number): void;
  /** Part of a DATA frame's content. */
  onData(stream: number, chunk: Uint8Array): void;
  /** End of a DATA frame (END_STREAM is in `flags`). */
  onDataEnd(stream: number, flags: number): void;
}

const enum State {
  Preface,
  Header,
  Payload,
  DataPadLength,
  DataBody,
  DataPadding,
}

export class FrameParser {
  /** Our SETTINGS_MAX_FRAME_SIZE: larger frames are a connection error. */
  maxFrameSize: number;
  /** Set by the handler to stop parsing (the connection has closed). */
  stopped = false;

  #h: FrameHandler;
  #state: State;
  #hdr = new Uint8Array(FRAME_HEADER_LENGTH);
  #hdrLen = 0;
  #prefaceLen = 0;
  #type = 0;
  #flags = 0;
  #stream = 0;
  #length = 0;
  /** Bytes of the current frame payload still to read (for DATA: in the current part). */
  #remaining = 0;
  #payload: Uint8Array | null = null;
  #payloadLen = 0;
  #pad = 0;

  constructor(handler: FrameHandler, opts: { expectPreface: boolean; maxFrameSize: number }) {
    this.#h = handler;
    this.#state = opts.expectPreface ? State.Preface : State.Header;
    this.maxFrameSize = opts.maxFrameSize;
  }

  /** Feeds bytes from the socket. Throws H2ProtocolError for connection errors. */
  push(chunk: Uint8Array): void {
    let p = 0;
    const n = chunk.length;
    while (p < n && !this.stopped) {
      switch (this.#state) {
        case State.Preface: {
          while (p < n && this.#prefaceLen < PREFACE.length) {
            if (chunk[p++] !== PREFACE[this.#prefaceLen++]) {
              throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "Invalid connection preface");
            }
          }
          if (this.#prefaceLen === PREFACE.length) this.#state = State.Header;
          break;
        }
        case State.Header: {
          if (this.#hdrLen === 0 && n - p >= FRAME_HEADER_LENGTH) {
            this.#header(chunk, p);
            p += FRAME_HEADER_LENGTH;
          } else {
            while (p < n && this.#hdrLen < FRAME_HEADER_LENGTH) this.#hdr[this.#hdrLen++] = chunk[p++];
            if (this.#hdrLen < FRAME_HEADER_LENGTH) break;
            this.#hdrLen = 0;
            this.#header(this.#hdr, 0);
          }
          break;
        }
        case State.Payload: {
          const take = Math.min(this.#remaining, n - p);
          if (this.#payload === null && take === this.#length) {
            // The whole payload is in this chunk: hand out a view, no copy.
            const view = chunk.subarray(p, p + take);
            p += take;
            this.#state = State.Header;
            this.#h.onFrame(this.#type, this.#flags, this.#stream, view);
            break;
          }
          if (this.#payload === null) {
            this.#payload = new Uint8Array(this.#length);
            this.#payloadLen = 0;
          }
          this.#payload.set(chunk.subarray(p, p + take), this.#payloadLen);
          this.#payloadLen += take;
          this.#remaining -= take;
          p += take;
          if (this.#remaining === 0) {
            const payload = this.#payload;
            this.#payload = null;
            this.#state = State.Header;
            this.#h.onFrame(this.#type, this.#flags, this.#stream, payload);
          }
          break;
        }
        case State.DataPadLength: {
          this.#pad = chunk[p++];
          if (this.#pad >= this.#length) {
            throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "DATA padding longer than the frame");
          }
          this.#remaining = this.#length - 1 - this.#pad;
          if (this.#remaining > 0) this.#state = State.DataBody;
          else this.#bodyDone();
          break;
        }
        case State.DataBody: {
          const take = Math.min(this.#remaining, n - p);
          this.#remaining -= take;
          const piece = chunk.subarray(p, p + take);
          p += take;
          this.#h.onData(this.#stream, piece);
          if (this.#remaining === 0 && !this.stopped) this.#bodyDone();
          break;
        }
        case State.DataPadding: {
          const take = Math.min(this.#pad, n - p);
          this.#pad -= take;
          p += take;
          if (this.#pad === 0) this.#endData();
          break;
        }
      }
    }
  }

  #bodyDone(): void {
    if (this.#pad > 0) this.#state = State.DataPadding;
    else this.#endData();
  }

  #endData(): void {
    this.#state = State.Header;
    this.#h.onDataEnd(this.#stream, this.#flags);
  }

  #header(b: Uint8Array, o: number): void {
    const length = (b[o] << 16) | (b[o + 1] << 8) | b[o + 2];
    this.#type = b[o + 3];
    this.#flags = b[o + 4];
    this.#stream = ((b[o + 5] & 0x7f) << 24) | (b[o + 6] << 16) | (b[o + 7] << 8) | b[o + 8];
    this.#length = length;
    if (length > this.maxFrameSize) {
      throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, `Frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
    }
    if (this.#type === FrameType.DATA) {
      this.#pad = 0;
      this.#h.onDataFrame(this.#stream, this.#flags, length);
      if (this.#flags & Flag.PADDED) {
        if (length === 0) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "Padded DATA frame without a pad length");
        this.#state = State.DataPadLength;
      } else {
        this.#remaining = length;
        if (length > 0) this.#state = State.DataBody;
        else this.#endData();
      }
      return;
    }
    if (length === 0) {
      this.#state = State.Header;
      this.#h.onFrame(this.#type, this.#flags, this.#stream, EMPTY);
      return;
    }
    this.#remaining = length;
    this.#payload = null;
    this.#state = State.Payload;
  }
}

const EMPTY = new Uint8Array(0);

// ---- writers -------------------------------------------------------------------------------------

export function writeSettings(out: OutBuf, settings: readonly (readonly [number, number])[]): void {
  out.frameHeader(settings.length * 6, FrameType.SETTINGS, 0, 0);
  for (const [id, value] of settings) {
    out.u16(id);
    out.u32(value);
  }
}

export function writeSettingsAck(out: OutBuf): void {
  out.frameHeader(0, FrameType.SETTINGS, Flag.ACK, 0);
}

export function writeWindowUpdate(out: OutBuf, stream: number, increment: number): void {
  out.frameHeader(4, FrameType.WINDOW_UPDATE, 0, stream);
  out.u32(increment & 0x7fff_ffff);
}

export function writeRstStream(out: OutBuf, stream: number, code: number): void {
  out.frameHeader(4, FrameType.RST_STREAM, 0, stream);
  out.u32(code);
}

export function writePing(out: OutBuf, ack: boolean, data: Uint8Array): void {
  out.frameHeader(8, FrameType.PING, ack ? Flag.ACK : 0, 0);
  out.bytes(data, 0, 8);
}

export function writeGoaway(out: OutBuf, lastStream: number, code: number, debug = ""): void {
  const d = new TextEncoder().encode(debug);
  out.frameHeader(8 + d.length, FrameType.GOAWAY, 0, 0);
  out.u32(lastStream);
  out.u32(code);
  if (d.length) out.bytes(d);
}

/** HEADERS (+ CONTINUATION) carrying an encoded field block, split at the peer's maximum frame size. */
export function writeHeaders(out: OutBuf, stream: number, block: Uint8Array, endStream: boolean, maxFrame: number): void {
  let off = 0;
  let first = true;
  do {
    const len = Math.min(maxFrame, block.length - off);
    const last = off + len === block.length;
    const type = first ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    out.frameHeader(len, type, flags, stream);
    out.bytes(block, off, len);
    off += len;
    first = false;
  } while (off < block.length);
}

/** One DATA frame; the caller keeps `len` within the peer's maximum frame size and the windows. */
export function writeData(out: OutBuf, stream: number, data: Uint8Array, off: number, len: number, endStream: boolean): void {
  out.frameHeader(len, FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream);
  if (len > 0) out.bytes(data, off, len);
}

/** Encodes one frame into a new array (tests and fuzzing). */
export function encodeFrame(type: number, flags: number, stream: number, payload: Uint8Array = EMPTY): Uint8Array {
  const f = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  f[0] = (payload.length >>> 16) & 0xff;
  f[1] = (payload.length >>> 8) & 0xff;
  f[2] = payload.length & 0xff;
  f[3] = type;
  f[4] = flags;
  new DataView(f.buffer).setUint32(5, stream & 0x7fff_ffff);
  f.set(payload, FRAME_HEADER_LENGTH);
  return f;
}
