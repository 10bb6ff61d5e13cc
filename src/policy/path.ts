/**
 * Request paths as authorization sees them. Istio's default normalization (BASE) applies RFC 3986
 * normalization before policy matching: the query string and fragment are dropped, percent-encoded
 * unreserved characters are decoded (so "%2E%2E" is ".."), and "." / ".." segments are resolved. Slashes
 * are not merged and "%2F" stays encoded (Istio's defaults), so "/a//b" and "/a%2Fb" keep their shape.
 */
export function normalizePath(raw: string): string {
  let p = raw;
  const q = p.search(/[?#]/);
  if (q >= 0) p = p.slice(0, q);
  if (p === "") return "/";
  if (p.includes("%")) p = decodeUnreserved(p);
  if (!p.startsWith("/")) p = "/" + p;
  // Most paths have no dot segment: skip the split/join (this runs on every request).
  return p.includes("/.") ? removeDotSegments(p) : p;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

function decodeUnreserved(p: string): string {
  return p.replace(/%([0-9A-Fa-f]{2})/g, (_all, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : "%" + hex.toUpperCase();
  });
}

/** RFC 3986 section 5.2.4, over "/"-separated segments. */
function removeDotSegments(p: string): string {
  const segs = p.split("/").slice(1);
  const out: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    if (s === ".") {
      if (last) out.push("");
    } else if (s === "..") {
      out.pop();
      if (last) out.push("");
    } else {
      out.push(s);
    }
  }
  return "/" + out.join("/");
}

/**
 * Match an `operation.paths` value against a normalized path. Values with "{*}" (one non-empty segment)
 * or "{**}" (anything, including "/" and nothing) are Istio path templates; the rest use Istio string
 * matching ("*", "x*", "*x", exact).
 */
export function matchPath(pattern: string, path: string | undefined): boolean {
  if (path === undefined || path === "") return false;
  if (pattern.includes("{")) return templateRegex(pattern).test(path);
  if (pattern === "*") return true;
  if (pattern.length > 1 && pattern.endsWith("*")) return path.startsWith(pattern.slice(0, -1));
  if (pattern.length > 1 && pattern.startsWith("*")) return path.endsWith(pattern.slice(1));
  return path === pattern;
}

const templates = new Map<string, RegExp>();

function templateRegex(pattern: string): RegExp {
  let re = templates.get(pattern);
  if (re) return re;
  let src = "^";
  for (const part of pattern.split(/(\{\*\*\}|\{\*\})/)) {
    if (part === "{**}") src += ".*";
    else if (part === "{*}") src += "[^/]+";
    else src += part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  re = new RegExp(src + "$");
  if (templates.size < 1024) templates.set(pattern, re);
  return re;
}
