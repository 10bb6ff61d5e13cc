/**
 * HTTP/1.1 message heads (RFC 9112 sections 2-5): the start line and the field section, parsed from
 * bytes the proxy holds, and the framing of the body that follows (section 6.3).
 *
 * Strict where leniency lets two parsers disagree about where a message ends (request smuggling):
 * lines end with CRLF, field names are tokens with no space before the colon, obsolete line folding is
 * refused, Transfer-Encoding with Content-Length is refused, as are differing Content-Length values
 * and a request Transfer-Encoding whose last coding is not chunked.
 */

export interface RequestHead {
  method: string;
  /** The request target as sent ("/a/b?x=1"; absolute-form is reduced to its path by the caller). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minor: 0 | 1;
  /** Flat list of field lines: name (lower-cased), value (trimmed), name, value ... */
  fields: string[];
}

export interface ResponseHead {
  status: number;
  reason: string;
  minor: 0 | 1;
  fields: string[];
}

export type HeadResult<T> =
  | { kind: "head"; head: T; length: number }
  | { kind: "incomplete" }
  | { kind: "error"; status: 400 | 431 | 501 | 505; reason: string };

const CRLFCRLF = Buffer.from("\r\n\r\n");

// RFC 9110 token characters.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function isToken(s: string): boolean {
  return TOKEN.test(s);
}

const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Field values: visible ASCII, obs-text, SP and HTAB; never CR, LF or NUL. */
function badValue(v: string): boolean {
  return CONTROL.test(v);
}

/** Where the head ends (index just past CRLFCRLF), or -1. `from` skips bytes already searched. */
export function headEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf(CRLFCRLF, Math.max(0, from - 3));
  return i < 0 ? -1 : i + 4;
}

function parseFields(lines: string[], start: number): string[] | string {
  const fields: string[] = [];
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0) continue;
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) return "obsolete line folding";
    const colon = line.indexOf(":");
    if (colon <= 0) return "field line without a colon";
    const name = line.slice(0, colon);
    if (!isToken(name)) return `invalid field name "${name.slice(0, 40)}"`;
    const value = line.slice(colon + 1).trim();
    if (badValue(value)) return `invalid characters in field "${name}"`;
    // Names are case-insensitive: lower-cased once here, compared and forwarded as such.
    fields.push(name.toLowerCase(), value);
  }
  return fields;
}

function version(v: string): 0 | 1 | undefined {
  if (v === "HTTP/1.1") return 1;
  if (v === "HTTP/1.0") return 0;
  return undefined;
}

/** Parses a request head from the start of `buf` (at most `max` bytes of head). */
export function parseRequestHead(buf: Buffer, max: number, searchFrom = 0): HeadResult<RequestHead> {
  // Tolerated before a request line (RFC 9112 2.2): empty lines left over from a previous message.
  let off = 0;
  while (off + 1 < buf.length && buf[off] === 0x0d && buf[off + 1] === 0x0a) off += 2;
  const end = headEnd(buf, Math.max(off, searchFrom));
  if (end < 0) {
    return buf.length - off > max ? { kind: "error", status: 431, reason: "request head too large" } : { kind: "incomplete" };
  }
  if (end - off > max) return { kind: "error", status: 431, reason: "request head too large" };
  const text = buf.toString("latin1", off, end - 4);
  if (/[^\r]\n|^\n/.test(text)) return { kind: "error", status: 400, reason: "bare LF in request head" };
  const lines = text.split("\r\n");
  const start = lines[0]!;
  const sp1 = start.indexOf(" ");
  const sp2 = start.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 === sp1) return { kind: "error", status: 400, reason: "malformed request line" };
  const method = start.slice(0, sp1);
  const target = start.slice(sp1 + 1, sp2);
  const minor = version(start.slice(sp2 + 1));
  if (!isToken(method)) return { kind: "error", status: 400, reason: "malformed method" };
  if (minor === undefined) {
    return /^HTTP\/\d\.\d$/.test(start.slice(sp2 + 1))
      ? { kind: "error", status: 505, reason: "HTTP version not supported" }
      : { kind: "error", status: 400, reason: "malformed request line" };
  }
  if (target.length === 0 || target.includes(" ") || badValue(target)) {
    return { kind: "error", status: 400, reason: "malformed request target" };
  }
  const fields = parseFields(lines, 1);
  if (typeof fields === "string") return { kind: "error", status: 400, reason: fields };
  return { kind: "head", head: { method, target, minor, fields }, length: end };
}

