import { describe, expect, test } from "bun:test";
import type { AuthorizationPolicy, PolicyRule } from "../model/mod.ts";
import { conditionKeyKind, policyHasL7, policyL7Attributes, unknownConditionKeys } from "./attributes.ts";
import { isIpBlock } from "../config/mod.ts";
import { cidrContains, ipInBlock, parseCidr, parseIp } from "./cidr.ts";
import { authorize, claimValues, policyMatches } from "./evaluate.ts";
import { matchPath, normalizePath } from "./path.ts";
import type { AuthzRequest } from "./request.ts";
import { matchHost, matchString } from "./strings.ts";

function policy(
  action: AuthorizationPolicy["action"],
  rules: PolicyRule[],
  name = "p",
  extra: Partial<AuthorizationPolicy> = {},
): AuthorizationPolicy {
  return { name, namespace: "ns1", action, scope: { kind: "namespace" }, rules, hasL7: false, ...extra };
}

const CLIENT = "spiffe://cluster.local/ns/shop/sa/viewer";

function http(over: Partial<NonNullable<AuthzRequest["http"]>> = {}, auth?: AuthzRequest["auth"]): AuthzRequest {
  return {
    source: { ip: "10.1.0.5", principal: CLIENT },
    destination: { ip: "10.2.0.7", port: 8080 },
    http: { method: "GET", path: "/api/items", host: "api.shop.svc.cluster.local", headers: {}, ...over },
    auth,
  };
}

/** An L4 connection; `null` principal: plaintext. */
function l4(principal: string | null = CLIENT, port = 8080, ip = "10.1.0.5"): AuthzRequest {
  return { source: { ip, principal: principal ?? undefined }, destination: { ip: "10.2.0.7", port } };
}

describe("string matching: exact, prefix x*, suffix *x, presence *", () => {
  const rows: [string, string | undefined, boolean][] = [
    ["GET", "GET", true],
    ["GET", "get", false],
    ["/api*", "/api/items", true],
    ["*.svc.cluster.local", "api.shop.svc.cluster.local", true],
    ["*", "anything", true],
    ["*", "", false],
    ["*", undefined, false],
    ["x*", undefined, false],
  ];
  for (const [p, v, want] of rows) {
    test(`"${p}" ~ ${JSON.stringify(v)} -> ${want}`, () => expect(matchString(p, v)).toBe(want));
  }
  test("hosts: case-insensitive, port ignored unless the value names one", () => {
    expect(matchHost("API.shop.com", "api.shop.com:8080")).toBe(true);
    expect(matchHost("api.shop.com:80", "api.shop.com:8080")).toBe(false);
    expect(matchHost("*.shop.com", "deny.shop.com")).toBe(true);
    expect(matchHost("[::1]", "[::1]:80")).toBe(true);
  });
});

