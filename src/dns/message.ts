/**
 * The DNS wire format (RFC 1035 §4), as much as a proxy needs: read a message (header, questions and
 * resource records, with compressed names), and write queries and answers. Pure: bytes in, bytes out.
 *
 * Reading is defensive because the bytes come from any pod: every length is checked before it is used,
 * a compression pointer must point backwards (so a loop cannot hang the reader), a name is at most 255
 * bytes, and anything that does not fit is a DnsFormatError, which the server counts and drops.
 */

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** Largest UDP answer a client takes without EDNS (RFC 1035 §4.2.1). */
export const UDP_LIMIT = 512;

export class DnsFormatError extends Error {
  constructor(message: string) {
    super(`malformed DNS message: ${message}`);
    this.name = "DnsFormatError";
  }
}

export interface DnsHeader {
  id: number;
  /** A response (QR). */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  rcode: number;
}

export interface DnsQuestion {
  /** Lowercased, without the trailing dot ("" for the root). */
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Uint8Array;
}

export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

const MAX_NAME = 255;

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new DnsFormatError(`${what} runs past the end (${this.buf.length} bytes)`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    return ((this.u16(what) << 16) >>> 0) + this.u16(what);
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A possibly compressed name; the reader ends after the name's first occurrence. */
  name(): string {
    const labels: string[] = [];
    let at = this.pos;
    let jumped = false;
    let length = 1;
    for (;;) {
      if (at >= this.buf.length) throw new DnsFormatError("a name runs past the end");
      const len = this.buf[at]!;
      if ((len & 0xc0) === 0xc0) {
        if (at + 1 >= this.buf.length) throw new DnsFormatError("a compression pointer runs past the end");
        const target = ((len & 0x3f) << 8) | this.buf[at + 1]!;
        // Backwards only: a pointer to itself or forwards could loop.
        if (target >= at) throw new DnsFormatError("a compression pointer does not point backwards");
        if (!jumped) this.pos = at + 2;
        jumped = true;
        at = target;
        continue;
      }
      if (len & 0xc0) throw new DnsFormatError(`label type ${len >> 6} is not supported`);
      if (len === 0) {
        if (!jumped) this.pos = at + 1;
        return labels.join(".");
      }
      length += len + 1;
      if (length > MAX_NAME) throw new DnsFormatError("a name is longer than 255 bytes");
      if (at + 1 + len > this.buf.length) throw new DnsFormatError("a label runs past the end");
      labels.push(labelText(this.buf.subarray(at + 1, at + 1 + len)));
      at += 1 + len;
    }
  }
}

/** A label as text: ASCII lowercased; other bytes escaped as \DDD (as dig prints them) so no two labels collide. */
function labelText(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    if (c >= 0x41 && c <= 0x5a) s += String.fromCharCode(c + 32);
    else if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) s += String.fromCharCode(c);
    else s += `\\${String(c).padStart(3, "0")}`;
  }
  return s;
}

function readRecord(r: Reader): DnsRecord {
  const name = r.name();
  const type = r.u16("a record type");
  const cls = r.u16("a record class");
  const ttl = r.u32("a record TTL");
  const len = r.u16("a record length");
  return { name, type, class: cls, ttl, data: r.bytes(len, "record data") };
}

function readHeader(r: Reader): { header: DnsHeader; counts: readonly [number, number, number, number] } {
  if (r.buf.length < 12) throw new DnsFormatError(`${r.buf.length} bytes is shorter than a header`);
  const id = r.u16("id");
  const flags = r.u16("flags");
  const counts = [r.u16("qdcount"), r.u16("ancount"), r.u16("nscount"), r.u16("arcount")] as const;
  return { counts, header: {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  } };
}

/** Reads a whole message; throws DnsFormatError on anything malformed. */
export function parseMessage(buf: Uint8Array): DnsMessage {
  const r = new Reader(buf);
  const { header, counts } = readHeader(r);
  // Each question needs at least 5 bytes and each record 11: a count the buffer cannot hold is a lie.
  if (counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 > buf.length - 12) {
    throw new DnsFormatError("the section counts do not fit in the message");
  }
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i++) {
    questions.push({ name: r.name(), type: r.u16("a question type"), class: r.u16("a question class") });
  }
  const section = (n: number) => Array.from({ length: n }, () => readRecord(r));
  return { header, questions, answers: section(counts[1]), authorities: section(counts[2]), additionals: section(counts[3]) };
}

