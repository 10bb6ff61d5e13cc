import { describe, expect, test } from "bun:test";
import { MeshError } from "../core/mod.ts";
import { formatIdentity, isSpiffeId, isWorkloadIdentity, parseSpiffeId, peerSpiffeId, principalOf, sanEntries, trySpiffeId, uriSans } from "./spiffe.ts";

// The parse table of the SPIFFE reference library's tests (checklist section E), plus the standard's other rules.
const bad: [string, string][] = [
  ["", "cannot be empty"],
  ["s", "scheme is missing or invalid"],
  ["spiffe:/", "scheme is missing or invalid"],
  ["Spiffe://", "scheme is missing or invalid"],
  ["SPIFFE://td/x", "scheme is missing or invalid"],
  ["http://td/x", "scheme is missing or invalid"],
  ["spiffe://", "trust domain is missing"],
  ["spiffe:///", "trust domain is missing"],
  ["spiffe:///path", "trust domain is missing"],
  ["spiffe://trustdomain/", "path cannot have a trailing slash"],
  ["spiffe://trustdomain/path/", "path cannot have a trailing slash"],
  ["spiffe://trustdomain//", "path cannot contain empty segments"],
  ["spiffe://trustdomain//path", "path cannot contain empty segments"],
  ["spiffe://trustdomain/a//b", "path cannot contain empty segments"],
  ["spiffe://trustdomain/.", "path cannot contain dot segments"],
  ["spiffe://trustdomain/./path", "path cannot contain dot segments"],
  ["spiffe://trustdomain/path/./other", "path cannot contain dot segments"],
  ["spiffe://trustdomain/path/..", "path cannot contain dot segments"],
  ["spiffe://trustdomain/..", "path cannot contain dot segments"],
  ["spiffe://trustdomain/../path", "path cannot contain dot segments"],
  ["spiffe://trustdomain/path/../other", "path cannot contain dot segments"],
  ["spiffe://%F0%9F%A4%AF/path", "trust domain characters are limited"],
  ["spiffe://%62%61%64/path", "trust domain characters are limited"],
  ["spiffe://trustdomain/%F0%9F%A4%AF", "path segment characters are limited"],
  ["spiffe://trustdomain/%62%61%64", "path segment characters are limited"],
  ["spiffe://Cluster.Local/ns/a/sa/b", "trust domain characters are limited"],
  ["spiffe://cluster.local:8080/ns/a", "must not have a port"],
  ["spiffe://user@cluster.local/ns/a", "must not have userinfo"],
  ["spiffe://cluster.local/ns/a?x=1", "must not have a query"],
  ["spiffe://cluster.local/ns/a#frag", "must not have a fragment"],
  ["spiffe://cluster.local?x", "must not have a query"],
  ["spiffe://[::1]/x", "trust domain characters are limited"],
  ["spiffe://td/ns/a b", "path segment characters are limited"],
  ["spiffe://" + "a".repeat(256) + "/x", "longer than 255 bytes"],
  ["spiffe://td/" + "a".repeat(2048), "longer than 2048 bytes"],
];

describe("parseSpiffeId", () => {
  for (const [uri, why] of bad) {
    test(`rejects ${JSON.stringify(uri.length > 40 ? uri.slice(0, 40) + "..." : uri)}: ${why}`, () => {
      const r = trySpiffeId(uri);
      expect("error" in r && r.error).toContain(why);
      expect(() => parseSpiffeId(uri)).toThrow(MeshError);
      expect(isSpiffeId(uri)).toBe(false);
    });
  }

  test("accepts a trust-domain ID (empty path) and dot-prefixed segments", () => {
    expect(parseSpiffeId("spiffe://trustdomain")).toEqual({ uri: "spiffe://trustdomain", trustDomain: "trustdomain", path: "" });
    for (const p of ["/.path", "/..path", "/..."]) expect(parseSpiffeId("spiffe://trustdomain" + p).path).toBe(p);
  });

  test("accepts the longest allowed ID (2048 bytes) and IPv4-looking trust domains", () => {
    const long = "spiffe://td/" + "a".repeat(2048 - "spiffe://td/".length);
    expect(long.length).toBe(2048);
    expect(parseSpiffeId(long).path.length).toBe(2048 - "spiffe://td".length);
    expect(parseSpiffeId("spiffe://10.0.0.1/x").trustDomain).toBe("10.0.0.1");
  });

  test("every byte in the trust domain: only [a-z0-9.-_] pass", () => {
    for (let c = 0; c < 256; c++) {
      if (c === 0x2f) continue; // '/' ends the trust domain
      const ch = String.fromCharCode(c);
      const ok = /^[a-z0-9._-]$/.test(ch);
      expect([c, isSpiffeId(`spiffe://trustdomain${ch}/path`)]).toEqual([c, ok]);
    }
  });

  test("every byte in a path segment: only [a-zA-Z0-9.-_] pass", () => {
    for (let c = 0; c < 256; c++) {
      if (c === 0x2f) continue;
      const ch = String.fromCharCode(c);
      const ok = /^[a-zA-Z0-9._-]$/.test(ch);
      expect([c, isSpiffeId(`spiffe://trustdomain/path${ch}`)]).toEqual([c, ok]);
    }
  });

  test("reads Istio's /ns/<ns>/sa/<sa> form, and only that exact form", () => {
    expect(parseSpiffeId("spiffe://cluster.local/ns/shop/sa/api")).toEqual({
      uri: "spiffe://cluster.local/ns/shop/sa/api",
      trustDomain: "cluster.local",
      path: "/ns/shop/sa/api",
      namespace: "shop",
      serviceAccount: "api",
    });
    expect(parseSpiffeId("spiffe://cluster.local/ns/shop/sa/api/extra").namespace).toBeUndefined();
    expect(parseSpiffeId("spiffe://cluster.local/ns/shop/xx/api").serviceAccount).toBeUndefined();
  });
});

