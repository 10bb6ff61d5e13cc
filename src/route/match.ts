/**
 * HTTPRouteMatch evaluation: path, headers, query parameters, method, and route hostnames. Semantics from
 * the Gateway API HTTPRoute reference:
 * - Path Exact: the whole path, case-sensitive.
 * - Path PathPrefix: element-wise on "/"-separated segments, a trailing "/" in the prefix ignored:
 *   "/abc" matches "/abc", "/abc/" and "/abc/def" but not "/abcd".
 * - RegularExpression (paths, headers, query values): must match the whole value. Patterns are RE2
 *   (Istio/Envoy); the common subset runs on JS RegExp, and `(?P<name>` groups are accepted.
 * - Header names are case-insensitive, query parameter names are case-sensitive, values exact. When a
 *   match lists the same name twice, only the first entry counts. A repeated request header reads as its
 *   values joined with ","; a repeated query parameter reads as its first value.
 * - Method: exact.
 * - Hostnames: exact (case-insensitive) or "*.suffix", which matches one or more labels before the suffix
 *   ("*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com").
 * All criteria of one match must hold (AND); a rule matches when any of its matches does (OR).
 */
import type { HttpHeaderMatch, HttpPathMatch, HttpQueryParamMatch, HttpRouteMatch } from "../model/mod.ts";
import { splitHost } from "../core/mod.ts";
import { headerValue } from "./headers.ts";
import type { HeaderMap } from "./types.ts";

/** A request reduced to what matching reads. Build it once per request with `matchableRequest`. */
export interface MatchableRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string without "?" ("" if none). */
  query: string;
  params: URLSearchParams;
  headers: HeaderMap;
  /** Host without port or trailing dot, lower-cased. */
  hostname: string;
}

/** The match a rule without `matches` gets, and the path a match without `path` gets. */
export const DEFAULT_PATH: HttpPathMatch = { type: "PathPrefix", value: "/" };

/** Splits a request target into path and query ("/a?x=1" -> "/a", "x=1"). An empty path reads as "/". */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf("?");
  const path = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q + 1) : "";
  return { path: path === "" ? "/" : path, query };
}

/** The host part of a Host header: no port, no trailing dot, lower-case; IPv6 brackets removed. */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  const { host: name, bracketed } = splitHost(h);
  if (bracketed || h.startsWith("[")) return name;
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** Prepares a request for matching. */
export function matchableRequest(
  req: { method: string; path: string; host: string },
  headers: HeaderMap,
): MatchableRequest {
  const { path, query } = splitTarget(req.path);
  return {
    method: req.method,
    path,
    query,
    params: new URLSearchParams(query),
    headers,
    hostname: hostnameOf(req.host),
  };
}

const regexCache = new Map<string, RegExp | null>();
const REGEX_CACHE_MAX = 4096;

/** A full-match RegExp for an RE2-style pattern, or null if JS cannot compile it (it then never matches). */
export function fullMatchRegex(pattern: string): RegExp | null {
  let re = regexCache.get(pattern);
  if (re !== undefined) return re;
  try {
    re = new RegExp(`^(?:${pattern.replace(/\(\?P</g, "(?<")})$`);
  } catch {
    re = null;
  }
  if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

/** The prefix with any trailing "/" removed ("/" becomes "", which every path extends). */
export function trimPrefix(prefix: string): string {
  return prefix.replace(/\/+$/, "");
}

/** Does `path` (no query) satisfy the path match? */
export function pathMatches(m: HttpPathMatch, path: string): boolean {
  switch (m.type) {
    case "Exact":
      return path === m.value;
    case "PathPrefix": {
      const p = trimPrefix(m.value);
      return path === p || path.startsWith(p + "/");
    }
    case "RegularExpression":
      return fullMatchRegex(m.value)?.test(path) ?? false;
    default:
      return false; // unknown type: fail closed
  }
}

function valueMatches(type: string | undefined, expected: string, actual: string | undefined | null): boolean {
  if (actual === undefined || actual === null) return false;
  if (type === "RegularExpression") return fullMatchRegex(expected)?.test(actual) ?? false;
  if (type === undefined || type === "Exact") return actual === expected;
  return false;
}

/** Every header criterion holds (first entry per name, case-insensitive). */
export function headersMatch(criteria: HttpHeaderMatch[], headers: HeaderMap): boolean {
  const seen = new Set<string>();
  for (const c of criteria) {
    const key = c.name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    if (!valueMatches(c.type, c.value, headerValue(headers, key))) return false;
  }
  return true;
}

/** Every query criterion holds (first entry per name, case-sensitive; first value of the parameter). */
export function queryParamsMatch(criteria: HttpQueryParamMatch[], params: URLSearchParams): boolean {
  const seen = new Set<string>();
  for (const c of criteria) {
    if (seen.has(c.name)) continue;
    seen.add(c.name);
    if (!valueMatches(c.type, c.value, params.get(c.name))) return false;
  }
  return true;
}

/** Does the request satisfy every criterion of one HTTPRouteMatch? */
export function matchRequest(m: HttpRouteMatch, req: MatchableRequest): boolean {
  if (m.method !== undefined && m.method !== req.method) return false;
  if (!pathMatches(m.path ?? DEFAULT_PATH, req.path)) return false;
  if (m.headers && m.headers.length > 0 && !headersMatch(m.headers, req.headers)) return false;
  if (m.queryParams && m.queryParams.length > 0 && !queryParamsMatch(m.queryParams, req.params)) return false;
  return true;
}

/** Does a route hostname (exact or "*.suffix") cover the request's hostname? */
export function hostnameMatches(pattern: string, hostname: string): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith("*.")) {
    const suffix = p.slice(1); // ".example.com"
    return hostname.length > suffix.length && hostname.endsWith(suffix);
  }
  return p === hostname;
}

/**
 * How specifically a route's hostnames cover the request: [characters of the matching exact hostname,
 * characters of the matching hostname], the two hostname criteria of Gateway API precedence. A route
 * without hostnames covers every host with [0, 0]; undefined: the route does not cover this host.
 */
export function hostnameRank(hostnames: string[], hostname: string): [number, number] | undefined {
  if (hostnames.length === 0) return [0, 0];
  let best: [number, number] | undefined;
  for (const h of hostnames) {
    if (!hostnameMatches(h, hostname)) continue;
    const rank: [number, number] = [h.startsWith("*.") ? 0 : h.length, h.length];
    if (!best || rank[0] > best[0] || (rank[0] === best[0] && rank[1] > best[1])) best = rank;
  }
  return best;
}
