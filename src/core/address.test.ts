import { describe, expect, test } from "bun:test";
import {
  formatForwarded,
  formatHostPort,
  forwardedFor,
  forwardedHost,
  hostOf,
  parseHostPort,
  parseIpPort,
  splitAddr,
  splitHost,
} from "./address.ts";

describe("splitHost: host[:port], leniently", () => {
  const cases: [string, ReturnType<typeof splitHost>][] = [
    ["example.com", { host: "example.com", bracketed: false }],
    ["example.com:8080", { host: "example.com", port: "8080", bracketed: false }],
    ["example.com:", { host: "example.com", port: "", bracketed: false }],
    ["a:b", { host: "a", port: "b", bracketed: false }],
    ["fd00::1", { host: "fd00::1", bracketed: false }],
    ["::1", { host: "::1", bracketed: false }],
    ["[fd00::1]", { host: "fd00::1", bracketed: true }],
    ["[fd00::1]:80", { host: "fd00::1", port: "80", bracketed: true }],
    ["[fd00::1]x", { host: "fd00::1", bracketed: true }],
    ["[fd00::1", { host: "[fd00::1", bracketed: false }],
    ["", { host: "", bracketed: false }],
  ];
  for (const [text, want] of cases) test(JSON.stringify(text), () => expect(splitHost(text)).toEqual(want));
});

describe("parseHostPort: a strict authority (the CONNECT target, --control-plane)", () => {
  const cases: [string, number | undefined, { host: string; port: number } | undefined][] = [
    ["10.0.0.1:15008", undefined, { host: "10.0.0.1", port: 15008 }],
    ["ztunnel.local:15008", undefined, { host: "ztunnel.local", port: 15008 }],
    ["[fd00::1]:443", undefined, { host: "fd00::1", port: 443 }],
    ["[::1]:65535", undefined, { host: "::1", port: 65535 }],
    ["10.0.0.1:080", undefined, { host: "10.0.0.1", port: 80 }],
    ["10.0.0.1", undefined, undefined],
    ["10.0.0.1", 15012, { host: "10.0.0.1", port: 15012 }],
    ["[fd00::1]", 15012, { host: "fd00::1", port: 15012 }],
    ["[fd00::1]", undefined, undefined],
    ["fd00::1:443", undefined, undefined],
    ["fd00::1", 15012, undefined],
    ["10.0.0.1:0", undefined, undefined],
    ["10.0.0.1:65536", undefined, undefined],
    ["10.0.0.1:123456", undefined, undefined],
    ["10.0.0.1:", 15012, undefined],
    ["10.0.0.1:http", undefined, undefined],
    [":80", undefined, undefined],
    ["[]:80", undefined, undefined],
    ["[fd00::1]x:80", undefined, undefined],
    ["[fd00::1]:80x", undefined, undefined],
    ["[fd00::1:80", undefined, undefined],
  ];
  for (const [text, dflt, want] of cases) {
    test(`${JSON.stringify(text)}${dflt === undefined ? "" : ` (default ${dflt})`}`, () => expect(parseHostPort(text, dflt)).toEqual(want));
  }
});

describe("parseIpPort: an address authority, no hostnames", () => {
  const cases: [string, { ip: string; port: number } | undefined][] = [
    ["10.0.0.1:80", { ip: "10.0.0.1", port: 80 }],
    ["[fd00::1]:443", { ip: "fd00::1", port: 443 }],
    ["[FD00::A]:443", { ip: "fd00::a", port: 443 }],
    ["10.0.0.1:0", undefined],
    ["host:80", undefined],
    ["fd00::1:80", undefined],
    ["[fd00::zz]:80", undefined],
    ["10.0.0:80", undefined],
  ];
  for (const [text, want] of cases) test(JSON.stringify(text), () => expect(parseIpPort(text)).toEqual(want));
});

