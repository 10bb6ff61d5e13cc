/**
 * RequestAuthentication with Istio's semantics (Envoy jwt_authn as Istio configures it):
 *
 * - Tokens are looked for where the rules say (fromHeaders with an optional prefix, fromParams,
 *   fromCookies); a rule naming none uses "Authorization: Bearer <token>" and the `access_token` query
 *   parameter.
 * - No token: not an error. The request goes on with no request principal and authorization decides
 *   (an ALLOW with requestPrincipals then denies with 403).
 * - A token is checked against the rules whose issuer equals its `iss` (several rules may share an
 *   issuer, e.g. from two RequestAuthentications: one success is enough). No such rule: "Jwt issuer is not
 *   configured". Every token found must be valid; one invalid token fails the request.
 * - Invalid token: 401, except an audience mismatch, which Envoy answers with 403.
 * - CORS preflight requests (OPTIONS with Origin and Access-Control-Request-Method) skip authentication.
 * - forwardOriginalToken false (the default) strips the header that carried the token before forwarding;
 *   outputPayloadToHeader copies the token's base64url payload segment; outputClaimToHeaders copies
 *   claims ("a.b" walks nested claims) whose value is a string, number or boolean.
 *
 * Keys: the caller supplies them per rule (`KeyResolver`), so fetching jwksUri stays in the waypoint;
 * `inlineKeySet` serves rules with an inline `jwks`.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from "jose";
import { ErrorCode, MeshError } from "../core/mod.ts";
import type { JwtRule } from "../model/mod.ts";
import type { RequestAuth } from "./request.ts";

/** Resolves the verification keys of a rule: a jose key-set function (createLocalJWKSet / createRemoteJWKSet). */
export type KeyResolver = (rule: JwtRule) => JWTVerifyGetKey | Promise<JWTVerifyGetKey>;

export interface AuthnRequest {
  /** Header names in any case; several values as an array. */
  headers: Record<string, string | string[] | undefined>;
  /** The query string parameters (for fromParams and access_token). */
  query?: URLSearchParams;
  /** The HTTP method, to recognize CORS preflight requests. */
  method?: string;
}

export type AuthnResult =
  | { status: "none"; reason: string }
  | {
    status: "ok";
    /** "<iss>/<sub>" */
    principal: string;
    claims: JWTPayload;
    audiences: string[];
    presenter?: string;
    rule: JwtRule;
    token: string;
    /** Ready for AuthzRequest.auth. */
    auth: RequestAuth;
    /** Lower-case header names to remove before forwarding (forwardOriginalToken false). */
    stripHeaders: string[];
    /** Headers to add before forwarding (outputPayloadToHeader, outputClaimToHeaders). */
    addHeaders: Record<string, string>;
  }
  | { status: "invalid"; error: string; httpStatus: 401 | 403; rule?: JwtRule };

/**
 * Tokens whose signature already verified with a rule's keys (a proxy's cache; optional). A token found
 * here skips the signature check only: its expiry and not-before are checked on every request, and the
 * rule's audiences too. Keyed by the rule object, so a new configuration starts with no entries.
 */
export interface VerifiedTokens {
  get(rule: JwtRule, token: string): JWTPayload | undefined;
  set(rule: JwtRule, token: string, payload: JWTPayload): void;
}

/** Envoy's messages, so logs and `mesh explain` read like Istio's. */
export const JwtError = {
  BadFormat: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  UnknownIssuer: "Jwt issuer is not configured",
  Expired: "Jwt is expired",
  NotYetValid: "Jwt not yet valid",
  AudienceNotAllowed: "Audiences in Jwt are not allowed",
  VerificationFails: "Jwt verification fails",
  NoMatchingKey: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksFetchFailed: "Jwks remote fetch is failed",
} as const;

/** Envoy's default clock skew for exp/nbf. */
const CLOCK_SKEW_SECONDS = 60;

type Location =
  | { kind: "header"; name: string; prefix: string }
  | { kind: "param"; name: string }
  | { kind: "cookie"; name: string };

function locationsOf(rule: JwtRule): Location[] {
  const out: Location[] = [];
  for (const h of rule.fromHeaders ?? []) {
    out.push({ kind: "header", name: h.name.toLowerCase(), prefix: h.prefix ?? "" });
  }
  for (const p of rule.fromParams ?? []) out.push({ kind: "param", name: p });
  for (const c of rule.fromCookies ?? []) out.push({ kind: "cookie", name: c });
  if (out.length === 0) {
    out.push({ kind: "header", name: "authorization", prefix: "Bearer " }, { kind: "param", name: "access_token" });
  }
  return out;
}

function locationKey(l: Location): string {
  return l.kind === "header" ? `header:${l.name}:${l.prefix}` : `${l.kind}:${l.name}`;
}

function lowerHeaders(h: AuthnRequest["headers"]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const list = out.get(k.toLowerCase()) ?? [];
    list.push(...(Array.isArray(v) ? v : [v]));
    out.set(k.toLowerCase(), list);
  }
  return out;
}