describe("ip blocks (IPv4 and IPv6, CIDR or single address)", () => {
  // undefined: the block itself is unreadable (the engine then fails closed, see below).
  const rows: [string, string, boolean | undefined][] = [
    ["10.0.0.0/8", "10.200.3.4", true],
    ["10.0.0.0/8", "11.0.0.1", false],
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.1/24", "127.0.0.200", true], // host bits ignored, as ztunnel does
    ["0.0.0.0/0", "192.168.1.1", true],
    ["fd00::/8", "fd12:3456::1", true],
    ["fd00::/8", "fe80::1", false],
    ["::1", "::1", true],
    ["2001:db8::/32", "2001:db8:0:0:0:0:0:1", true],
    ["10.0.0.1", "::ffff:10.0.0.1", true], // IPv4-mapped peers compare as IPv4
    ["10.0.0.0/8", "fd00::1", false],
    ["garbage", "10.0.0.1", undefined],
    ["10.0.0.0/33", "10.0.0.1", undefined],
    ["10.1.0.0/160", "10.1.2.3", undefined],
    ["10.1.0.0./16", "10.1.2.3", undefined],
    ["::ffff:10.0.0.0/8", "10.1.2.3", undefined], // a mapped block's prefix must cover the 96 mapping bits
  ];
  for (const [block, ip, want] of rows) {
    test(`${ip} in ${block} -> ${want}`, () => expect(ipInBlock(block, ip)).toBe(want));
  }
  test("mesh check accepts exactly the blocks the engine reads (no value passes the check to fail closed later)", () => {
    const blocks = [
      "10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "127.0.0.1", "127.0.0.1/24", "10.0.0.0/32", "fd00::/8", "::1", "::/0",
      "2001:db8::/128", "::ffff:10.0.0.0/104", "::ffff:10.0.0.0/96", "::ffff:0a00:0/104", "0:0:0:0:0:ffff:a00:0/120",
      "10.1.0.0/160", "10.1.0.0./16", "10.0.0.0/33", "fd00::/129", "10.1.2.3/", "/8", "garbage", "1.2.3", "1.2.3.256",
      "::ffff:10.0.0.0/8", "::ffff:0a00:0/64", "0::ffff:10.0.0.0/95", "10.0.0.0/-1", "10.0.0.0/8/8",
    ];
    for (const b of blocks) expect([b, isIpBlock(b)]).toEqual([b, parseCidr(b) !== undefined]);
    // The check may be stricter (an error in mesh check), never looser.
    for (const b of ["0:0:0:0:0:ffff:10.0.0.0/120", " 10.0.0.0/8", "10.0.0.0/8 "]) {
      expect([b, parseCidr(b) !== undefined, isIpBlock(b)]).toEqual([b, true, false]);
    }
  });
  test("parsers reject malformed input", () => {
    for (const bad of ["1.2.3", "1.2.3.256", "1::2::3", "12345::", "a.b.c.d"]) expect(parseIp(bad)).toBeUndefined();
    expect(cidrContains(parseCidr("::ffff:10.0.0.0/104")!, parseIp("10.1.2.3")!)).toBe(true);
  });
});

describe("paths: normalized (query dropped, %2E decoded, dot segments resolved), slashes kept", () => {
  const rows: [string, string][] = [
    ["/allow?param=value", "/allow"],
    ["/a/b#frag", "/a/b"],
    ["/public/../private", "/private"],
    ["/public/%2e%2E/private", "/private"],
    ["/public/./x", "/public/x"],
    ["/a/b/..", "/a/"],
    ["/..", "/"],
    ["/a//b", "/a//b"],
    ["/a%2Fb", "/a%2Fb"],
    ["/%7Euser", "/~user"],
    ["", "/"],
  ];
  for (const [raw, want] of rows) test(`${raw} -> ${want}`, () => expect(normalizePath(raw)).toBe(want));
  test("templates: {*} is one non-empty segment, {**} anything", () => {
    expect(matchPath("/foo/{*}/bar", "/foo/x/bar")).toBe(true);
    expect(matchPath("/foo/{*}/bar", "/foo/x/y/bar")).toBe(false);
    expect(matchPath("/foo/{**}", "/foo/x/y")).toBe(true);
    expect(matchPath("/a.b/{*}", "/aXb/c")).toBe(false); // literal parts are not regex
  });
});

describe("rule structure", () => {
  const rows: [string, PolicyRule[], AuthzRequest, boolean][] = [
    ["no rules never match", [], http(), false],
    ["an empty rule matches everything", [{}], http(), true],
    ["an empty source never matches", [{ from: [{ source: {} }] }], http(), false],
    ["an empty operation never matches", [{ to: [{ operation: {} }] }], http(), false],
    [
      "from is OR over sources",
      [{ from: [{ source: { namespaces: ["x"] } }, { source: { namespaces: ["shop"] } }] }],
      http(),
      true,
    ],
    [
      "fields in one source are AND",
      [{ from: [{ source: { namespaces: ["shop"], principals: ["other"] } }] }],
      http(),
      false,
    ],
    [
      "from, to and when are AND",
      [{ from: [{ source: { namespaces: ["shop"] } }], to: [{ operation: { methods: ["POST"] } }] }],
      http(),
      false,
    ],
    ["values in one field are OR", [{ to: [{ operation: { methods: ["POST", "GET"] } }] }], http(), true],
    ["not- fields need every value to miss", [{ to: [{ operation: { notMethods: ["POST", "GET"] } }] }], http(), false],
    [
      "when needs values AND notValues",
      [{ when: [{ key: "request.headers[x-a]", values: ["1"], notValues: ["1"] }] }],
      http({ headers: { "x-a": "1" } }),
      false,
    ],
  ];
  for (const [name, rules, req, want] of rows) {
    test(name, () => expect(policyMatches(policy("ALLOW", rules), req).matched === true).toBe(want));
  }
});