/** Only the header (a forwarded answer is passed on as it came; the proxy needs its id and TC bit). */
export function parseHeader(buf: Uint8Array): DnsHeader {
  return readHeader(new Reader(buf)).header;
}

class Writer {
  #buf = new Uint8Array(512);
  #len = 0;
  #grow(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  u8(v: number): void {
    this.#grow(1);
    this.#buf[this.#len++] = v & 0xff;
  }
  u16(v: number): void {
    this.u8(v >> 8);
    this.u8(v);
  }
  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.#grow(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }
  name(name: string): void {
    for (const label of name ? name.split(".") : []) {
      const b = labelBytes(label);
      if (b.length === 0 || b.length > 63) throw new DnsFormatError(`label "${label}" must have 1 to 63 bytes`);
      this.u8(b.length);
      this.bytes(b);
    }
    this.u8(0);
  }
  done(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** The inverse of labelText. */
function labelBytes(label: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const m = label[i] === "\\" ? /^\\(\d{3})/.exec(label.slice(i)) : null;
    if (m) {
      out.push(Number(m[1]) & 0xff);
      i += 3;
    } else out.push(label.charCodeAt(i) & 0xff);
  }
  return Uint8Array.from(out);
}

function flagsOf(h: Partial<DnsHeader>): number {
  return (h.response ? 0x8000 : 0) | ((h.opcode ?? 0) & 0xf) << 11 | (h.authoritative ? 0x0400 : 0) |
    (h.truncated ? 0x0200 : 0) | (h.recursionDesired ? 0x0100 : 0) | (h.recursionAvailable ? 0x0080 : 0) | ((h.rcode ?? 0) & 0xf);
}

export interface EncodeInput {
  header: Partial<DnsHeader> & { id: number };
  questions?: DnsQuestion[];
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
}

/** Writes a message (names uncompressed: answers of a proxy are small). */
export function encodeMessage(m: EncodeInput): Uint8Array {
  const w = new Writer();
  const q = m.questions ?? [], an = m.answers ?? [], ns = m.authorities ?? [], ar = m.additionals ?? [];
  w.u16(m.header.id);
  w.u16(flagsOf(m.header));
  for (const n of [q.length, an.length, ns.length, ar.length]) w.u16(n);
  for (const x of q) {
    w.name(x.name);
    w.u16(x.type);
    w.u16(x.class);
  }
  for (const rec of [...an, ...ns, ...ar]) {
    w.name(rec.name);
    w.u16(rec.type);
    w.u16(rec.class);
    w.u32(rec.ttl);
    w.u16(rec.data.length);
    w.bytes(rec.data);
  }
  return w.done();
}

/** A standard recursive query for one name and type. */
export function encodeQuery(id: number, name: string, type: number): Uint8Array {
  return encodeMessage({ header: { id, recursionDesired: true }, questions: [{ name, type, class: CLASS_IN }] });
}

/** An A record's data from a dotted IPv4 address. */
export function aRecordData(ip: string): Uint8Array {
  return Uint8Array.from(ip.split(".").map(Number));
}

/** The IPv4 address in an A record's data. */
export function aRecordAddress(data: Uint8Array): string | undefined {
  return data.length === 4 ? Array.from(data).join(".") : undefined;
}

/**
 * An answer to `query` (same id, question, and RD), as an authoritative proxy gives it: the records, or
 * none with `rcode`.
 */
export function answerTo(query: DnsMessage, answers: DnsRecord[], rcode: number = RCODE.NOERROR): Uint8Array {
  return encodeMessage({
    header: {
      id: query.header.id,
      response: true,
      opcode: query.header.opcode,
      authoritative: true,
      recursionDesired: query.header.recursionDesired,
      recursionAvailable: true,
      rcode,
    },
    questions: query.questions,
    answers,
  });
}

/**
 * A UDP client's limit: 512 bytes, or the payload size its EDNS OPT record advertises (RFC 6891 §6.2.3),
 * never below 512.
 */
export function udpLimitOf(query: DnsMessage): number {
  const opt = query.additionals.find((r) => r.type === TYPE.OPT);
  return opt ? Math.max(UDP_LIMIT, opt.class) : UDP_LIMIT;
}

/**
 * An answer too long for a UDP client, cut to its header and question with TC set (RFC 2181 §9): the
 * client asks again over TCP.
 */
export function truncatedAnswer(answer: Uint8Array): Uint8Array {
  const m = parseMessage(answer);
  return encodeMessage({ header: { ...m.header, truncated: true }, questions: m.questions });
}