describe("formatIdentity and principalOf", () => {
  test("round trip", () => {
    const id = formatIdentity("cluster.local", "shop", "product-viewer");
    expect(id).toBe("spiffe://cluster.local/ns/shop/sa/product-viewer");
    expect(principalOf(id)).toBe("cluster.local/ns/shop/sa/product-viewer");
  });
  test("refuses parts that break the rules", () => {
    expect(() => formatIdentity("Cluster.local", "a", "b")).toThrow("trust domain characters");
    expect(() => formatIdentity("cluster.local", "a/b", "c")).toThrow();
    expect(() => formatIdentity("cluster.local", "", "c")).toThrow("empty segments");
    expect(() => principalOf("cluster.local/ns/a/sa/b")).toThrow("scheme");
  });
});

describe("peerSpiffeId", () => {
  test("exactly one valid URI SAN with a path", () => {
    expect(peerSpiffeId("URI:spiffe://td/ns/a/sa/b")).toBe("spiffe://td/ns/a/sa/b");
    expect(peerSpiffeId("DNS:x.example, URI:spiffe://td/ns/a/sa/b, IP Address:10.0.0.1")).toBe("spiffe://td/ns/a/sa/b");
    expect(peerSpiffeId("URI:spiffe://td/a, URI:spiffe://td/b")).toBeUndefined();
    expect(peerSpiffeId("URI:spiffe://td")).toBeUndefined();
    expect(peerSpiffeId("DNS:x")).toBeUndefined();
    expect(peerSpiffeId(undefined)).toBeUndefined();
    expect(peerSpiffeId('URI:"spiffe://td/a, b"')).toBeUndefined();
  });
});

describe("isWorkloadIdentity: a valid SPIFFE ID of Istio's form", () => {
  const cases: [string, boolean][] = [
    ["spiffe://cluster.local/ns/shop/sa/api", true],
    ["spiffe://td/ns/a/sa/b/extra", false],
    ["spiffe://td/ns/a", false],
    ["spiffe://td/ns/a/sa/", false],
    ["spiffe://td", false],
    ["spiffe://Cluster.local/ns/a/sa/b", false],
    ["https://td/ns/a/sa/b", false],
  ];
  for (const [uri, want] of cases) test(uri, () => expect(isWorkloadIdentity(uri)).toBe(want));
});

describe("SAN entries as Node/Bun print subjectaltname", () => {
  test("entries of every type, in order", () => {
    expect(sanEntries("DNS:x.example, URI:spiffe://td/ns/a/sa/b, IP Address:10.0.0.1")).toEqual([
      { type: "DNS", value: "x.example" },
      { type: "URI", value: "spiffe://td/ns/a/sa/b" },
      { type: "IP Address", value: "10.0.0.1" },
    ]);
    expect(sanEntries(undefined)).toEqual([]);
  });
  test("a quoted value is one value: a DNS name with commas cannot pass for a URI SAN", () => {
    expect(sanEntries('DNS:"x, URI:spiffe://td/ns/a/sa/b, y", DNS:z')).toEqual([
      { type: "DNS", value: "x, URI:spiffe://td/ns/a/sa/b, y" },
      { type: "DNS", value: "z" },
    ]);
    expect(uriSans('DNS:"x, URI:spiffe://td/ns/a/sa/b, y"')).toEqual([]);
    expect(peerSpiffeId('DNS:"x, URI:spiffe://td/ns/a/sa/b, y"')).toBeUndefined();
    expect(uriSans('URI:"spiffe://td/a, b", URI:spiffe://td/c')).toEqual(["spiffe://td/a, b", "spiffe://td/c"]);
  });
});
