/**
 * HPACK Huffman coding (RFC 7541 section 5.2 and Appendix B). The code is canonical, so decoding
 * works per code length: after reading L bits, the code is a symbol of length L exactly when it is
 * below the first code of length L plus the number of such symbols.
 */
import { HUFFMAN_LENGTHS } from "./huffman_table.ts";

const EOS = 256;
const MAX_LEN = 30;

const codes = new Uint32Array(257);
const lengths = Uint8Array.from(HUFFMAN_LENGTHS);
/** Symbols sorted by (length, symbol). */
const sorted = new Uint16Array(257);
/** For each length: first canonical code, number of symbols, index of the first in `sorted`. */
const firstCode = new Float64Array(MAX_LEN + 2);
const countAt = new Uint16Array(MAX_LEN + 2);
const offsetAt = new Uint16Array(MAX_LEN + 2);

{
  const order = Array.from({ length: 257 }, (_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  let code = 0;
  let prevLen = lengths[order[0]];
  for (let i = 0; i < order.length; i++) {
    const s = order[i];
    if (i > 0) code = (code + 1) * 2 ** (lengths[s] - prevLen);
    prevLen = lengths[s];
    codes[s] = code;
    sorted[i] = s;
    if (countAt[prevLen] === 0) {
      firstCode[prevLen] = code;
      offsetAt[prevLen] = i;
    }
    countAt[prevLen]++;
  }
}

/** Number of bytes the Huffman encoding of `src[start..end)` takes. */
export function huffmanLength(src: Uint8Array, start = 0, end = src.length): number {
  let bits = 0;
  for (let i = start; i < end; i++) bits += lengths[src[i]];
  return (bits + 7) >>> 3;
}

/** Same as huffmanLength for a Latin-1 string (no intermediate buffer). */
export function huffmanLengthLatin1(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += lengths[s.charCodeAt(i) & 0xff];
  return (bits + 7) >>> 3;
}

/** Huffman-encodes `src` into `dst` at `pos`; returns the new position. Pads with EOS's leading 1 bits. */
export function huffmanEncode(src: Uint8Array, dst: Uint8Array, pos: number): number {
  return encodeRange(src, src.length, dst, pos);
}

/** Latin-1 bytes of the string being encoded; grown on demand, reused (no allocation per header). */
let scratch = new Uint8Array(256);

/** huffmanEncode for a Latin-1 string. */
export function huffmanEncodeLatin1(src: string, dst: Uint8Array, pos: number): number {
  const n = src.length;
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  for (let i = 0; i < n; i++) scratch[i] = src.charCodeAt(i) & 0xff;
  return encodeRange(scratch, n, dst, pos);
}

function encodeRange(src: Uint8Array, n: number, dst: Uint8Array, pos: number): number {
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < n; i++) {
    let code = codes[src[i]!]!;
    let len = lengths[src[i]!]!;
    if (len > 16) {
      // Keep the accumulator within 31 bits: emit the high part of a long code first.
      const hi = len - 16;
      acc = (acc << hi) | (code >>> 16);
      bits += hi;
      while (bits >= 8) {
        bits -= 8;
        dst[pos++] = (acc >>> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
      code &= 0xffff;
      len = 16;
    }
    acc = (acc << len) | code;
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      dst[pos++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) dst[pos++] = ((acc << (8 - bits)) | (0xff >>> bits)) & 0xff;
  return pos;
}

/** Thrown for an invalid Huffman string; the HPACK decoder turns it into COMPRESSION_ERROR. */
export class HuffmanError extends Error {}

/**
 * Decodes a Huffman string into `out` (which must hold at least `len * 8 / 5` bytes). Returns the
 * number of bytes written. Rejects EOS inside the string and padding that is longer than 7 bits or
 * not all ones (RFC 7541 section 5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    for (let b = 7; b >= 0; b--) {
      code = code * 2 + ((byte >>> b) & 1);
      len++;
      const count = countAt[len];
      if (count !== 0) {
        const rel = code - firstCode[len];
        if (rel >= 0 && rel < count) {
          const sym = sorted[offsetAt[len] + rel];
          if (sym === EOS) throw new HuffmanError("Huffman string contains EOS");
          out[n++] = sym;
          code = 0;
          len = 0;
          continue;
        }
      }
      if (len >= MAX_LEN) throw new HuffmanError("Huffman code longer than 30 bits");
    }
  }
  // Whatever is left must be a prefix of EOS (all ones) of at most 7 bits.
  if (len > 7) throw new HuffmanError("Huffman padding longer than 7 bits");
  if (len > 0 && code !== (1 << len) - 1) throw new HuffmanError("Huffman padding is not a prefix of EOS");
  return n;
}
