/**
 * The little DER the proxies need, without an ASN.1 library (private to src/identity): building a PKCS#10
 * request and reading the fields of a certificate that node:crypto's X509Certificate does not expose
 * (validity as dates, key usage bits, basic constraints, URI SANs). @peculiar/x509 does all of this too, but
 * costs about 15 MB of RSS once loaded; only the CA (the control role) loads it.
 */

/** A TLV read from DER: its tag byte and where its content lies in the buffer. */
export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

const TAG = { boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, oid: 0x06, utcTime: 0x17, generalizedTime: 0x18, sequence: 0x30, set: 0x31 };

/** Reads the TLV at `off` (high-tag-number forms are not used by certificates and are refused). */
export function readTlv(b: Uint8Array, off: number, limit = b.length): Tlv {
  if (off + 2 > limit) throw new Error("truncated DER");
  const tag = b[off]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("unsupported DER tag");
  let len = b[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  if (start + len > limit) throw new Error("truncated DER");
  return { tag, start, end: start + len };
}

/** The TLVs inside a constructed TLV, in order. */
export function childrenOf(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = t.start; off < t.end; ) {
    const c = readTlv(b, off, t.end);
    out.push(c);
    off = c.end;
  }
  return out;
}

function oidString(b: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

function timeOf(b: Uint8Array, t: Tlv): Date {
  const s = new TextDecoder().decode(b.subarray(t.start, t.end));
  const m = t.tag === TAG.utcTime ? s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/) : s.match(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
  if (!m) throw new Error(`bad certificate time "${s}"`);
  let year = Number(m[1]);
  if (t.tag === TAG.utcTime) year += year < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** Key usage bits in RFC 5280 order: bit i of the BIT STRING is `1 << i` (digitalSignature = 1). */
export const KeyUsage = { digitalSignature: 1, keyCertSign: 1 << 5, cRLSign: 1 << 6 } as const;

/** What path and SVID validation read from a certificate beyond node:crypto's X509Certificate. */
export interface CertificateFields {
  notBefore: Date;
  notAfter: Date;
  /** The serial as upper-case hex, without the sign byte DER adds before a high bit. */
  serial: string;
  /** basicConstraints: absent, or cA and the optional pathLenConstraint. */
  basicConstraints?: { ca: boolean; pathLength?: number };
  /** keyUsage bits (see KeyUsage), absent when the extension is. */
  keyUsage?: number;
  /** URI SANs, in order. */
  uris: string[];
  /** A SAN extension that could not be read. */
  sanError?: string;
}

/** Reads the fields of a DER certificate that validation needs. Throws on malformed DER. */
export function certificateFields(der: Uint8Array): CertificateFields {
  const cert = readTlv(der, 0);
  const tbs = childrenOf(der, childrenOf(der, cert)[0]!);
  let i = tbs[0]!.tag === 0xa0 ? 1 : 0; // [0] version
  const serialTlv = tbs[i++]!;
  i += 2; // signature algorithm, issuer
  const validity = childrenOf(der, tbs[i++]!);
  const out: CertificateFields = {
    notBefore: timeOf(der, validity[0]!),
    notAfter: timeOf(der, validity[1]!),
    serial: Buffer.from(der.subarray(serialTlv.start + (der[serialTlv.start] === 0 && serialTlv.end - serialTlv.start > 1 ? 1 : 0), serialTlv.end)).toString("hex").toUpperCase(),
    uris: [],
  };
  const exts = tbs.find((t) => t.tag === 0xa3);
  if (!exts) return out;
  for (const ext of childrenOf(der, childrenOf(der, exts)[0]!)) {
    const parts = childrenOf(der, ext);
    const oid = oidString(der, parts[0]!);
    const value = parts.at(-1)!;
    if (oid === "2.5.29.19") {
      const bc = childrenOf(der, readTlv(der, value.start, value.end));
      const ca = bc[0]?.tag === TAG.boolean && der[bc[0].start] !== 0;
      const len = bc.find((t) => t.tag === TAG.integer);
      out.basicConstraints = { ca, pathLength: len ? intOf(der, len) : undefined };
    } else if (oid === "2.5.29.15") {
      // BIT STRING: one byte of unused-bit count, then bit 0 is the high bit of the next byte.
      const bits = readTlv(der, value.start, value.end);
      let ku = 0;
      for (let bit = 0; bit < 9; bit++) {
        const at = bits.start + 1 + (bit >> 3);
        if (at < bits.end && der[at]! & (0x80 >> (bit & 7))) ku |= 1 << bit;
      }
      out.keyUsage = ku;
    } else if (oid === "2.5.29.17") {
      try {
        for (const name of childrenOf(der, readTlv(der, value.start, value.end))) {
          if (name.tag === 0x86) out.uris.push(new TextDecoder().decode(der.subarray(name.start, name.end)));
        }
      } catch (e) {
        out.sanError = (e as Error).message;
      }
    }
  }
  return out;
}

function intOf(b: Uint8Array, t: Tlv): number {
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + b[i]!;
  return v;
}

// ---- writing ---------------------------------------------------------------------------------------

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV: tag, length, content (the concatenation of `parts`). */
export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const head = [tag, ...lengthBytes(len)];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  let off = head.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const bytes = [a! * 40 + b!];
  for (const v of rest) {
    const enc = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) enc.unshift(0x80 | (x & 0x7f));
    bytes.push(...enc);
  }
  return tlv(TAG.oid, new Uint8Array(bytes));
}