describe("source fields", () => {
  const rows: [string, PolicyRule["from"], AuthzRequest, boolean][] = [
    [
      "principals compare without spiffe://",
      [{ source: { principals: ["cluster.local/ns/shop/sa/viewer"] } }],
      l4(),
      true,
    ],
    ["a principal written with spiffe:// never matches", [{ source: { principals: [CLIENT] } }], l4(), false],
    ["principals * needs an identity", [{ source: { principals: ["*"] } }], l4(null), false],
    ["notPrincipals * matches plaintext", [{ source: { notPrincipals: ["*"] } }], l4(null), true],
    ["namespaces from the identity", [{ source: { namespaces: ["shop"] } }], l4(), true],
    ["namespaces need an identity", [{ source: { namespaces: ["shop"] } }], l4(null), false],
    ["serviceAccounts ns/sa", [{ source: { serviceAccounts: ["shop/viewer"] } }], l4(), true],
    ["serviceAccounts sa is in the policy's namespace", [{ source: { serviceAccounts: ["viewer"] } }], l4(), false],
    ["trustDomains", [{ source: { trustDomains: ["cluster.local"] } }], l4(), true],
    ["notTrustDomains", [{ source: { notTrustDomains: ["cluster.local"] } }], l4(), false],
    ["ipBlocks", [{ source: { ipBlocks: ["10.1.0.0/16"] } }], l4(), true],
    ["notIpBlocks", [{ source: { notIpBlocks: ["10.1.0.5"] } }], l4(), false],
    ["remoteIpBlocks use the original client address", [{ source: { remoteIpBlocks: ["203.0.113.0/24"] } }], {
      ...http(),
      source: { ip: "10.1.0.5", principal: CLIENT, remoteIp: "203.0.113.9" },
    }, true],
    ["remoteIpBlocks default to the peer address", [{ source: { remoteIpBlocks: ["10.1.0.5"] } }], http(), true],
    ["requestPrincipals", [{ source: { requestPrincipals: ["iss/sub"] } }], http({}, { principal: "iss/sub" }), true],
    ["requestPrincipals * needs a token", [{ source: { requestPrincipals: ["*"] } }], http(), false],
    ["notRequestPrincipals without a token", [{ source: { notRequestPrincipals: ["iss/sub"] } }], http(), true],
  ];
  for (const [name, from, req, want] of rows) {
    test(
      name,
      () =>
        expect(policyMatches(policy("ALLOW", [{ from }], "p", { namespace: "ns1" }), req).matched === true).toBe(want),
    );
  }
});

describe("operation fields", () => {
  const rows: [string, PolicyRule["to"], AuthzRequest, boolean][] = [
    ["ports compare the destination (workload) port", [{ operation: { ports: ["8080"] } }], l4(), true],
    ["a non-numeric port never makes an ALLOW match (unreadable: fail closed)", [{ operation: { ports: ["http"] } }], l4(), false],
    ["notPorts", [{ operation: { notPorts: ["8080"] } }], l4(), false],
    ["hosts", [{ operation: { hosts: ["*.shop.svc.cluster.local"] } }], http(), true],
    ["notHosts", [{ operation: { notHosts: ["api.shop.svc.cluster.local"] } }], http(), false],
    ["methods", [{ operation: { methods: ["GET"] } }], http(), true],
    ["notMethods", [{ operation: { notMethods: ["PUT"] } }], http(), true],
    [
      "paths after normalization",
      [{ operation: { paths: ["/api/items"] } }],
      http({ path: "/api/x/../items?q=1" }),
      true,
    ],
    ["notPaths", [{ operation: { paths: ["/api*"], notPaths: ["/api/items"] } }], http(), false],
  ];
  for (const [name, to, req, want] of rows) {
    test(name, () => expect(policyMatches(policy("ALLOW", [{ to }]), req).matched === true).toBe(want));
  }
});

