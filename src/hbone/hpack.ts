/**
 * HPACK (RFC 7541): a decoder that accepts everything a conforming encoder may send (static and
 * dynamic table, Huffman strings, dynamic table size updates, never-indexed literals), and an
 * encoder with a dynamic table that follows the peer's SETTINGS_HEADER_TABLE_SIZE.
 *
 * Header lists are flat arrays [name0, value0, name1, value1, ...]: fewer allocations per block.
 * Strings are Latin-1 so that every octet round-trips unchanged.
 */
import { DEFAULT_HEADER_TABLE_SIZE } from "./constants.ts";
import { huffmanDecode, huffmanEncodeLatin1, HuffmanError, huffmanLengthLatin1 } from "./huffman.ts";
import { STATIC_NAME_INDEX, STATIC_PAIR_INDEX, STATIC_TABLE } from "./hpack_static.ts";

const STATIC_COUNT = STATIC_TABLE.length;
const ENTRY_OVERHEAD = 32;

/** Malformed header block; the connection must end with COMPRESSION_ERROR (RFC 9113 section 4.3). */
export class HpackError extends Error {
  override name = "HpackError";
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
}

/** Entries newest first, as HPACK indexes them (dynamic index 1 = newest). */
class DynamicTable {
  names: string[] = [];
  values: string[] = [];
  /** Index in the arrays of the oldest live entry; entries before it are evicted. */
  head = 0;
  size = 0;
  constructor(public max: number) {}

  get length(): number {
    return this.names.length - this.head;
  }
  /** 1-based dynamic index -> array position. */
  pos(i: number): number {
    return this.names.length - i;
  }
  add(name: string, value: string): void {
    const entry = name.length + value.length + ENTRY_OVERHEAD;
    this.evictTo(this.max - entry);
    if (entry > this.max) return; // an entry larger than the table empties it and is not added
    this.names.push(name);
    this.values.push(value);
    this.size += entry;
  }
  setMax(max: number): void {
    this.max = max;
    this.evictTo(max);
  }
  evictTo(limit: number): void {
    while (this.size > limit && this.head < this.names.length) {
      this.size -= this.names[this.head].length + this.values[this.head].length + ENTRY_OVERHEAD;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.names.length) {
      this.names = this.names.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
  }
  /** Entries newest first, for tests and diagnostics. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.names.length - 1; i >= this.head; i--) out.push([this.names[i], this.values[i]]);
    return out;
  }
}

let scratch = new Uint8Array(4096);

export class HpackDecoder {
  #table: DynamicTable;
  /** The largest table size our SETTINGS_HEADER_TABLE_SIZE allows the peer's encoder to pick. */
  #limit: number;
  /** Size of the last decoded header list as RFC 9113 section 6.5.2 counts it. */
  lastListSize = 0;

  constructor(limit = DEFAULT_HEADER_TABLE_SIZE) {
    this.#limit = limit;
    this.#table = new DynamicTable(limit);
  }

  get tableSize(): number {
    return this.#table.size;
  }
  get tableEntries(): [string, string][] {
    return this.#table.entries();
  }

  /**
   * Decodes one complete header block. The whole block is always decoded, even past
   * `maxListSize`, so that the table stays in step with the peer; the caller compares
   * `lastListSize` with its limit afterwards.
   */
  decode(block: Uint8Array): string[] {
    const out: string[] = [];
    const end = block.length;
    let p = 0;
    let listSize = 0;
    let fieldSeen = false;
    const t = this.#table;
    while (p < end) {
      const b = block[p];
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed header field (6.1)
        const [idx, np] = readInt(block, p, 7);
        p = np;
        [name, value] = this.#lookup(idx);
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (6.3): only before the first field of a block.
        if (fieldSeen) throw new HpackError("Dynamic table size update after a header field");
        const [size, np] = readInt(block, p, 5);
        p = np;
        if (size > this.#limit) throw new HpackError(`Table size update to ${size} above the limit ${this.#limit}`);
        t.setMax(size);
        continue;
      } else {
        // Literal: with incremental indexing (01xxxxxx, 6-bit index) or without / never (000xxxxx, 4-bit)
        const indexing = (b & 0xc0) === 0x40;
        const [idx, np] = readInt(block, p, indexing ? 6 : 4);
        p = np;
        if (idx === 0) {
          [name, p] = readString(block, p);
        } else {
          name = this.#lookup(idx)[0];
        }
        [value, p] = readString(block, p);
        if (indexing) t.add(name, value);
      }
      fieldSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      out.push(name, value);
    }
    this.lastListSize = listSize;
    return out;
  }

  #lookup(idx: number): readonly [string, string] {
    if (idx === 0) throw new HpackError("Header index 0");
    if (idx <= STATIC_COUNT) return STATIC_TABLE[idx - 1];
    const d = idx - STATIC_COUNT;
    const t = this.#table;
    if (d > t.length) throw new HpackError(`Header index ${idx} beyond the dynamic table`);
    const pos = t.pos(d);
    return [t.names[pos], t.values[pos]];
  }
}

/** Reads an HPACK integer with an N-bit prefix at `p` (5.1). Returns [value, next position]. */
export function readInt(buf: Uint8Array, p: number, prefix: number): [number, number] {
  const max = (1 << prefix) - 1;
  let v = buf[p++] & max;
  if (v < max) return [v, p];
  let shift = 0;
  for (;;) {
    if (p >= buf.length) throw new HpackError("Truncated integer");
    const b = buf[p++];
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (v > 0x7fff_ffff) throw new HpackError("Integer too large");
    if ((b & 0x80) === 0) return [v, p];
  }
}