/** A DER INTEGER from unsigned big-endian bytes (leading zeros dropped, a zero added for the sign). */
function uintBytes(raw: Uint8Array): Uint8Array {
  let i = 0;
  while (i < raw.length - 1 && raw[i] === 0) i++;
  const v = raw.subarray(i);
  return tlv(TAG.integer, ...(v[0]! & 0x80 ? [new Uint8Array([0]), v] : [v]));
}

/** A subject alternative name as a CSR asks for it. */
export interface GeneralName {
  type: "url" | "dns" | "ip";
  value: string;
}

function generalName(n: GeneralName): Uint8Array {
  const text = (s: string) => new TextEncoder().encode(s);
  if (n.type === "url") return tlv(0x86, text(n.value));
  if (n.type === "dns") return tlv(0x82, text(n.value));
  return tlv(0x87, ipBytes(n.value));
}

function ipBytes(ip: string): Uint8Array {
  if (!ip.includes(":")) return new Uint8Array(ip.split(".").map(Number));
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...Array(tail === undefined ? 0 : 8 - h.length - t.length).fill(0), ...t];
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}

/** ecdsa-with-SHA256 (RFC 5758 §3.2: no parameters). */
const ECDSA_SHA256 = tlv(TAG.sequence, oid("1.2.840.10045.4.3.2"));

/**
 * A PKCS#10 request (RFC 2986) with an empty subject and one critical subjectAltName extension, signed by
 * `keys` with ECDSA P-256 / SHA-256. Returns DER.
 */
export async function certificationRequest(keys: CryptoKeyPair, sans: readonly GeneralName[]): Promise<Uint8Array> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const san = tlv(TAG.sequence, oid("2.5.29.17"), tlv(TAG.boolean, new Uint8Array([0xff])), tlv(TAG.octetString, tlv(TAG.sequence, ...sans.map(generalName))));
  const extensionRequest = tlv(TAG.sequence, oid("1.2.840.113549.1.9.14"), tlv(TAG.set, tlv(TAG.sequence, san)));
  const info = tlv(TAG.sequence, tlv(TAG.integer, new Uint8Array([0])), tlv(TAG.sequence), spki, tlv(0xa0, extensionRequest));
  // WebCrypto signs in IEEE P1363 form (r || s); X.509 wants the DER ECDSA-Sig-Value.
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, info));
  const sig = tlv(TAG.sequence, uintBytes(raw.subarray(0, 32)), uintBytes(raw.subarray(32)));
  return tlv(TAG.sequence, info, ECDSA_SHA256, tlv(TAG.bitString, new Uint8Array([0]), sig));
}
