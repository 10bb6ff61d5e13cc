/**
 * Path modifiers (URLRewrite and RequestRedirect) and the Location header of a redirect, per the Gateway
 * API HTTPPathModifier and HTTPRequestRedirectFilter references.
 */
import type { HttpPathMatch, HttpPathModifier } from "../model/mod.ts";
import { trimPrefix } from "./match.ts";

/**
 * ReplacePrefixMatch: swaps the matched prefix (whole segments) for `replacement`, with the spec's slash
 * rules: a trailing "/" on either side is ignored, the rest of the path keeps its own leading "/", and an
 * empty result is "/".
 *
 * @example
 * replacePrefix("/foo/bar", "/foo/", "/xyz/") // "/xyz/bar"
 * replacePrefix("/foo/", "/foo", "/xyz")     // "/xyz/"
 * replacePrefix("/foo", "/foo", "")          // "/"
 */
export function replacePrefix(path: string, matchedPrefix: string, replacement: string): string {
  const rest = path.slice(trimPrefix(matchedPrefix).length);
  const out = trimPrefix(replacement) + rest;
  return out === "" ? "/" : out;
}

/**
 * The path after a path modifier, or an error when ReplacePrefixMatch follows a match that is not a
 * PathPrefix (the spec forbids that combination; the request is refused rather than guessed at).
 */
export function modifyPath(
  path: string,
  mod: HttpPathModifier,
  matched: HttpPathMatch,
): { path: string } | { error: string } {
  if (mod.type === "ReplaceFullPath") return { path: mod.replaceFullPath ?? "/" };
  if (mod.type === "ReplacePrefixMatch") {
    if (matched.type !== "PathPrefix") {
      return { error: `ReplacePrefixMatch needs a PathPrefix match, the rule matched by ${matched.type}` };
    }
    return { path: replacePrefix(path, matched.value, mod.replacePrefixMatch ?? "/") };
  }
  return { error: `unknown path modifier type "${(mod as { type: string }).type}"` };
}

const WELL_KNOWN_PORT: Record<string, number> = { http: 80, https: 443 };

/**
 * The Location of a RequestRedirect. Unset parts come from the request. The port, when the filter sets
 * none, is the scheme's well-known port if the filter sets a scheme, else the listener port (for a mesh
 * route: the Service port the client called). The port is left out when it is the scheme's own (http 80,
 * https 443). The query string is kept.
 *
 * @example
 * redirectLocation({ scheme: "http", hostname: "a.svc", listenerPort: 80, path: "/x", query: "" },
 *   { scheme: "https" }) // "https://a.svc/x"
 */
export function redirectLocation(
  req: { scheme: string; hostname: string; listenerPort: number; path: string; query: string },
  redirect: { scheme?: string; hostname?: string; port?: number; path?: string },
): string {
  const scheme = (redirect.scheme ?? req.scheme).toLowerCase();
  const port = redirect.port ??
    (redirect.scheme !== undefined ? WELL_KNOWN_PORT[scheme] ?? req.listenerPort : req.listenerPort);
  let host = redirect.hostname ?? req.hostname;
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  const portPart = WELL_KNOWN_PORT[scheme] === port ? "" : `:${port}`;
  const path = redirect.path ?? req.path;
  return `${scheme}://${host}${portPart}${path}${req.query === "" ? "" : `?${req.query}`}`;
}