describe("when conditions", () => {
  const auth = {
    principal: "issuer.example/alice",
    audiences: ["shop", "admin"],
    presenter: "web-app",
    claims: {
      iss: "issuer.example",
      groups: ["dev", "ops"],
      scope: "read write",
      roles: "a b",
      nested: { team: { name: "core" }, list: ["x", "y"] },
      admin: true,
    },
    spaceDelimitedClaims: ["roles"],
  };
  const rows: [string, string, string[], AuthzRequest, boolean][] = [
    ["request.auth.claims[iss]", "request.auth.claims[iss]", ["issuer.example"], http({}, auth), true],
    ["list-valued claims match any element", "request.auth.claims[groups]", ["ops"], http({}, auth), true],
    ["scope is space-delimited", "request.auth.claims[scope]", ["write"], http({}, auth), true],
    ["the rule's spaceDelimitedClaims split too", "request.auth.claims[roles]", ["b"], http({}, auth), true],
    ["nested claims", "request.auth.claims[nested][team][name]", ["core"], http({}, auth), true],
    ["nested list claims", "request.auth.claims[nested][list]", ["y"], http({}, auth), true],
    ["missing nested claim", "request.auth.claims[nested][nope]", ["*"], http({}, auth), false],
    ["non-string claims do not match", "request.auth.claims[admin]", ["true"], http({}, auth), false],
    ["request.auth.principal", "request.auth.principal", ["issuer.example/*"], http({}, auth), true],
    ["request.auth.audiences", "request.auth.audiences", ["admin"], http({}, auth), true],
    ["request.auth.presenter", "request.auth.presenter", ["web-app"], http({}, auth), true],
    [
      "request.headers (lower-case names)",
      "request.headers[X-Env]",
      ["prod"],
      http({ headers: { "x-env": "prod" } }),
      true,
    ],
    [
      "multi-valued headers",
      "request.headers[x-env]",
      ["canary"],
      http({ headers: { "x-env": ["prod", "canary"] } }),
      true,
    ],
    ["absent header", "request.headers[x-env]", ["*"], http(), false],
    ["source.ip as CIDR", "source.ip", ["10.1.0.0/24"], l4(), true],
    ["source.namespace", "source.namespace", ["shop"], l4(), true],
    ["source.principal", "source.principal", ["cluster.local/ns/shop/*"], l4(), true],
    ["source.trustDomain", "source.trustDomain", ["cluster.local"], l4(), true],
    ["destination.ip", "destination.ip", ["10.2.0.7"], l4(), true],
    ["destination.port", "destination.port", ["8080"], l4(), true],
    ["remote.ip", "remote.ip", ["10.1.0.5"], http(), true],
    ["connection.sni", "connection.sni", ["*.cluster.local"], { ...http(), sni: "api.shop.svc.cluster.local" }, true],
  ];
  for (const [name, key, values, req, want] of rows) {
    test(
      name,
      () => expect(policyMatches(policy("ALLOW", [{ when: [{ key, values }] }]), req).matched === true).toBe(want),
    );
  }
  test("claimValues reads nested and space-delimited claims", () => {
    expect(claimValues(auth, ["scope"])).toEqual(["read", "write"]);
    expect(claimValues(auth, ["nested", "team", "name"])).toEqual(["core"]);
    expect(claimValues(undefined, ["scope"])).toEqual([]);
  });
  test("an unknown key makes an ALLOW rule fail and is reported", () => {
    const d = authorize(
      [policy("ALLOW", [{ when: [{ key: "experimental.envoy.filters.x[y]", values: ["1"] }] }])],
      http(),
    );
    expect(d.allowed).toBe(false);
    expect(d.warnings?.[0]).toContain('unknown condition key "experimental.envoy.filters.x[y]"');
  });
  test("an unknown key makes a DENY rule match (fail closed) and is reported", () => {
    const d = authorize(
      [policy("DENY", [{ when: [{ key: "source.serviceAccount", values: ["x"] }] }], "typo")],
      http(),
    );
    expect(d.allowed).toBe(false);
    expect(d.policy).toBe("ns1/typo");
    expect(d.warnings?.join()).toContain("source.serviceAccount");
  });
});

