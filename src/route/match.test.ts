import { describe, expect, test } from "bun:test";
import { applyHeaderModifier, normalizeHeaders } from "./headers.ts";
import { parseGatewayDuration, timeoutMs } from "./duration.ts";
import { hostnameMatches, hostnameOf, matchableRequest, matchRequest, pathMatches, splitTarget } from "./match.ts";
import { redirectLocation, replacePrefix } from "./rewrite.ts";
import { retryPolicy, shouldRetry } from "./retry.ts";
import { pickWeighted, referencePermitted } from "./backend.ts";

describe("path matching", () => {
  const cases: [string, "Exact" | "PathPrefix" | "RegularExpression", string, boolean][] = [
    ["/foo", "Exact", "/foo", true],
    ["/foo", "Exact", "/foo/", false],
    ["/foo", "Exact", "/Foo", false],
    ["/foo", "PathPrefix", "/foo", true],
    ["/foo", "PathPrefix", "/foo/", true],
    ["/foo", "PathPrefix", "/foo/bar", true],
    ["/foo", "PathPrefix", "/foobar", false],
    ["/foo/", "PathPrefix", "/foo", true],
    ["/foo/", "PathPrefix", "/foo/bar", true],
    ["/foo/", "PathPrefix", "/foobar", false],
    ["/", "PathPrefix", "/anything/at/all", true],
    ["/", "PathPrefix", "/", true],
    ["/v2", "PathPrefix", "/v2example", false],
    ["/foo/[0-9]+", "RegularExpression", "/foo/123", true],
    ["/foo/[0-9]+", "RegularExpression", "/foo/123/x", false], // full match, not search
    ["/foo/[0-9]+", "RegularExpression", "/x/foo/123", false],
    ["/(?P<id>[a-z]+)", "RegularExpression", "/abc", true], // RE2 named group
    ["/[", "RegularExpression", "/[", false], // invalid pattern never matches
  ];
  for (const [value, type, path, want] of cases) {
    test(`${type} ${value} vs ${path} -> ${want}`, () => {
      expect(pathMatches({ type, value }, path)).toBe(want);
    });
  }
});

describe("header, query, method matching", () => {
  const req = (path: string, headers: Record<string, string | string[]> = {}, method = "GET") =>
    matchableRequest({ method, path, host: "svc" }, normalizeHeaders(headers));

  test("header names are case-insensitive, values exact", () => {
    const m = { headers: [{ type: "Exact" as const, name: "Version", value: "one" }] };
    expect(matchRequest(m, req("/", { version: "one" }))).toBe(true);
    expect(matchRequest(m, req("/", { VERSION: "one" }))).toBe(true);
    expect(matchRequest(m, req("/", { version: "One" }))).toBe(false);
    expect(matchRequest(m, req("/", {}))).toBe(false);
  });
  test("only the first entry of a repeated header name counts", () => {
    const m = {
      headers: [
        { type: "Exact" as const, name: "x", value: "a" },
        { type: "Exact" as const, name: "X", value: "b" },
      ],
    };
    expect(matchRequest(m, req("/", { x: "a" }))).toBe(true);
  });
  test("repeated request header values read joined with a comma", () => {
    const m = { headers: [{ type: "Exact" as const, name: "x", value: "a,b" }] };
    expect(matchRequest(m, req("/", { x: ["a", "b"] }))).toBe(true);
  });
  test("header regex is a full match", () => {
    const m = { headers: [{ type: "RegularExpression" as const, name: "x", value: "v[0-9]" }] };
    expect(matchRequest(m, req("/", { x: "v1" }))).toBe(true);
    expect(matchRequest(m, req("/", { x: "v12" }))).toBe(false);
  });
  test("query names are case-sensitive; the first value of a repeated parameter counts", () => {
    const m = { queryParams: [{ type: "Exact" as const, name: "animal", value: "whale" }] };
    expect(matchRequest(m, req("/?animal=whale"))).toBe(true);
    expect(matchRequest(m, req("/?ANIMAL=whale"))).toBe(false);
    expect(matchRequest(m, req("/?animal=whale&animal=dolphin"))).toBe(true);
    expect(matchRequest(m, req("/?animal=dolphin&animal=whale"))).toBe(false);
    expect(matchRequest(m, req("/?animal=wh%61le"))).toBe(true); // percent-decoded
  });
  test("method is exact and all criteria must hold", () => {
    const m = { method: "POST", path: { type: "PathPrefix" as const, value: "/a" } };
    expect(matchRequest(m, req("/a/b", {}, "POST"))).toBe(true);
    expect(matchRequest(m, req("/a/b", {}, "GET"))).toBe(false);
    expect(matchRequest(m, req("/b", {}, "POST"))).toBe(false);
  });
  test("an empty match matches everything", () => {
    expect(matchRequest({}, req("/x?y=z", { a: "b" }, "DELETE"))).toBe(true);
  });
});