describe("formatHostPort and hostOf", () => {
  test("IPv6 hosts get brackets; names and IPv4 do not", () => {
    expect(formatHostPort("10.0.0.1", 80)).toBe("10.0.0.1:80");
    expect(formatHostPort("fd00::1", 80)).toBe("[fd00::1]:80");
    expect(formatHostPort("api.shop", 8080)).toBe("api.shop:8080");
  });
  const cases: [string, string][] = [
    ["10.0.0.1:5000", "10.0.0.1"],
    ["[fd00::1]:5000", "fd00::1"],
    ["[::ffff:10.0.0.1]:5000", "::ffff:10.0.0.1"],
    ["10.0.0.1", "10.0.0.1"],
    ["fd00::1", "fd00::1"],
    ["[fd00::1]", "[fd00::1]"],
    ["10.0.0.1:x", "10.0.0.1:x"],
  ];
  for (const [address, want] of cases) test(`hostOf(${JSON.stringify(address)})`, () => expect(hostOf(address)).toBe(want));
});

describe("splitAddr: listen addresses with a default port", () => {
  const cases: [string, { hostname: string; port: number }][] = [
    ["0.0.0.0:15008", { hostname: "0.0.0.0", port: 15008 }],
    ["127.0.0.1:0", { hostname: "127.0.0.1", port: 0 }],
    [":15020", { hostname: "0.0.0.0", port: 15020 }],
    ["", { hostname: "0.0.0.0", port: 15000 }],
    ["localhost", { hostname: "localhost", port: 15000 }],
    ["[::]:15008", { hostname: "::", port: 15008 }],
    ["[::1]", { hostname: "::1", port: 15000 }],
    // A bare IPv6 literal is all host (it was read as host ":" port 1 before).
    ["::1", { hostname: "::1", port: 15000 }],
    ["::", { hostname: "::", port: 15000 }],
    // Malformed: returned as the host, for the bind to refuse.
    ["host:abc", { hostname: "host:abc", port: 15000 }],
    ["[::1]x", { hostname: "[::1]x", port: 15000 }],
  ];
  for (const [addr, want] of cases) test(JSON.stringify(addr), () => expect(splitAddr(addr, 15000)).toEqual(want));
});

describe("Forwarded (RFC 7239): for= and host=", () => {
  test("format: for= quoted, with brackets for IPv6, then host=", () => {
    expect(formatForwarded({ ip: "10.0.0.1", port: 5000 }, "api.shop.svc.cluster.local")).toBe('for="10.0.0.1:5000";host=api.shop.svc.cluster.local');
    expect(formatForwarded({ ip: "fd00::1", port: 5000 })).toBe('for="[fd00::1]:5000"');
    expect(formatForwarded({ ip: "fd00::1" })).toBe('for="[fd00::1]"');
    expect(formatForwarded({ ip: "10.0.0.1" }, "x")).toBe('for="10.0.0.1";host=x');
  });
  const cases: [string | undefined, string | undefined][] = [
    ['for="10.0.0.1:80";host=x', "10.0.0.1"],
    ["for=10.0.0.2", "10.0.0.2"],
    ['for="[fd00::2]:80"', "fd00::2"],
    ['for="[fd00::2]"', "fd00::2"],
    ['host=x;for="10.0.0.3"', "10.0.0.3"],
    ['FOR="10.0.0.4"', "10.0.0.4"],
    ['for="10.0.0.5", for="10.0.0.6"', "10.0.0.5"],
    ["by=10.0.0.9", undefined],
    ["", undefined],
    [undefined, undefined],
  ];
  for (const [header, want] of cases) test(`forwardedFor(${JSON.stringify(header)})`, () => expect(forwardedFor(header)).toBe(want));
  test("each format parses back", () => {
    for (const client of [{ ip: "10.0.0.1", port: 1 }, { ip: "fd00::1", port: 2 }, { ip: "fd00::1" }]) {
      const header = formatForwarded(client, "api.shop.svc.cluster.local");
      expect(forwardedFor(header)).toBe(client.ip);
      expect(forwardedHost(header)).toBe("api.shop.svc.cluster.local");
    }
    expect(forwardedHost('for="10.0.0.1"')).toBeUndefined();
  });
});
