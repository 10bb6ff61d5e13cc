import { describe, expect, test } from "bun:test";
import {
  aRecordAddress,
  aRecordData,
  answerTo,
  CLASS_IN,
  DnsFormatError,
  encodeMessage,
  encodeQuery,
  parseHeader,
  parseMessage,
  RCODE,
  truncatedAnswer,
  TYPE,
  udpLimitOf,
} from "./mod.ts";

/** A query as dig sends it for api.partner.example A (hand-written bytes, not our encoder). */
const DIG_QUERY = Uint8Array.from([
  0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1,
  3, 0x61, 0x70, 0x69, 7, 0x70, 0x61, 0x72, 0x74, 0x6e, 0x65, 0x72, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0,
  0, 1, 0, 1,
  // EDNS OPT: root name, type 41, payload 1232, ttl 0, rdlen 0
  0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
]);

describe("DNS messages", () => {
  test("reads a real query: id, RD, question, EDNS payload size", () => {
    const m = parseMessage(DIG_QUERY);
    expect(m.header.id).toBe(0x1234);
    expect(m.header.recursionDesired).toBe(true);
    expect(m.header.response).toBe(false);
    expect(m.questions).toEqual([{ name: "api.partner.example", type: TYPE.A, class: CLASS_IN }]);
    expect(udpLimitOf(m)).toBe(1232);
  });

  test("an answer echoes the id and question and carries A records", () => {
    const q = parseMessage(DIG_QUERY);
    const bytes = answerTo(q, [{ name: "api.partner.example", type: TYPE.A, class: CLASS_IN, ttl: 30, data: aRecordData("240.240.1.2") }]);
    const a = parseMessage(bytes);
    expect(a.header).toMatchObject({ id: 0x1234, response: true, authoritative: true, rcode: RCODE.NOERROR, recursionDesired: true });
    expect(a.questions).toEqual(q.questions);
    expect(a.answers.map((r) => [r.name, r.ttl, aRecordAddress(r.data)])).toEqual([["api.partner.example", 30, "240.240.1.2"]]);
  });

  test("compressed names are followed (backwards pointers)", () => {
    const q = encodeQuery(7, "www.example.com", TYPE.A);
    // Answer: name = pointer to offset 12 (the question's name).
    const rr = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1];
    const resp = Uint8Array.from([...q.subarray(0, 6), 0, 1, 0, 0, 0, 0, ...q.subarray(12), ...rr]);
    resp[2] = 0x81;
    const m = parseMessage(resp);
    expect(m.answers[0]!.name).toBe("www.example.com");
    expect(aRecordAddress(m.answers[0]!.data)).toBe("10.0.0.1");
  });

  test.each([
    ["shorter than a header", Uint8Array.from([1, 2, 3])],
    ["a pointer loop", Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])],
    ["a forward pointer", Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 20, 0, 1, 0, 1, 0, 0, 0])],
    ["counts that cannot fit", Uint8Array.from([0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0])],
    ["a label past the end", Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 0x61, 0x62, 0, 0, 0, 0])],
  ])("refuses %s with DnsFormatError", (_what, bytes) => {
    expect(() => parseMessage(bytes)).toThrow(DnsFormatError);
  });

  test("a too-long name is refused", () => {
    const labels = Array.from({ length: 5 }, () => [63, ...new Array(63).fill(0x61)]).flat();
    const bytes = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
    expect(() => parseMessage(bytes)).toThrow(/longer than 255/);
  });

  test("a truncated answer keeps header and question, sets TC, drops records", () => {
    const q = parseMessage(encodeQuery(9, "big.example", TYPE.TXT));
    const big = answerTo(q, Array.from({ length: 40 }, () => ({ name: "big.example", type: TYPE.TXT, class: CLASS_IN, ttl: 1, data: new Uint8Array(50) })));
    expect(big.length).toBeGreaterThan(512);
    const t = parseMessage(truncatedAnswer(big));
    expect(t.header.truncated).toBe(true);
    expect(t.header.id).toBe(9);
    expect(t.answers).toEqual([]);
    expect(t.questions).toEqual(q.questions);
    expect(parseHeader(big).truncated).toBe(false);
  });

  test("names with odd bytes round-trip without colliding with dotted names", () => {
    const bytes = encodeMessage({ header: { id: 1 }, questions: [{ name: "a\\046b.example", type: TYPE.A, class: CLASS_IN }] });
    const m = parseMessage(bytes);
    expect(m.questions[0]!.name).toBe("a\\046b.example");
    expect(bytes[12]).toBe(3); // one label "a.b", not two
  });
});

describe("DNS fuzz: random and cut messages never throw anything but DnsFormatError", () => {
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  }
  test("20 000 garbled messages", () => {
    const rand = rng(1405);
    const seeds = [DIG_QUERY, answerTo(parseMessage(DIG_QUERY), [{ name: "api.partner.example", type: TYPE.A, class: CLASS_IN, ttl: 5, data: aRecordData("1.2.3.4") }])];
    let parsed = 0, refused = 0;
    for (let i = 0; i < 20_000; i++) {
      let b: Uint8Array;
      if (i % 4 === 0) b = Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256));
      else {
        b = Uint8Array.from(seeds[i % 2]!);
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        if (rand() < 0.3) b = b.subarray(0, Math.floor(rand() * b.length));
      }
      try {
        parseMessage(b);
        parsed++;
      } catch (e) {
        expect(e).toBeInstanceOf(DnsFormatError);
        refused++;
      }
    }
    expect(parsed).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });
});
