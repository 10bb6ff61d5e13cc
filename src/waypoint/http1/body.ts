/**
 * Finds where a message body ends without changing it: the proxy passes body bytes through as they
 * arrive (chunk framing included), so this only tracks Content-Length countdowns and the chunked
 * coding's state machine (RFC 9112 7.1), including trailer fields.
 */
import type { Framing } from "./head.ts";

const S_SIZE = 0; // hex digits
const S_EXT = 1; // ";ext" up to CR
const S_SIZE_LF = 2;
const S_DATA = 3;
const S_DATA_CR = 4;
const S_DATA_LF = 5;
const S_TRAILER_START = 6; // start of a trailer line (or the final CRLF)
const S_TRAILER = 7; // inside a trailer line
const S_TRAILER_LF = 8;
const S_FINAL_LF = 9;
const S_DONE = 10;

/** Longest chunk-size line and trailer section accepted. */
const MAX_SIZE_LINE = 1024;
const MAX_TRAILERS = 16 * 1024;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

export class BodyTracker {
  /** The body is complete. */
  done: boolean;
  /** A malformed body: the connection must be closed. */
  error: string | undefined;
  /** Body bytes seen so far (framing included). */
  bytes = 0;
  readonly #framing: Framing["kind"];
  #remaining: number;
  #state = S_SIZE;
  #digits = 0;
  #lineLen = 0;
  #trailerBytes = 0;

  /**
   * `data`, when given, receives the payload of a chunked body without its framing (to send a chunked
   * body to an HTTP/1.0 client); `feed` still reports framed bytes consumed.
   */
  readonly #data: ((buf: Uint8Array, start: number, end: number) => void) | undefined;

  constructor(framing: Framing, data?: (buf: Uint8Array, start: number, end: number) => void) {
    this.#data = data;
    this.#framing = framing.kind;
    this.#remaining = framing.kind === "length" ? framing.length : 0;
    this.done = framing.kind === "none";
  }

  /** Bytes of a chunked body still to come are unknown; of a length body, known. */
  get remaining(): number | undefined {
    return this.#framing === "length" ? this.#remaining : undefined;
  }

  /**
   * Reads body bytes from `buf[off..]`. Returns how many belong to this body (the rest is the next
   * message). After an error, returns 0 and sets `error`.
   */
  feed(buf: Uint8Array, off: number): number {
    if (this.done || this.error) return 0;
    const avail = buf.length - off;
    switch (this.#framing) {
      case "none":
        return 0;
      case "close":
        this.bytes += avail;
        return avail;
      case "length": {
        const n = Math.min(avail, this.#remaining);
        this.#remaining -= n;
        this.bytes += n;
        if (this.#remaining === 0) this.done = true;
        return n;
      }
      default: {
        const n = this.#chunked(buf, off);
        this.bytes += n;
        return n;
      }
    }
  }

  /** The connection ended: a "close" body is complete, anything else was cut short. */
  eof(): void {
    if (this.done) return;
    if (this.#framing === "close") this.done = true;
    else this.error ??= "connection closed before the end of the body";
  }

  #fail(why: string): number {
    this.error = why;
    return 0;
  }

  #chunked(buf: Uint8Array, start: number): number {
    let i = start;
    const end = buf.length;
    while (i < end) {
      const st = this.#state;
      if (st === S_DATA) {
        const n = Math.min(end - i, this.#remaining);
        if (this.#data && n > 0) this.#data(buf, i, i + n);
        i += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = S_DATA_CR;
        continue;
      }
      const c = buf[i]!;
      i++;
      switch (st) {
        case S_SIZE: {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.#digits > 13) return this.#fail("chunk size too large");
            this.#remaining = this.#remaining * 16 + h;
          } else if (this.#digits === 0) {
            return this.#fail("missing chunk size");
          } else if (c === 0x0d) {
            this.#state = S_SIZE_LF;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.#state = S_EXT;
          } else {
            return this.#fail("invalid chunk size");
          }
          break;
        }
        case S_EXT:
          if (++this.#lineLen > MAX_SIZE_LINE) return this.#fail("chunk extension too long");
          if (c === 0x0d) this.#state = S_SIZE_LF;
          else if (c === 0x0a || c === 0) return this.#fail("invalid chunk extension");
          break;
        case S_SIZE_LF:
          if (c !== 0x0a) return this.#fail("chunk size line not ended by CRLF");
          this.#digits = 0;
          this.#lineLen = 0;
          this.#state = this.#remaining === 0 ? S_TRAILER_START : S_DATA;
          break;
        case S_DATA_CR:
          if (c !== 0x0d) return this.#fail("chunk data not followed by CRLF");
          this.#state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== 0x0a) return this.#fail("chunk data not followed by CRLF");
          this.#state = S_SIZE;
          break;
        case S_TRAILER_START:
          if (c === 0x0d) this.#state = S_FINAL_LF;
          else if (c === 0x0a) return this.#fail("bare LF in trailers");
          else this.#state = S_TRAILER;
          if (++this.#trailerBytes > MAX_TRAILERS) return this.#fail("trailers too large");
          break;
        case S_TRAILER:
          if (++this.#trailerBytes > MAX_TRAILERS) return this.#fail("trailers too large");
          if (c === 0x0d) this.#state = S_TRAILER_LF;
          else if (c === 0x0a) return this.#fail("bare LF in trailers");
          break;
        case S_TRAILER_LF:
          if (c !== 0x0a) return this.#fail("trailer line not ended by CRLF");
          this.#state = S_TRAILER_START;
          break;
        case S_FINAL_LF:
          if (c !== 0x0a) return this.#fail("chunked body not ended by CRLF");
          this.#state = S_DONE;
          this.done = true;
          return i - start;
      }
    }
    return i - start;
  }
}
