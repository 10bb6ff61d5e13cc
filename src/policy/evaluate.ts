/**
 * AuthorizationPolicy evaluation with Istio's semantics (ztunnel rbac.rs and state.rs assert_rbac;
 * Istio's authorization-policy reference):
 *
 * - A policy matches when ANY of its rules matches. No rules: it never matches (an ALLOW without rules
 *   allows nothing); `rules: [{}]` matches everything.
 * - A rule matches when ALL of its present parts match: `from` (any source), `to` (any operation), and
 *   every `when` condition. An empty `from`/`to` list is absent.
 * - A source or operation matches when every field it sets matches; a field matches when ANY value
 *   matches, a not- field when NO value matches. A source or operation that sets no field never matches.
 * - Decision: a matching CUSTOM policy denies (external authorization is not supported: fail closed);
 *   then any matching DENY denies; then, if no ALLOW policy applies, allow; a matching ALLOW allows;
 *   otherwise deny. AUDIT policies never change the decision, they are reported. Dry-run policies are
 *   evaluated and reported, never enforced.
 *
 * Attributes the enforcement point cannot see (HTTP attributes on an L4 connection) and condition keys
 * this engine does not know are UNKNOWN, not false: an unknown rule never makes an ALLOW match, and
 * always makes a DENY (or CUSTOM) match. Both directions fail closed; for a DENY rule this is Istio's
 * own "enforce it without its HTTP parts" behaviour. A policy value that cannot be read (an ipBlocks
 * entry that is no CIDR block, a port that is no port number) is UNKNOWN as well, in its positive and
 * its not- form: Istio's admission would have refused it, and reading it as "no match" would let a DENY
 * pass everything (or a notIpBlocks ALLOW admit everyone). `mesh check` reports such values as errors.
 */
import type { AuthorizationPolicy, PolicyCondition, PolicyOperation, PolicyRule, PolicySource } from "../model/mod.ts";
import { conditionKeyKind } from "./attributes.ts";
import { ipInBlock } from "./cidr.ts";
import { matchPath, normalizePath } from "./path.ts";
import type { AuthzDecision, AuthzRequest, RequestAuth } from "./request.ts";
import { policyKey } from "./request.ts";
import { matchHost, matchString } from "./strings.ts";

/** Three-valued match result: true, false, or undefined when the attribute is unavailable here. */
export type Tri = boolean | undefined;

const UNKNOWN: Tri = undefined;

/** Peer identity split into its SPIFFE parts. */
interface Peer {
  /** the identity without "spiffe://", as Istio principals are written */
  principal?: string;
  trustDomain?: string;
  namespace?: string;
  serviceAccount?: string;
}

