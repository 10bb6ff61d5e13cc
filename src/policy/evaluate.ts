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
 * own "enforce it without its HTTP parts" behaviour.
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

function and(parts: Tri[]): Tri {
  let unknown = false;
  for (const p of parts) {
    if (p === false) return false;
    if (p === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : true;
}

function or(parts: Tri[]): Tri {
  let unknown = false;
  for (const p of parts) {
    if (p === true) return true;
    if (p === undefined) unknown = true;
  }
  return unknown ? UNKNOWN : false;
}

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
  where: string;
}

type Values = string[] | undefined;

/** Field with positive and negative forms. `test` returns undefined when the attribute is unavailable. */
function field(pos: Values, neg: Values, test: (v: string) => Tri): Tri[] {
  const out: Tri[] = [];
  if (pos && pos.length) out.push(or(pos.map(test)));
  if (neg && neg.length) {
    const any = or(neg.map(test));
    out.push(any === undefined ? UNKNOWN : !any);
  }
  return out;
}

function matchServiceAccount(value: string, ctx: Ctx): Tri {
  const [ns, sa] = value.includes("/") ? value.split("/", 2) : [ctx.policyNamespace, value];
  return ctx.peer.namespace === ns && ctx.peer.serviceAccount === sa;
}

function sourceMatches(s: PolicySource, ctx: Ctx): Tri {
  const l7 = (f: () => Tri): Tri => (ctx.l7 ? f() : UNKNOWN);
  const parts: Tri[] = [
    ...field(s.principals, s.notPrincipals, (v) => matchString(v, ctx.peer.principal)),
    ...field(s.namespaces, s.notNamespaces, (v) => matchString(v, ctx.peer.namespace)),
    ...field(s.serviceAccounts, s.notServiceAccounts, (v) => matchServiceAccount(v, ctx)),
    ...field(s.trustDomains, s.notTrustDomains, (v) => matchString(v, ctx.peer.trustDomain)),
    ...field(s.ipBlocks, s.notIpBlocks, (v) => ipInBlock(v, ctx.req.source.ip)),
    ...field(s.requestPrincipals, s.notRequestPrincipals, (v) => l7(() => matchString(v, ctx.req.auth?.principal))),
    ...field(s.remoteIpBlocks, s.notRemoteIpBlocks, (v) => l7(() => ipInBlock(v, remoteIp(ctx.req)))),
  ];
  return parts.length === 0 ? false : and(parts);
}

function remoteIp(req: AuthzRequest): string | undefined {
  return req.source.remoteIp ?? req.source.ip;
}

function portMatches(v: string, port: number): boolean {
  // Non-numeric port strings never match (Istio drops them when compiling for ztunnel).
  return /^\d+$/.test(v) && Number(v) === port;
}

function operationMatches(o: PolicyOperation, ctx: Ctx): Tri {
  const http = ctx.req.http;
  const l7 = (f: () => Tri): Tri => (ctx.l7 ? f() : UNKNOWN);
  const parts: Tri[] = [
    ...field(o.ports, o.notPorts, (v) => portMatches(v, ctx.req.destination.port)),
    ...field(o.hosts, o.notHosts, (v) => l7(() => matchHost(v, http?.host))),
    ...field(o.methods, o.notMethods, (v) => l7(() => matchString(v, http?.method))),
    ...field(o.paths, o.notPaths, (v) => l7(() => matchPath(v, ctx.path))),
  ];
  return parts.length === 0 ? false : and(parts);
}

function headerValues(req: AuthzRequest, name: string): string[] {
  const v = req.http?.headers[name.toLowerCase()];
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

/** The values an attribute key has for this request; undefined when unavailable here. */
function conditionValues(key: string, ctx: Ctx): { values: string[]; ip?: boolean } | undefined {
  const { req, peer } = ctx;
  const kind = conditionKeyKind(key);
  if (kind === "unknown") return undefined;
  if (kind === "l7" && !ctx.l7) return undefined;
  const one = (v: string | undefined) => (v === undefined || v === "" ? [] : [v]);
  switch (key) {
    case "source.ip":
      return { values: one(req.source.ip), ip: true };
    case "remote.ip":
      return { values: one(remoteIp(req)), ip: true };
    case "destination.ip":
      return { values: one(req.destination.ip), ip: true };
    case "destination.port":
      return { values: [String(req.destination.port)] };
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
      return { values: req.auth?.audiences ?? [] };
    case "request.auth.presenter":
      return { values: one(req.auth?.presenter) };
  }
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key);
  if (header) return { values: headerValues(req, header[1]) };
  const claims = /^request\.auth\.claims((\[[^\]]+\])+)$/.exec(key);
  if (claims) {
    const path = [...claims[1].matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
    return { values: claimValues(req.auth, path) };
  }
  return undefined;
}

function conditionMatches(c: PolicyCondition, ctx: Ctx): Tri {
  const got = conditionValues(c.key, ctx);
  if (got === undefined) {
    if (conditionKeyKind(c.key) === "unknown") {
      ctx.warnings.add(`${ctx.where}: unknown condition key "${c.key}"; the condition cannot be evaluated`);
    }
    return UNKNOWN;
  }
  const test = (pattern: string) =>
    got.values.some((v) => (got.ip ? ipInBlock(pattern, v) : matchString(pattern, v)));
  const parts: Tri[] = [];
  if (c.values !== undefined) parts.push(c.values.some(test));
  if (c.notValues !== undefined) parts.push(!c.notValues.some(test));
  if (parts.length === 0) {
    ctx.warnings.add(`${ctx.where}: condition "${c.key}" has neither values nor notValues`);
    return false;
  }
  return and(parts);
}

/** Does one rule match? */
function ruleMatches(rule: PolicyRule, ctx: Ctx): Tri {
  const parts: Tri[] = [];
  if (rule.from && rule.from.length) parts.push(or(rule.from.map((f) => sourceMatches(f.source ?? {}, ctx))));
  if (rule.to && rule.to.length) parts.push(or(rule.to.map((t) => operationMatches(t.operation ?? {}, ctx))));
  for (const c of rule.when ?? []) parts.push(conditionMatches(c, ctx));
  return and(parts);
}

export interface PolicyMatch {
  /** true: a rule matched; false: none did; undefined: no rule matched for sure but one could not be evaluated here. */
  matched: Tri;
  /** The first rule that matched (or, for an unknown result, the first rule that could not be evaluated). */
  ruleIndex?: number;
}

function contextFor(policy: AuthorizationPolicy, req: AuthzRequest, warnings: Set<string>): Ctx {
  return {
    req,
    peer: peerOf(req.source.principal),
    l7: req.http !== undefined,
    path: req.http ? normalizePath(req.http.path) : undefined,
    policyNamespace: policy.namespace,
    warnings,
    where: `policy ${policyKey(policy)}`,
  };
}

/** Evaluate one policy's rules against a request. */
export function policyMatches(
  policy: AuthorizationPolicy,
  req: AuthzRequest,
  warnings: Set<string> = new Set(),
): PolicyMatch {
  const ctx = contextFor(policy, req, warnings);
  let unknownAt: number | undefined;
  const rules = policy.rules ?? [];
  for (let i = 0; i < rules.length; i++) {
    ctx.where = `policy ${policyKey(policy)} rule ${i}`;
    const m = ruleMatches(rules[i], ctx);
    if (m === true) return { matched: true, ruleIndex: i };
    if (m === undefined && unknownAt === undefined) unknownAt = i;
  }
  return unknownAt === undefined ? { matched: false } : { matched: UNKNOWN, ruleIndex: unknownAt };
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

  const results = policies.map((p) => ({ p, m: policyMatches(p, req, warnings) }));
  for (const { p, m } of results) {
    const wouldMatch = m.matched === true || (m.matched === undefined && (p.action === "DENY" || p.action === "CUSTOM"));
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
      reason: `denied by CUSTOM policy ${policyKey(p)}: external authorization is not supported, so a matching CUSTOM policy denies (fail closed)`,
    });
  }

  for (const { p, m } of enforced) {
    if (p.action !== "DENY" || m.matched === false) continue;
    const reason = m.matched === true
      ? `denied by DENY policy ${policyKey(p)} rule ${m.ruleIndex}`
      : `denied by DENY policy ${policyKey(p)} rule ${m.ruleIndex}: it needs attributes not available at ${layer(req)} (or unknown keys), so it is enforced as if they matched (fail closed)`;
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
  const unevaluable = allows.filter((r) => r.m.matched === undefined).map((r) => policyKey(r.p));
  const names = allows.map((r) => policyKey(r.p)).join(", ");
  const extra = unevaluable.length
    ? `; rules of ${unevaluable.join(", ")} need attributes not available at ${layer(req)} and never match here`
    : "";
  return finish({ allowed: false, reason: `no ALLOW policy matched (${names})${extra}` });
}