function cookies(headers: Map<string, string[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of headers.get("cookie") ?? []) {
    for (const part of line.split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
  }
  return out;
}

interface Found {
  token: string;
  location: Location;
  rules: JwtRule[];
}

function extract(rules: JwtRule[], req: AuthnRequest): Found[] {
  const byLoc = new Map<string, { location: Location; rules: JwtRule[] }>();
  for (const r of rules) {
    for (const l of locationsOf(r)) {
      const k = locationKey(l);
      const e = byLoc.get(k) ?? { location: l, rules: [] };
      e.rules.push(r);
      byLoc.set(k, e);
    }
  }
  const headers = lowerHeaders(req.headers);
  const jar = cookies(headers);
  const found: Found[] = [];
  const seen = new Set<string>();
  const add = (token: string, location: Location, rs: JwtRule[]) => {
    const t = token.trim();
    const k = `${locationKey(location)}|${t}`;
    if (t === "" || seen.has(k)) return;
    seen.add(k);
    found.push({ token: t, location, rules: rs });
  };
  for (const { location, rules: rs } of byLoc.values()) {
    if (location.kind === "header") {
      for (const v of headers.get(location.name) ?? []) {
        if (location.prefix === "") add(v, location, rs);
        else if (v.toLowerCase().startsWith(location.prefix.toLowerCase())) {
          add(v.slice(location.prefix.length), location, rs);
        }
      }
    } else if (location.kind === "param") {
      for (const v of req.query?.getAll(location.name) ?? []) add(v, location, rs);
    } else {
      const v = jar.get(location.name);
      if (v !== undefined) add(v, location, rs);
    }
  }
  return found;
}

function isCorsPreflight(req: AuthnRequest): boolean {
  if ((req.method ?? "").toUpperCase() !== "OPTIONS") return false;
  const h = lowerHeaders(req.headers);
  return (h.get("origin") ?? []).some((v) => v !== "") &&
    (h.get("access-control-request-method") ?? []).some((v) => v !== "");
}

function audiencesOf(payload: JWTPayload): string[] {
  const a = payload.aud;
  if (typeof a === "string") return [a];
  return Array.isArray(a) ? a.filter((x): x is string => typeof x === "string") : [];
}

/** jwt_verify_lib compares audiences without scheme and trailing slash. */
function normAudience(a: string): string {
  return a.replace(/^https?:\/\//, "").replace(/\/+$/, "");
}

type Verified = { ok: true; payload: JWTPayload; rule: JwtRule } | { ok: false; error: string; httpStatus: 401 | 403 };

function joseError(e: unknown): string {
  const code = (e as { code?: string }).code ?? "";
  const claim = (e as { claim?: string }).claim;
  if (code === "ERR_JWT_EXPIRED") return JwtError.Expired;
  if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && claim === "nbf") return JwtError.NotYetValid;
  if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && claim === "iss") return JwtError.UnknownIssuer;
  if (code === "ERR_JWKS_NO_MATCHING_KEY" || code === "ERR_JWKS_MULTIPLE_MATCHING_KEYS") return JwtError.NoMatchingKey;
  if (code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID") return JwtError.JwksFetchFailed;
  if (code === "ERR_JWS_INVALID" || code === "ERR_JWT_INVALID") return JwtError.BadFormat;
  return JwtError.VerificationFails;
}

/** exp and nbf as jose's jwtVerify checks them, for a token whose signature was verified before. */
function timeClaimsError(payload: JWTPayload, now: Date): string | undefined {
  const t = Math.floor(now.getTime() / 1000);
  if (typeof payload.exp === "number" && payload.exp <= t - CLOCK_SKEW_SECONDS) return JwtError.Expired;
  if (typeof payload.nbf === "number" && payload.nbf > t + CLOCK_SKEW_SECONDS) return JwtError.NotYetValid;
  return undefined;
}

async function verifyWith(
  token: string,
  rule: JwtRule,
  keys: KeyResolver,
  now: Date,
  verified?: VerifiedTokens,
): Promise<Verified> {
  const known = verified?.get(rule, token);
  if (known) {
    const err = timeClaimsError(known, now);
    if (err) return { ok: false, error: err, httpStatus: 401 };
    return checkAudiences(known, rule);
  }
  let getKey: JWTVerifyGetKey;
  try {
    getKey = await keys(rule);
  } catch {
    return { ok: false, error: JwtError.JwksFetchFailed, httpStatus: 401 };
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, getKey, {
      issuer: rule.issuer,
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: now,
    }));
  } catch (e) {
    return { ok: false, error: joseError(e), httpStatus: 401 };
  }
  verified?.set(rule, token, payload);
  return checkAudiences(payload, rule);
}

function checkAudiences(payload: JWTPayload, rule: JwtRule): Verified {
  if (rule.audiences && rule.audiences.length) {
    const want = new Set(rule.audiences.map(normAudience));
    if (!audiencesOf(payload).some((a) => want.has(normAudience(a)))) {
      return { ok: false, error: JwtError.AudienceNotAllowed, httpStatus: 403 };
    }
  }
  return { ok: true, payload, rule };
}

