import { describe, expect, test } from "bun:test";
import { allocateVips, buildRegistry, emptyModel, hostMatches, isAutoVip, type ServiceEntry } from "./mod.ts";
import { serviceEntry } from "../../test/support/mod.ts";

const entry = (over: Partial<ServiceEntry>): ServiceEntry => serviceEntry("e", "shop", [], over);

describe("VIP allocation", () => {
  test("a host's VIP depends only on the set of hosts, not their order, and lies in 240.240.0.0/16", () => {
    const a = allocateVips(["api.partner.example", "db.partner.example", "x.example"]);
    const b = allocateVips(["x.example", "DB.partner.example", "api.partner.example"]);
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
    for (const v of a.values()) expect(isAutoVip(v)).toBe(true);
    expect(new Set(a.values()).size).toBe(3);
  });

  test("thousands of hosts get distinct addresses, none ending in .0 or .255", () => {
    const hosts = Array.from({ length: 5000 }, (_, i) => `h${i}.example`);
    const vips = [...allocateVips(hosts).values()];
    expect(new Set(vips).size).toBe(5000);
    expect(vips.some((v) => v.endsWith(".0") || v.endsWith(".255"))).toBe(false);
  });
});

describe("registry lookups", () => {
  const exact = entry({ name: "api", hosts: ["api.partner.example"], vips: [{ host: "api.partner.example", address: "240.240.1.2" }] });
  const wild = entry({ name: "any", hosts: ["*.partner.example"], resolution: "NONE", addresses: ["192.0.2.0/24"] });
  const deeper = entry({ name: "eu", hosts: ["*.eu.partner.example"], resolution: "NONE", addresses: ["198.51.100.7"] });
  const fixed = entry({ name: "db", hosts: ["db.example"], resolution: "STATIC", endpoints: [{ address: "203.0.113.5", labels: {} }], vips: [{ host: "db.example", address: "240.240.3.4" }] });
  const model = { ...emptyModel(), serviceEntries: [exact, wild, deeper, fixed] };
  const reg = buildRegistry(model);

  test.each([
    ["api.partner.example", "api"],
    ["API.Partner.Example.", "api"],
    ["www.partner.example", "any"],
    ["x.eu.partner.example", "eu"],
    ["partner.example", undefined],
    ["db.example", "db"],
  ])("host %s -> entry %s", (host, name) => {
    expect(reg.byHost(host)?.entry.name).toBe(name);
  });

  test.each([
    ["240.240.1.2", "api"],
    ["192.0.2.77", "any"],
    ["198.51.100.7", "eu"],
    ["203.0.113.5", "db"],
    ["240.240.3.4", "db"],
    ["192.0.3.1", undefined],
  ])("address %s -> entry %s", (ip, name) => {
    expect(reg.byAddress(ip)?.entry.name).toBe(name);
  });

  test("a DNS answer is the VIP of that host, or the entry's own addresses (CIDRs left out)", () => {
    expect(reg.addressesOf(reg.byHost("api.partner.example")!)).toEqual(["240.240.1.2"]);
    expect(reg.addressesOf(reg.byHost("www.partner.example")!)).toEqual([]);
    expect(reg.addressesOf(reg.byHost("a.eu.partner.example")!)).toEqual(["198.51.100.7"]);
  });

  test("wildcards match subdomains only", () => {
    expect(hostMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "example.com")).toBe(false);
  });

  test("DestinationRule TLS: the most specific host wins, a port's settings win over the rule's", () => {
    const r = buildRegistry({
      ...emptyModel(),
      destinationRules: [
        { name: "wild", namespace: "shop", host: "*.partner.example", tls: { mode: "SIMPLE" } },
        { name: "api", namespace: "shop", host: "api.partner.example", tls: { mode: "SIMPLE", sni: "api" }, portTls: { 8443: { mode: "DISABLE" } } },
      ],
    });
    expect(r.clientTls("api.partner.example", 443)?.tls).toEqual({ mode: "SIMPLE", sni: "api" });
    expect(r.clientTls("api.partner.example", 8443)?.tls.mode).toBe("DISABLE");
    expect(r.clientTls("www.partner.example", 443)?.rule.name).toBe("wild");
    expect(r.clientTls("other.example", 443)).toBeUndefined();
  });
});