describe("unreadable values fail closed (a DENY matches, an ALLOW does not), with a reason", () => {
  const deny = (rule: PolicyRule) => authorize([policy("DENY", [rule], "d")], l4(CLIENT, 9000, "10.1.2.3"));
  const allow = (rule: PolicyRule) => authorize([policy("ALLOW", [rule], "a")], l4(CLIENT, 9000, "10.1.2.3"));
  const rows: [string, PolicyRule, "DENY" | "ALLOW", string][] = [
    ["DENY ipBlocks with a prefix beyond /32", { from: [{ source: { ipBlocks: ["10.1.0.0/160"] } }] }, "DENY", '"10.1.0.0/160"'],
    ["DENY notIpBlocks unreadable", { from: [{ source: { notIpBlocks: ["10.9.0.0/99"] } }] }, "DENY", '"10.9.0.0/99"'],
    ["DENY ports with a trailing space", { to: [{ operation: { ports: ["9000 "] } }] }, "DENY", 'port "9000 "'],
    ["DENY notPorts not a number", { to: [{ operation: { notPorts: ["http"] } }] }, "DENY", 'port "http"'],
    ["DENY when source.ip unreadable", { when: [{ key: "source.ip", values: ["10.1.2.3/64"] }] }, "DENY", 'condition "source.ip"'],
    ["DENY when destination.port unreadable", { when: [{ key: "destination.port", values: ["9000 "] }] }, "DENY", 'condition "destination.port"'],
    ["ALLOW notIpBlocks with a stray dot", { from: [{ source: { notIpBlocks: ["10.1.0.0./16"] } }] }, "ALLOW", '"10.1.0.0./16"'],
    ["ALLOW ipBlocks unreadable", { from: [{ source: { ipBlocks: ["10.1.2.3/"] } }] }, "ALLOW", '"10.1.2.3/"'],
    ["ALLOW ports unreadable", { to: [{ operation: { ports: ["09000x"] } }] }, "ALLOW", 'port "09000x"'],
    ["ALLOW when notValues unreadable", { when: [{ key: "source.ip", notValues: ["nope"] }] }, "ALLOW", 'condition "source.ip"'],
  ];
  for (const [name, rule, action, says] of rows) {
    test(`${name}: refused`, () => {
      const d = action === "DENY" ? deny(rule) : allow(rule);
      expect(d.allowed).toBe(false);
      expect(d.reason).toContain(says);
      expect(d.reason).toContain("fail closed");
      expect(d.warnings?.join("\n")).toContain(says);
    });
  }
  test("a readable value next to an unreadable one still decides when it matches", () => {
    const d = allow({ from: [{ source: { ipBlocks: ["bad", "10.1.0.0/16"] } }] });
    expect(d.allowed).toBe(true);
    expect(deny({ to: [{ operation: { ports: ["x", "9000"] } }] }).reason).toBe("denied by DENY policy ns1/d rule 0");
  });
  test("valid values keep their meaning", () => {
    expect(deny({ to: [{ operation: { ports: ["9001"] } }] }).allowed).toBe(true);
    expect(deny({ from: [{ source: { ipBlocks: ["10.2.0.0/16"] } }] }).allowed).toBe(true);
    expect(allow({ from: [{ source: { notIpBlocks: ["10.2.0.0/16"] } }] }).allowed).toBe(true);
    expect(allow({ when: [{ key: "destination.port", values: ["9000"] }] }).allowed).toBe(true);
  });
});

