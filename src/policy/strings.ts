import { splitHost } from "../core/mod.ts";

/**
 * Istio's string matching for AuthorizationPolicy values: "*" is presence (any non-empty value), "x*" a
 * prefix, "*x" a suffix, anything else exact (istio pilot ambient/authorization.go stringToMatch; ztunnel
 * rbac.rs StringMatch). An absent or empty value matches nothing, not even presence.
 */
export function matchString(pattern: string, value: string | undefined): boolean {
  if (value === undefined || value === "") return false;
  if (pattern === "*") return true;
  if (pattern.length > 1 && pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  if (pattern.length > 1 && pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
  return value === pattern;
}

/**
 * Host matching for `operation.hosts`: case-insensitive (Istio lower-cases both sides) and, when the
 * pattern names no port, the request's port is ignored, so "b.com" matches "b.com:8080".
 */
export function matchHost(pattern: string, host: string | undefined): boolean {
  if (host === undefined || host === "") return false;
  const p = pattern.toLowerCase();
  let h = host.toLowerCase();
  if (!hasPort(p)) h = stripPort(h);
  return matchString(p, h);
}

function hasPort(host: string): boolean {
  const { port } = splitHost(host);
  return port !== undefined && /^\d+$/.test(port);
}

/** Brackets stay (`[::1]:80` -> `[::1]`): host patterns write IPv6 literals as they appear in Host. */
function stripPort(host: string): string {
  const s = splitHost(host);
  if (s.bracketed) return `[${s.host}]`;
  return hasPort(host) ? s.host : host;
}