async function verifyToken(f: Found, keys: KeyResolver, now: Date, verified?: VerifiedTokens): Promise<Verified> {
  if (verified) {
    // A token verified before with one of these rules (so its issuer is that rule's): no need to decode it again.
    for (const rule of f.rules) {
      const known = verified.get(rule, f.token);
      if (!known) continue;
      const v = timeClaimsError(known, now) ? undefined : checkAudiences(known, rule);
      if (v?.ok) return v;
      break; // expired or audience refused: the full path below gives the exact answer
    }
  }
  let iss: unknown;
  try {
    decodeProtectedHeader(f.token);
    iss = decodeJwt(f.token).iss;
  } catch {
    return { ok: false, error: JwtError.BadFormat, httpStatus: 401 };
  }
  const candidates = f.rules.filter((r) => r.issuer === iss);
  if (candidates.length === 0) return { ok: false, error: JwtError.UnknownIssuer, httpStatus: 401 };
  const failures: Verified[] = [];
  for (const rule of candidates) {
    const v = await verifyWith(f.token, rule, keys, now, verified);
    if (v.ok) return v;
    failures.push(v);
  }
  // An audience mismatch only wins when nothing worse happened.
  return failures.find((v) => !v.ok && v.httpStatus === 401) ?? failures[0];
}

function claimAt(payload: JWTPayload, path: string): string | undefined {
  let cur: unknown = payload;
  for (const seg of path.split(".")) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (typeof cur === "string") return cur;
  if (typeof cur === "number" || typeof cur === "boolean") return String(cur);
  return undefined;
}

/**
 * Authenticate one request against the jwtRules of every RequestAuthentication that applies.
 * `cache`, when given, remembers tokens whose signature checked out (see VerifiedTokens).
 */
export async function authenticate(
  rules: readonly JwtRule[],
  req: AuthnRequest,
  keys: KeyResolver,
  now: Date = new Date(),
  cache?: VerifiedTokens,
): Promise<AuthnResult> {
  if (rules.length === 0) return { status: "none", reason: "no RequestAuthentication applies" };
  if (isCorsPreflight(req)) return { status: "none", reason: "CORS preflight request: authentication skipped" };
  const found = extract([...rules], req);
  if (found.length === 0) return { status: "none", reason: "no token presented" };
  const verified: { f: Found; v: Extract<Verified, { ok: true }> }[] = [];
  for (const f of found) {
    const v = await verifyToken(f, keys, now, cache);
    if (!v.ok) {
      const rule = f.rules.length === 1 ? f.rules[0] : undefined;
      return { status: "invalid", error: v.error, httpStatus: v.httpStatus, ...(rule ? { rule } : {}) };
    }
    verified.push({ f, v });
  }
  const stripHeaders = new Set<string>();
  const addHeaders: Record<string, string> = {};
  for (const { f, v } of verified) {
    if (f.location.kind === "header" && v.rule.forwardOriginalToken !== true) stripHeaders.add(f.location.name);
    const payloadSegment = f.token.split(".")[1];
    if (v.rule.outputPayloadToHeader && addHeaders[v.rule.outputPayloadToHeader.toLowerCase()] === undefined) {
      addHeaders[v.rule.outputPayloadToHeader.toLowerCase()] = payloadSegment;
    }
    for (const o of v.rule.outputClaimToHeaders ?? []) {
      const value = claimAt(v.payload, o.claim);
      const h = o.header.toLowerCase();
      if (value !== undefined && addHeaders[h] === undefined) addHeaders[h] = value;
    }
  }
  const { f, v } = verified[0];
  const principal = `${v.payload.iss}/${v.payload.sub ?? ""}`;
  const audiences = audiencesOf(v.payload);
  const presenter = typeof v.payload.azp === "string" ? v.payload.azp : undefined;
  return {
    status: "ok",
    principal,
    claims: v.payload,
    audiences,
    presenter,
    rule: v.rule,
    token: f.token,
    auth: {
      principal,
      claims: v.payload as Record<string, unknown>,
      audiences,
      presenter,
      spaceDelimitedClaims: v.rule.spaceDelimitedClaims,
    },
    stripHeaders: [...stripHeaders],
    addHeaders,
  };
}

/** Keys for a rule with an inline `jwks` (a JSON string, as in Istio). */
export function inlineKeySet(rule: JwtRule): JWTVerifyGetKey {
  if (!rule.jwks) {
    throw new MeshError(
      ErrorCode.TokenInvalid,
      `JWT rule for issuer "${rule.issuer}" has no inline jwks: fetch its jwksUri instead`,
    );
  }
  let doc: JSONWebKeySet;
  try {
    doc = JSON.parse(rule.jwks) as JSONWebKeySet;
  } catch (e) {
    throw new MeshError(
      ErrorCode.TokenInvalid,
      `JWT rule for issuer "${rule.issuer}": inline jwks is not JSON: ${(e as Error).message}`,
    );
  }
  return createLocalJWKSet(doc);
}