describe("decision order", () => {
  const allowGet = policy("ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }], "allow-get");
  const denyAdmin = policy("DENY", [{ to: [{ operation: { paths: ["/admin*"] } }] }], "deny-admin");
  const audit = policy("AUDIT", [{}], "audit-all");
  const rows: [string, AuthorizationPolicy[], AuthzRequest, boolean, string][] = [
    ["no policy: allow", [], http(), true, "no ALLOW policy applies"],
    ["only DENY policies, none matching: allow", [denyAdmin], http(), true, "no ALLOW policy applies"],
    [
      "a matching DENY wins over a matching ALLOW",
      [allowGet, denyAdmin],
      http({ path: "/admin/x" }),
      false,
      "denied by DENY policy ns1/deny-admin rule 0",
    ],
    ["a matching ALLOW allows", [allowGet, denyAdmin], http(), true, "allowed by ALLOW policy ns1/allow-get rule 0"],
    [
      "ALLOW policies exist, none match: deny",
      [allowGet],
      http({ method: "POST" }),
      false,
      "no ALLOW policy matched (ns1/allow-get)",
    ],
    ["AUDIT never decides", [audit], http(), true, "no ALLOW policy applies"],
  ];
  for (const [name, ps, req, allowed, reason] of rows) {
    test(name, () => {
      const d = authorize(ps, req);
      expect(d.allowed).toBe(allowed);
      expect(d.reason).toBe(reason);
    });
  }
  test("AUDIT matches are reported", () =>
    expect(authorize([audit, allowGet], http()).audited).toEqual(["ns1/audit-all"]));
  test("dry-run policies are reported, never enforced", () => {
    const d = authorize([policy("DENY", [{}], "dry", { dryRun: true })], http());
    expect(d.allowed).toBe(true);
    expect(d.dryRun).toEqual(["DENY ns1/dry"]);
  });
  test("a matching CUSTOM policy denies (external authorization is not supported)", () => {
    const d = authorize(
      [policy("CUSTOM", [{ to: [{ operation: { paths: ["/ext*"] } }] }], "ext"), allowGet],
      http({ path: "/ext/a" }),
    );
    expect(d).toMatchObject({ allowed: false, policy: "ns1/ext", action: "CUSTOM" });
    expect(d.reason).toContain("not supported");
    expect(authorize([policy("CUSTOM", [{ to: [{ operation: { paths: ["/ext*"] } }] }], "ext")], http()).allowed).toBe(
      true,
    );
  });
});

describe("at L4 only connection attributes exist", () => {
  test("an ALLOW rule needing HTTP never matches at L4", () => {
    const d = authorize([policy("ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }])], l4());
    expect(d.allowed).toBe(false);
    expect(d.reason).toContain("need attributes not available at L4");
  });
  test("a DENY rule is enforced on its L4 part (fail closed): it denies when the L4 part matches", () => {
    const p = policy("DENY", [{
      from: [{ source: { namespaces: ["shop"] } }],
      to: [{ operation: { methods: ["GET"] } }],
    }]);
    expect(authorize([p], l4()).allowed).toBe(false);
    expect(authorize([p], l4("spiffe://cluster.local/ns/other/sa/x")).allowed).toBe(true);
  });
  test("the same rules decide HTTP requests precisely", () => {
    const p = policy("DENY", [{
      from: [{ source: { namespaces: ["shop"] } }],
      to: [{ operation: { methods: ["GET"] } }],
    }]);
    expect(authorize([p], http({ method: "POST" })).allowed).toBe(true);
    expect(authorize([p], http()).allowed).toBe(false);
  });
});

describe("L7 attribute classification", () => {
  test("policyL7Attributes lists what needs a waypoint", () => {
    const p = policy("ALLOW", [
      {
        from: [{ source: { principals: ["a"], requestPrincipals: ["*"] } }],
        to: [{ operation: { ports: ["80"], paths: ["/"] } }],
      },
      { when: [{ key: "source.ip", values: ["1.2.3.4"] }, { key: "request.headers[x]", values: ["y"] }] },
    ]);
    expect(policyL7Attributes(p).sort()).toEqual(["paths", "request.headers[x]", "requestPrincipals"]);
    expect(policyHasL7(policy("ALLOW", [{ from: [{ source: { principals: ["a"] } }] }]))).toBe(false);
  });
  test("condition keys", () => {
    expect(conditionKeyKind("destination.port")).toBe("l4");
    expect(conditionKeyKind("request.auth.claims[a][b]")).toBe("l7");
    expect(conditionKeyKind("request.auth.claims")).toBe("unknown");
    expect(unknownConditionKeys(policy("ALLOW", [{ when: [{ key: "foo", values: ["x"] }] }]))).toEqual(["foo"]);
  });
});