/** Parses a response head from the start of `buf`. */
export function parseResponseHead(buf: Buffer, max: number, searchFrom = 0): HeadResult<ResponseHead> {
  const end = headEnd(buf, searchFrom);
  if (end < 0) return buf.length > max ? { kind: "error", status: 400, reason: "response head too large" } : { kind: "incomplete" };
  if (end > max) return { kind: "error", status: 400, reason: "response head too large" };
  const text = buf.toString("latin1", 0, end - 4);
  if (/[^\r]\n|^\n/.test(text)) return { kind: "error", status: 400, reason: "bare LF in response head" };
  const lines = text.split("\r\n");
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) return { kind: "error", status: 400, reason: "malformed status line" };
  const fields = parseFields(lines, 1);
  if (typeof fields === "string") return { kind: "error", status: 400, reason: fields };
  return {
    kind: "head",
    head: { status: Number(m[2]), reason: m[3] ?? "", minor: m[1] === "HTTP/1.1" ? 1 : 0, fields },
    length: end,
  };
}

/** How a message body is delimited. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Response only: the body ends when the connection does. */
  | { kind: "close" };

/** The values of field `name` (lower case, as parsed names are), in order. */
export function fieldValues(fields: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) out.push(fields[i + 1]!);
  return out;
}

/** The comma-separated tokens of field `name`, lower-cased (Connection, Transfer-Encoding, Upgrade). */
export function fieldTokens(fields: string[], name: string): string[] {
  const out: string[] = [];
  for (const v of fieldValues(fields, name)) {
    for (const t of v.split(",")) {
      const s = t.trim().toLowerCase();
      if (s) out.push(s);
    }
  }
  return out;
}

function contentLength(fields: string[]): number | "bad" | undefined {
  const values = fieldValues(fields, "content-length");
  if (values.length === 0) return undefined;
  let n: number | undefined;
  for (const v of values) {
    for (const part of v.split(",")) {
      const p = part.trim();
      if (!/^\d{1,15}$/.test(p)) return "bad";
      const x = Number(p);
      if (n !== undefined && n !== x) return "bad";
      n = x;
    }
  }
  return n;
}

/** Body framing of a request (RFC 9112 6.3), or an error to answer with 400/501. */
export function requestFraming(head: RequestHead): Framing | { error: string; status: 400 | 501 } {
  const te = fieldTokens(head.fields, "transfer-encoding");
  const cl = contentLength(head.fields);
  if (te.length) {
    if (cl !== undefined) return { error: "both Transfer-Encoding and Content-Length", status: 400 };
    if (head.minor === 0) return { error: "Transfer-Encoding in an HTTP/1.0 request", status: 400 };
    if (te[te.length - 1] !== "chunked") return { error: "request Transfer-Encoding does not end with chunked", status: 400 };
    if (te.length > 1) return { error: `unsupported transfer coding "${te[0]}"`, status: 501 };
    return { kind: "chunked" };
  }
  if (cl === "bad") return { error: "invalid Content-Length", status: 400 };
  if (cl === undefined || cl === 0) return { kind: "none" };
  return { kind: "length", length: cl };
}

/** Body framing of a response to a request with `method` (RFC 9112 6.3), or an error (a bad upstream). */
export function responseFraming(head: ResponseHead, method: string): Framing | { error: string } {
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) return { kind: "none" };
  const te = fieldTokens(head.fields, "transfer-encoding");
  const cl = contentLength(head.fields);
  if (te.length) {
    if (cl !== undefined) return { error: "both Transfer-Encoding and Content-Length in the response" };
    return te[te.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  if (cl === "bad") return { error: "invalid Content-Length in the response" };
  if (cl === undefined) return { kind: "close" };
  return cl === 0 ? { kind: "none" } : { kind: "length", length: cl };
}