function readString(buf: Uint8Array, p: number): [string, number] {
  if (p >= buf.length) throw new HpackError("Truncated string");
  const huff = (buf[p] & 0x80) !== 0;
  const [len, np] = readInt(buf, p, 7);
  const end = np + len;
  if (end > buf.length) throw new HpackError("String runs past the end of the block");
  if (!huff) return [latin1(buf, np, end), end];
  const need = Math.ceil((len * 8) / 5);
  if (scratch.length < need) scratch = new Uint8Array(Math.max(need, scratch.length * 2));
  let n: number;
  try {
    n = huffmanDecode(buf, np, end, scratch);
  } catch (e) {
    if (e instanceof HuffmanError) throw new HpackError(e.message);
    throw e;
  }
  return [latin1(scratch, 0, n), end];
}

export interface HpackEncoderOptions {
  /** "auto" (default) uses Huffman when it is shorter. */
  huffman?: "auto" | "always" | "never";
  /** Add literals to the dynamic table (default true). */
  indexing?: boolean;
  /** Header names never added to the table (values that change on every request). */
  skipIndexing?: readonly string[];
  /** Initial table size: the peer's SETTINGS_HEADER_TABLE_SIZE, 4096 until it says otherwise. */
  tableSize?: number;
}

export class HpackEncoder {
  #table: DynamicTable;
  #huffman: "auto" | "always" | "never";
  #indexing: boolean;
  #skip: Set<string>;
  /** Sizes to announce at the start of the next block (RFC 7541 section 4.2): the smallest, then the last. */
  #pendingMin = -1;
  #pendingLast = -1;
  #buf = new Uint8Array(1024);
  #pos = 0;

  constructor(opts: HpackEncoderOptions = {}) {
    this.#table = new DynamicTable(opts.tableSize ?? DEFAULT_HEADER_TABLE_SIZE);
    this.#huffman = opts.huffman ?? "auto";
    this.#indexing = opts.indexing ?? true;
    this.#skip = new Set(opts.skipIndexing ?? []);
  }

  get tableSize(): number {
    return this.#table.size;
  }
  get tableEntries(): [string, string][] {
    return this.#table.entries();
  }

  /** Applies the peer's new SETTINGS_HEADER_TABLE_SIZE. We never use more than 4096 bytes. */
  setMaxTableSize(size: number): void {
    const next = Math.min(size, DEFAULT_HEADER_TABLE_SIZE);
    if (next === this.#table.max && this.#pendingLast < 0) return;
    this.#pendingMin = this.#pendingMin < 0 ? next : Math.min(this.#pendingMin, next);
    this.#pendingLast = next;
    this.#table.setMax(next);
  }

  /** Encodes a flat header list. The result is a view into a reused buffer: copy it before the next call. */
  encode(headers: readonly string[]): Uint8Array {
    this.#pos = 0;
    if (this.#pendingLast >= 0) {
      if (this.#pendingMin < this.#pendingLast) this.#int(this.#pendingMin, 5, 0x20);
      this.#int(this.#pendingLast, 5, 0x20);
      this.#pendingMin = this.#pendingLast = -1;
    }
    const t = this.#table;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      const value = headers[i + 1];
      const pair = STATIC_PAIR_INDEX.get(name + "\0" + value);
      if (pair !== undefined) {
        this.#int(pair, 7, 0x80);
        continue;
      }
      let nameIdx = STATIC_NAME_INDEX.get(name) ?? 0;
      let found = 0;
      for (let d = 1; d <= t.length; d++) {
        const pos = t.pos(d);
        if (t.names[pos] !== name) continue;
        if (t.values[pos] === value) {
          found = d + STATIC_COUNT;
          break;
        }
        if (nameIdx === 0) nameIdx = d + STATIC_COUNT;
      }
      if (found) {
        this.#int(found, 7, 0x80);
        continue;
      }
      const index = this.#indexing && !this.#skip.has(name);
      if (index) this.#int(nameIdx, 6, 0x40);
      else this.#int(nameIdx, 4, 0x00);
      if (nameIdx === 0) this.#str(name);
      this.#str(value);
      if (index) t.add(name, value);
    }
    return this.#buf.subarray(0, this.#pos);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  #int(v: number, prefix: number, flags: number): void {
    this.#ensure(6);
    this.#pos = writeInt(this.#buf, this.#pos, v, prefix, flags);
  }

  #str(s: string): void {
    const hlen = this.#huffman === "never" ? Infinity : huffmanLengthLatin1(s);
    const useHuff = this.#huffman === "always" || hlen < s.length;
    const len = useHuff ? hlen : s.length;
    this.#ensure(len + 6);
    const buf = this.#buf;
    let p = writeInt(buf, this.#pos, len, 7, useHuff ? 0x80 : 0);
    if (useHuff) p = huffmanEncodeLatin1(s, buf, p);
    else for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i) & 0xff;
    this.#pos = p;
  }
}

/** Writes an HPACK integer with an N-bit prefix; `flags` fills the bits above the prefix. */
export function writeInt(buf: Uint8Array, p: number, v: number, prefix: number, flags: number): number {
  const max = (1 << prefix) - 1;
  if (v < max) {
    buf[p++] = flags | v;
    return p;
  }
  buf[p++] = flags | max;
  v -= max;
  while (v >= 128) {
    buf[p++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[p++] = v;
  return p;
}
