import { describe, expect, test } from "bun:test";
import vectors from "./testdata/rfc7541-appendix-c.json";
import { HpackDecoder, HpackEncoder, HpackError, readInt, writeInt } from "./hpack.ts";
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("RFC 7541 Appendix C", () => {
  for (const c of vectors.cases) {
    test(`decode ${c.name}`, () => {
      const dec = new HpackDecoder();
      // The C.5/C.6 examples assume a 256-byte table agreed beforehand: announce it first.
      if (c.tableSize !== 4096) dec.decode(hex("3fe101"));
      for (const b of c.blocks) {
        expect(dec.decode(hex(b.hex))).toEqual(b.headers.flat());
        expect(dec.tableEntries).toEqual(b.table as [string, string][]);
        expect(dec.tableSize).toBe(b.tableBytes);
      }
    });
    if (!("decodeOnly" in c && c.decodeOnly)) {
      test(`encode ${c.name}`, () => {
        const enc = new HpackEncoder({ huffman: c.huffman ? "always" : "never" });
        const dec = new HpackDecoder();
        if (c.tableSize !== 4096) {
          enc.setMaxTableSize(c.tableSize);
          const update = enc.encode([]);
          expect(toHex(update)).toBe("3fe101");
          dec.decode(update);
        }
        for (const b of c.blocks) {
          const out = enc.encode(b.headers.flat());
          expect(toHex(out)).toBe(b.hex);
          expect(enc.tableEntries).toEqual(b.table as [string, string][]);
          expect(enc.tableSize).toBe(b.tableBytes);
          expect(dec.decode(out)).toEqual(b.headers.flat());
        }
      });
    }
  }
});

describe("integers (RFC 7541 C.1)", () => {
  const cases: [number, number, string][] = [
    [10, 5, "0a"],
    [1337, 5, "1f9a0a"],
    [42, 8, "2a"],
    [31, 5, "1f00"],
    [0x7fffffff, 5, "1fe0ffffff07"],
  ];
  for (const [v, prefix, h] of cases) {
    test(`${v} with ${prefix}-bit prefix`, () => {
      const buf = new Uint8Array(8);
      const n = writeInt(buf, 0, v, prefix, 0);
      expect(toHex(buf.subarray(0, n))).toBe(h);
      expect(readInt(hex(h), 0, prefix)).toEqual([v, n]);
    });
  }
  test("overlong and truncated integers are errors", () => {
    expect(() => readInt(hex("1fffffffffff0f"), 0, 5)).toThrow(HpackError);
    expect(() => readInt(hex("1fff"), 0, 5)).toThrow(HpackError);
  });
});

describe("Huffman", () => {
  test("round trip of every byte value", () => {
    const src = Uint8Array.from({ length: 256 }, (_, i) => i);
    const enc = new Uint8Array(huffmanLength(src));
    expect(huffmanEncode(src, enc, 0)).toBe(enc.length);
    const out = new Uint8Array(src.length * 2);
    const n = huffmanDecode(enc, 0, enc.length, out);
    expect(out.subarray(0, n)).toEqual(src);
  });
  test("random strings round trip", () => {
    for (let i = 0; i < 500; i++) {
      const src = crypto.getRandomValues(new Uint8Array(1 + (i % 90)));
      const enc = new Uint8Array(huffmanLength(src));
      huffmanEncode(src, enc, 0);
      const out = new Uint8Array(src.length * 2 + 8);
      expect(out.subarray(0, huffmanDecode(enc, 0, enc.length, out))).toEqual(src);
    }
  });
  test("padding rules (RFC 7541 5.2)", () => {
    const out = new Uint8Array(64);
    // "a" is 00011 (5 bits): padded with 111 -> 0x1f
    expect(huffmanDecode(hex("1f"), 0, 1, out)).toBe(1);
    // padding that is not all ones
    expect(() => huffmanDecode(hex("18"), 0, 1, out)).toThrow();
    // a whole byte of padding (8 bits > 7)
    expect(() => huffmanDecode(hex("1fff"), 0, 2, out)).toThrow();
    // EOS (30 ones) inside the string
    expect(() => huffmanDecode(hex("ffffffff"), 0, 4, out)).toThrow();
  });
});

describe("decoder errors", () => {
  const bad: [string, string][] = [
    ["index 0", "80"],
    ["index beyond tables", "be"],
    ["table size update above the limit", "3fe21f"],
    ["size update after a field", "823fe101"],
    ["string past the end", "400a6375"],
    ["bad Huffman padding", "4081" + "18" + "00"],
  ];
  for (const [name, h] of bad) {
    test(name, () => expect(() => new HpackDecoder().decode(hex(h))).toThrow(HpackError));
  }
  test("table size update to 0 empties the table", () => {
    const dec = new HpackDecoder();
    dec.decode(hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"));
    expect(dec.tableSize).toBe(55);
    dec.decode(hex("20"));
    expect(dec.tableSize).toBe(0);
    expect(() => dec.decode(hex("be"))).toThrow(HpackError);
  });
  test("never-indexed literal with a new name is not added", () => {
    const dec = new HpackDecoder();
    expect(dec.decode(hex("1008" + Buffer.from("password").toString("hex") + "06" + Buffer.from("secret").toString("hex")))).toEqual(["password", "secret"]);
    expect(dec.tableSize).toBe(0);
  });
  test("header list size is reported", () => {
    const dec = new HpackDecoder();
    dec.decode(hex("82"));
    expect(dec.lastListSize).toBe(":method".length + 3 + 32);
  });
});

describe("encoder", () => {
  test("table shrink emits the smallest size then the final one", () => {
    const enc = new HpackEncoder();
    enc.encode(["x-a", "1"]);
    enc.setMaxTableSize(0);
    enc.setMaxTableSize(2048);
    const out = enc.encode([":method", "GET"]);
    const dec = new HpackDecoder();
    expect(toHex(out)).toBe("203fe10f82");
    expect(dec.decode(out)).toEqual([":method", "GET"]);
  });
  test("skipIndexing names stay out of the table", () => {
    const enc = new HpackEncoder({ skipIndexing: ["traceparent"] });
    enc.encode(["traceparent", "00-abc", "baggage", "k=v"]);
    expect(enc.tableEntries).toEqual([["baggage", "k=v"]]);
  });
  test("octets 0x80-0xff round trip", () => {
    const v = String.fromCharCode(...Array.from({ length: 128 }, (_, i) => 128 + i));
    const enc = new HpackEncoder();
    expect(new HpackDecoder().decode(enc.encode(["x", v]))).toEqual(["x", v]);
  });
});