function peerOf(principal: string | undefined): Peer {
  // Identities without the spiffe:// scheme never match principal values (ztunnel rbac.rs).
  if (!principal || !principal.startsWith("spiffe://")) return {};
  const bare = principal.slice("spiffe://".length);
  const m = /^([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(bare);
  return m ? { principal: bare, trustDomain: m[1], namespace: m[2], serviceAccount: m[3] } : { principal: bare };
}

/** Evaluation context for one request. */
interface Ctx {
  req: AuthzRequest;
  peer: Peer;
  l7: boolean;
  path?: string;
  policyNamespace: string;
  warnings: Set<string>;
  policy: AuthorizationPolicy;
  rule: number;
  /** The first unreadable value met in this policy (for the decision's reason). */
  invalid?: string;
}

/** Records an unreadable policy value; the caller returns UNKNOWN (fail closed). */
function invalidValue(ctx: Ctx, what: string): Tri {
  const msg = `${where(ctx)}: ${what}; the rule is evaluated fail closed (a DENY matches, an ALLOW does not)`;
  ctx.invalid ??= msg;
  ctx.warnings.add(msg);
  return UNKNOWN;
}

function testBlock(block: string, ip: string | undefined, ctx: Ctx): Tri {
  const r = ipInBlock(block, ip);
  return r === undefined ? invalidValue(ctx, `"${block}" is not an IP address or CIDR block`) : r;
}

/** A port as AuthorizationPolicy writes it: a decimal number from 1 to 65535, nothing around it. */
function isPortValue(value: string): boolean {
  if (!/^\d{1,5}$/.test(value)) return false;
  const n = Number(value);
  return n >= 1 && n <= 65535;
}

/** Where a warning comes from; built only when there is one to report. */
function where(ctx: Ctx): string {
  return `policy ${policyKey(ctx.policy)} rule ${ctx.rule}`;
}

type Values = string[] | undefined;
type Test = (value: string, ctx: Ctx) => Tri;

/** Result of one field (positive and not- form); null when the field is not set. Short-circuits. */
function field(pos: Values, neg: Values, test: Test, ctx: Ctx): Tri | null {
  let set = false;
  let unknown = false;
  if (pos && pos.length) {
    set = true;
    const r = anyValue(pos, test, ctx);
    if (r === false) return false;
    if (r === undefined) unknown = true;
  }
  if (neg && neg.length) {
    set = true;
    const r = anyValue(neg, test, ctx);
    if (r === true) return false;
    if (r === undefined) unknown = true;
  }
  if (!set) return null;
  return unknown ? UNKNOWN : true;
}

function anyValue(values: string[], test: Test, ctx: Ctx): Tri {
  let unknown = false;
  for (const v of values) {
    const r = test(v, ctx);
    if (r === true) return true;
    if (r === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : false;
}

/** AND-accumulator over field results: null (unset) is skipped; false ends the conjunction. */
class Conjunction {
  set = false;
  unknown = false;
  /** Returns false when the conjunction is already false. */
  add(r: Tri | null): boolean {
    if (r === null) return true;
    this.set = true;
    if (r === false) return false;
    if (r === undefined) this.unknown = true;
    return true;
  }
  /** A source or operation that sets no field never matches. */
  result(): Tri {
    if (!this.set) return false;
    return this.unknown ? UNKNOWN : true;
  }
}

const testPrincipal: Test = (v, ctx) => matchString(v, ctx.peer.principal);
const testNamespace: Test = (v, ctx) => matchString(v, ctx.peer.namespace);
const testTrustDomain: Test = (v, ctx) => matchString(v, ctx.peer.trustDomain);
const testSourceIp: Test = (v, ctx) => testBlock(v, ctx.req.source.ip, ctx);
const testServiceAccount: Test = (v, ctx) => {
  const slash = v.indexOf("/");
  const ns = slash >= 0 ? v.slice(0, slash) : ctx.policyNamespace;
  const sa = slash >= 0 ? v.slice(slash + 1) : v;
  return ctx.peer.namespace === ns && ctx.peer.serviceAccount === sa;
};
const testRequestPrincipal: Test = (v, ctx) => (ctx.l7 ? matchString(v, ctx.req.auth?.principal) : UNKNOWN);
const testRemoteIp: Test = (v, ctx) => (ctx.l7 ? testBlock(v, remoteIp(ctx.req), ctx) : UNKNOWN);
const testPort: Test = (v, ctx) =>
  isPortValue(v) ? Number(v) === ctx.req.destination.port : invalidValue(ctx, `port "${v}" is not a port number (1 to 65535)`);
const testHost: Test = (v, ctx) => (ctx.l7 ? matchHost(v, ctx.req.http?.host) : UNKNOWN);
const testMethod: Test = (v, ctx) => (ctx.l7 ? matchString(v, ctx.req.http?.method) : UNKNOWN);
const testPath: Test = (v, ctx) => (ctx.l7 ? matchPath(v, ctx.path) : UNKNOWN);

function sourceMatches(s: PolicySource, ctx: Ctx): Tri {
  const c = new Conjunction();
  const ok = c.add(field(s.principals, s.notPrincipals, testPrincipal, ctx)) &&
    c.add(field(s.namespaces, s.notNamespaces, testNamespace, ctx)) &&
    c.add(field(s.serviceAccounts, s.notServiceAccounts, testServiceAccount, ctx)) &&
    c.add(field(s.trustDomains, s.notTrustDomains, testTrustDomain, ctx)) &&
    c.add(field(s.ipBlocks, s.notIpBlocks, testSourceIp, ctx)) &&
    c.add(field(s.requestPrincipals, s.notRequestPrincipals, testRequestPrincipal, ctx)) &&
    c.add(field(s.remoteIpBlocks, s.notRemoteIpBlocks, testRemoteIp, ctx));
  return ok ? c.result() : false;
}

function remoteIp(req: AuthzRequest): string | undefined {
  return req.source.remoteIp ?? req.source.ip;
}

function operationMatches(o: PolicyOperation, ctx: Ctx): Tri {
  const c = new Conjunction();
  const ok = c.add(field(o.ports, o.notPorts, testPort, ctx)) &&
    c.add(field(o.methods, o.notMethods, testMethod, ctx)) &&
    c.add(field(o.paths, o.notPaths, testPath, ctx)) &&
    c.add(field(o.hosts, o.notHosts, testHost, ctx));
  return ok ? c.result() : false;
}

function headerValues(req: AuthzRequest, name: string): string[] {
  const v = req.http?.headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

const DEFAULT_SPACE_DELIMITED = ["scope", "permission"];

/** Values of request.auth.claims[a][b]...: nested objects are walked; lists and space-delimited strings give several values. */
export function claimValues(auth: RequestAuth | undefined, path: string[]): string[] {
  if (!auth?.claims || path.length === 0) return [];
  let cur: unknown = auth.claims;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return [];
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (typeof cur === "string") {
    const split = path.length === 1 &&
      (DEFAULT_SPACE_DELIMITED.includes(path[0]) || (auth.spaceDelimitedClaims ?? []).includes(path[0]));
    return split ? cur.split(" ").filter((s) => s !== "") : [cur];
  }
  if (Array.isArray(cur)) return cur.filter((x): x is string => typeof x === "string");
  return [];
}

/** A `when` key, parsed once. */
type ParsedKey =
  | { kind: "unknown" }
  | { kind: "simple"; l7: boolean; key: string }
  | { kind: "header"; name: string }
  | { kind: "claims"; path: string[] };

const parsedKeys = new Map<string, ParsedKey>();

function parseKey(key: string): ParsedKey {
  let p = parsedKeys.get(key);
  if (p) return p;
  const kind = conditionKeyKind(key);
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key);
  const claims = /^request\.auth\.claims((\[[^\]]+\])+)$/.exec(key);
  if (kind === "unknown") p = { kind: "unknown" };
  else if (header) p = { kind: "header", name: header[1].toLowerCase() };
  else if (claims) p = { kind: "claims", path: [...claims[1].matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]) };
  else p = { kind: "simple", l7: kind === "l7", key };
  // Keys come from configuration, so the set is small; the bound only guards against misuse.
  if (parsedKeys.size < 4096) parsedKeys.set(key, p);
  return p;
}

const NONE: string[] = [];

function one(v: string | undefined): string[] {
  return v === undefined || v === "" ? NONE : [v];
}

/** The values an attribute key has for this request; undefined when unavailable here. */
function conditionValues(pk: ParsedKey, ctx: Ctx): { values: string[]; ip?: boolean; port?: boolean } | undefined {
  const { req, peer } = ctx;
  switch (pk.kind) {
    case "unknown":
      return undefined;
    case "header":
      return ctx.l7 ? { values: headerValues(req, pk.name) } : undefined;
    case "claims":
      return ctx.l7 ? { values: claimValues(req.auth, pk.path) } : undefined;
  }
  if (pk.l7 && !ctx.l7) return undefined;
  switch (pk.key) {
    case "source.ip":
      return { values: one(req.source.ip), ip: true };
    case "remote.ip":
      return { values: one(remoteIp(req)), ip: true };
    case "destination.ip":
      return { values: one(req.destination.ip), ip: true };
    case "destination.port":
      return { values: [String(req.destination.port)], port: true };
    case "source.namespace":
      return { values: one(peer.namespace) };
    case "source.principal":
      return { values: one(peer.principal) };
    case "source.trustDomain":
      return { values: one(peer.trustDomain) };
    case "connection.sni":
      return { values: one(req.sni) };
    case "request.auth.principal":
      return { values: one(req.auth?.principal) };
    case "request.auth.audiences":
      return { values: req.auth?.audiences ?? NONE };
    case "request.auth.presenter":
      return { values: one(req.auth?.presenter) };
  }
  return undefined;
}

function conditionMatches(c: PolicyCondition, ctx: Ctx): Tri {
  const pk = parseKey(c.key);
  const got = conditionValues(pk, ctx);
  if (got === undefined) {
    if (pk.kind === "unknown") {
      ctx.warnings.add(`${where(ctx)}: unknown condition key "${c.key}"; the condition cannot be evaluated`);
    }
    return UNKNOWN;
  }
  const test = (pattern: string): Tri => {
    if (got.ip) {
      if (ipInBlock(pattern, undefined) === undefined) {
        return invalidValue(ctx, `condition "${c.key}": "${pattern}" is not an IP address or CIDR block`);
      }
      return got.values.some((v) => ipInBlock(pattern, v) === true);
    }
    if (got.port && !isPortValue(pattern)) {
      return invalidValue(ctx, `condition "${c.key}": "${pattern}" is not a port number (1 to 65535)`);
    }
    return got.values.some((v) => matchString(pattern, v));
  };
  if (c.values === undefined && c.notValues === undefined) {
    ctx.warnings.add(`${where(ctx)}: condition "${c.key}" has neither values nor notValues`);
    return false;
  }
  let unknown = false;
  if (c.values !== undefined) {
    const r = anyOf(c.values, test);
    if (r === false) return false;
    if (r === undefined) unknown = true;
  }
  if (c.notValues !== undefined) {
    const r = anyOf(c.notValues, test);
    if (r === true) return false;
    if (r === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : true;
}

/** True when one item matches, false when none does, UNKNOWN when none does but some could not be decided. */
function anyOf<T>(items: readonly T[], test: (item: T) => Tri): Tri {
  let unknown = false;
  for (const item of items) {
    const r = test(item);
    if (r === true) return true;
    if (r === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : false;
}

/** Does one rule match? from AND to AND every when; false short-circuits. */
function ruleMatches(rule: PolicyRule, ctx: Ctx): Tri {
  let unknown = false;
  if (rule.from && rule.from.length) {
    const r = anyOf(rule.from, (f) => sourceMatches(f.source ?? {}, ctx));
    if (r === false) return false;
    if (r === undefined) unknown = true;
  }
  if (rule.to && rule.to.length) {
    const r = anyOf(rule.to, (t) => operationMatches(t.operation ?? {}, ctx));
    if (r === false) return false;
    if (r === undefined) unknown = true;
  }
  for (const c of rule.when ?? []) {
    const m = conditionMatches(c, ctx);
    if (m === false) return false;
    if (m === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : true;
}

export interface PolicyMatch {
  /** true: a rule matched; false: none did; undefined: no rule matched for sure but one could not be evaluated here. */
  matched: Tri;
  /** The first rule that matched (or, for an unknown result, the first rule that could not be evaluated). */
  ruleIndex?: number;
  /** Set when the policy holds a value that cannot be read (evaluated fail closed): what and where. */
  invalid?: string;
}

/** Request-derived values computed once per request, shared by every policy. */
interface Prepared {
  req: AuthzRequest;
  peer: Peer;
  path?: string;
}

function prepare(req: AuthzRequest): Prepared {
  return { req, peer: peerOf(req.source.principal), path: req.http ? normalizePath(req.http.path) : undefined };
}

function matchPrepared(policy: AuthorizationPolicy, p: Prepared, warnings: Set<string>): PolicyMatch {
  const ctx: Ctx = {
    req: p.req,
    peer: p.peer,
    l7: p.req.http !== undefined,
    path: p.path,
    policyNamespace: policy.namespace,
    warnings,
    policy,
    rule: 0,
  };
  let unknownAt: number | undefined;
  const rules = policy.rules ?? [];
  for (let i = 0; i < rules.length; i++) {
    ctx.rule = i;
    const m = ruleMatches(rules[i], ctx);
    if (m === true) return { matched: true, ruleIndex: i };
    if (m === undefined && unknownAt === undefined) unknownAt = i;
  }
  if (unknownAt === undefined) return { matched: false };
  return ctx.invalid ? { matched: UNKNOWN, ruleIndex: unknownAt, invalid: ctx.invalid } : { matched: UNKNOWN, ruleIndex: unknownAt };
}

/** Evaluate one policy's rules against a request. */
export function policyMatches(
  policy: AuthorizationPolicy,
  req: AuthzRequest,
  warnings: Set<string> = new Set(),
): PolicyMatch {
  return matchPrepared(policy, prepare(req), warnings);
}

function layer(req: AuthzRequest): string {
  return req.http ? "HTTP" : "L4";
}

/**
 * Decide one connection (no `http`) or request with the policies that apply at this enforcement point.
 * Pure; the caller picks the policies (see placement.ts).
 */
export function authorize(policies: readonly AuthorizationPolicy[], req: AuthzRequest): AuthzDecision {
  const warnings = new Set<string>();
  const audited: string[] = [];
  const dryRun: string[] = [];
  const finish = (d: AuthzDecision): AuthzDecision => {
    if (audited.length) d.audited = audited;
    if (dryRun.length) d.dryRun = dryRun;
    if (warnings.size) d.warnings = [...warnings];
    return d;
  };

  const prepared = prepare(req);
  const results = policies.map((p) => ({ p, m: matchPrepared(p, prepared, warnings) }));
  for (const { p, m } of results) {
    const wouldMatch = m.matched === true ||
      (m.matched === undefined && (p.action === "DENY" || p.action === "CUSTOM"));
    if (p.dryRun && wouldMatch) dryRun.push(`${p.action} ${policyKey(p)}`);
    if (!p.dryRun && p.action === "AUDIT" && m.matched === true) audited.push(policyKey(p));
  }
  const enforced = results.filter((r) => !r.p.dryRun);

  for (const { p, m } of enforced) {
    if (p.action !== "CUSTOM" || m.matched === false) continue;
    warnings.add(`policy ${policyKey(p)}: the CUSTOM action (external authorization) is not supported`);
    return finish({
      allowed: false,
      policy: policyKey(p),
      action: "CUSTOM",
      ruleIndex: m.ruleIndex,
      reason: `denied by CUSTOM policy ${
        policyKey(p)
      }: external authorization is not supported, so a matching CUSTOM policy denies (fail closed)`,
    });
  }

  for (const { p, m } of enforced) {
    if (p.action !== "DENY" || m.matched === false) continue;
    const reason = m.matched === true
      ? `denied by DENY policy ${policyKey(p)} rule ${m.ruleIndex}`
      : m.invalid
      ? `denied by DENY policy ${policyKey(p)} rule ${m.ruleIndex}: it holds a value that cannot be read (${m.invalid}), so it is enforced as if it matched (fail closed)`
      : `denied by DENY policy ${policyKey(p)} rule ${m.ruleIndex}: it needs attributes not available at ${
        layer(req)
      } (or unknown keys), so it is enforced as if they matched (fail closed)`;
    return finish({ allowed: false, policy: policyKey(p), action: "DENY", ruleIndex: m.ruleIndex, reason });
  }

  const allows = enforced.filter((r) => r.p.action === "ALLOW");
  if (allows.length === 0) return finish({ allowed: true, reason: "no ALLOW policy applies" });
  for (const { p, m } of allows) {
    if (m.matched === true) {
      return finish({
        allowed: true,
        policy: policyKey(p),
        action: "ALLOW",
        ruleIndex: m.ruleIndex,
        reason: `allowed by ALLOW policy ${policyKey(p)} rule ${m.ruleIndex}`,
      });
    }
  }
  const unevaluable = allows.filter((r) => r.m.matched === undefined && !r.m.invalid).map((r) => policyKey(r.p));
  const unreadable = allows.filter((r) => r.m.invalid).map((r) => r.m.invalid!);
  const names = allows.map((r) => policyKey(r.p)).join(", ");
  const extra = (unevaluable.length
    ? `; rules of ${unevaluable.join(", ")} need attributes not available at ${layer(req)} and never match here`
    : "") + (unreadable.length ? `; ${unreadable.join("; ")}` : "");
  return finish({ allowed: false, reason: `no ALLOW policy matched (${names})${extra}` });
}