describe("hostnames", () => {
  test("hostnameOf strips port, trailing dot and brackets", () => {
    expect(hostnameOf("Product-API.ambient-ns:8000")).toBe("product-api.ambient-ns");
    expect(hostnameOf("example.com.")).toBe("example.com");
    expect(hostnameOf("[::1]:80")).toBe("::1");
    expect(hostnameOf("::1")).toBe("::1");
  });
  test("wildcards match one or more labels, never the bare suffix", () => {
    expect(hostnameMatches("*.example.com", "a.example.com")).toBe(true);
    expect(hostnameMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(hostnameMatches("*.example.com", "example.com")).toBe(false);
    expect(hostnameMatches("Foo.com", "foo.com")).toBe(true);
    expect(hostnameMatches("foo.com", "bar.foo.com")).toBe(false);
  });
  test("splitTarget", () => {
    expect(splitTarget("/a?b=c")).toEqual({ path: "/a", query: "b=c" });
    expect(splitTarget("?x")).toEqual({ path: "/", query: "x" });
  });
});

describe("ReplacePrefixMatch slash rules (HTTPPathModifier reference table)", () => {
  const rows: [string, string, string, string][] = [
    ["/foo/bar", "/foo", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo", "/xyz/", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo/", "/foo", "/xyz", "/xyz/"],
    ["/foo/bar", "/foo", "", "/bar"],
    ["/foo/", "/foo", "", "/"],
    ["/foo", "/foo", "", "/"],
    ["/foo/", "/foo", "/", "/"],
    ["/foo", "/foo", "/", "/"],
    ["/anything", "/", "/api", "/api/anything"],
  ];
  for (const [path, prefix, repl, want] of rows) {
    test(`${path} prefix ${prefix} -> ${JSON.stringify(repl)} = ${want}`, () => {
      expect(replacePrefix(path, prefix, repl)).toBe(want);
    });
  }
});

describe("redirect Location", () => {
  const req = { scheme: "http", hostname: "svc.ns", listenerPort: 80, path: "/p", query: "a=1" };
  test("no change but status: same URL, default port omitted, query kept", () => {
    expect(redirectLocation(req, {})).toBe("http://svc.ns/p?a=1");
  });
  test("scheme https alone: port 443, omitted", () => {
    expect(redirectLocation(req, { scheme: "https" })).toBe("https://svc.ns/p?a=1");
  });
  test("explicit port kept unless it is the scheme's own", () => {
    expect(redirectLocation(req, { port: 8083 })).toBe("http://svc.ns:8083/p?a=1");
    expect(redirectLocation(req, { scheme: "https", port: 443 })).toBe("https://svc.ns/p?a=1");
    expect(redirectLocation(req, { scheme: "https", port: 80 })).toBe("https://svc.ns:80/p?a=1");
  });
  test("no scheme, no port: the listener (Service) port", () => {
    expect(redirectLocation({ ...req, listenerPort: 8000 }, { hostname: "example.org" }))
      .toBe("http://example.org:8000/p?a=1");
  });
  test("IPv6 hostnames get brackets", () => {
    expect(redirectLocation({ ...req, hostname: "fd00::1" }, {})).toBe("http://[fd00::1]/p?a=1");
  });
});

describe("header modifiers", () => {
  test("set replaces, add appends, remove deletes, names case-insensitive, input untouched", () => {
    const before = normalizeHeaders({ "X-Set": "old", "x-add": "a", "X-Remove": "r", keep: "k" });
    const after = applyHeaderModifier(before, {
      set: [{ name: "x-SET", value: "new" }],
      add: [{ name: "X-Add", value: "b" }, { name: "X-New", value: "n" }],
      remove: ["x-remove"],
    });
    expect(after).toEqual({ "x-set": ["new"], "x-add": ["a", "b"], keep: ["k"], "x-new": ["n"] });
    expect(before["x-set"]).toEqual(["old"]);
  });
});

describe("durations and timeouts", () => {
  test("Gateway API durations", () => {
    expect(parseGatewayDuration("500ms")).toBe(500);
    expect(parseGatewayDuration("1s")).toBe(1000);
    expect(parseGatewayDuration("1h30m")).toBe(5_400_000);
    expect(parseGatewayDuration("2m1s500ms")).toBe(121_500);
    expect(parseGatewayDuration("0s")).toBe(0);
    expect(parseGatewayDuration("1.5s")).toBeUndefined();
    expect(parseGatewayDuration("100000s")).toBeUndefined(); // six digits
    expect(parseGatewayDuration("1d")).toBeUndefined();
    expect(parseGatewayDuration("")).toBeUndefined();
  });
  test("0s disables a timeout", () => {
    expect(timeoutMs("0s")).toBeUndefined();
    expect(timeoutMs("250ms")).toBe(250);
    expect(timeoutMs(undefined)).toBeUndefined();
  });
});

describe("retry", () => {
  test("policy defaults and parsing", () => {
    expect(retryPolicy(undefined)).toBeUndefined();
    expect(retryPolicy({})).toEqual({ attempts: 2, codes: [] });
    expect(retryPolicy({ codes: [500], attempts: 3, backoff: "100ms" })).toEqual({ attempts: 3, codes: [500], backoffMs: 100 });
  });
  test("shouldRetry", () => {
    const p = { attempts: 2, codes: [503] };
    expect(shouldRetry(p, 0, { status: 503 })).toBe(true);
    expect(shouldRetry(p, 0, { status: 500 })).toBe(false);
    expect(shouldRetry(p, 1, { connectionError: true })).toBe(true);
    expect(shouldRetry(p, 1, { backendTimeout: true })).toBe(true);
    expect(shouldRetry(p, 2, { status: 503 })).toBe(false);
    expect(shouldRetry(undefined, 0, { connectionError: true })).toBe(false);
  });
});

describe("weights and reference grants", () => {
  test("weight 0 is never chosen, whatever the draw", () => {
    const refs = [{ weight: 0 }, { weight: 1 }, { weight: 0 }];
    for (const r of [0, 0.3, 0.999999]) expect(pickWeighted(refs, () => r)).toBe(1);
    expect(pickWeighted([{ weight: 0 }], () => 0.5)).toBe(-1);
  });
  test("draws split by weight (70/30)", () => {
    const refs = [{ weight: 70 }, { weight: 30 }];
    expect(pickWeighted(refs, () => 0)).toBe(0);
    expect(pickWeighted(refs, () => 0.6999)).toBe(0);
    expect(pickWeighted(refs, () => 0.7)).toBe(1);
    expect(pickWeighted(refs, () => 0.9999)).toBe(1);
  });
  test("ReferenceGrant checks from (group, kind, namespace) and to (kind, name)", () => {
    const g = {
      name: "g",
      namespace: "b",
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "a" }],
      to: [{ group: "", kind: "Service", name: "svc" }],
    };
    expect(referencePermitted([g], "a", "b", "svc")).toBe(true);
    expect(referencePermitted([g], "a", "b", "other")).toBe(false);
    expect(referencePermitted([g], "c", "b", "svc")).toBe(false);
    expect(referencePermitted([], "a", "a", "svc")).toBe(true);
    expect(referencePermitted([{ ...g, to: [{ group: "", kind: "Service" }] }], "a", "b", "any")).toBe(true);
  });
});
