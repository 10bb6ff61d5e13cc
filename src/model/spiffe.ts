/**
 * SPIFFE IDs: parsing by every rule of the SPIFFE-ID standard (§2), the Istio form
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`, and the principal form that
 * AuthorizationPolicy `principals` match (`<trustDomain>/ns/<namespace>/sa/<serviceAccount>`).
 * Pure and runtime-neutral: exported to Deno through the top-level mod.ts.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";

/** A parsed SPIFFE ID. */
export interface SpiffeId {
  /** The whole ID, as given (it is already canonical when it parses). */
  uri: string;
  trustDomain: string;
  /** "" for a trust-domain ID (`spiffe://td`), else starts with "/". */
  path: string;
  /** Set when the path has Istio's form /ns/<namespace>/sa/<serviceAccount>. */
  namespace?: string;
  /** Set when the path has Istio's form /ns/<namespace>/sa/<serviceAccount>. */
  serviceAccount?: string;
}

/** SPIFFE implementations must support IDs up to this many bytes and should not make longer ones (§2.3). */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** RFC 3986 limits a host to 255 characters, so a trust domain name too (§2.3). */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = "spiffe://";

function isTrustDomainChar(c: number): boolean {
  // [a-z0-9.-_]: lowercase only; ':' (port), '@' (userinfo), '%' (percent-encoding) are all outside it.
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}

function isPathChar(c: number): boolean {
  return isTrustDomainChar(c) || (c >= 0x41 && c <= 0x5a);
}

/** Why `td` is not a valid trust domain name, or undefined when it is. */
export function trustDomainError(td: string): string | undefined {
  if (td === "") return "trust domain is missing";
  if (td.length > MAX_TRUST_DOMAIN_BYTES) return `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`;
  for (let i = 0; i < td.length; i++) {
    if (!isTrustDomainChar(td.charCodeAt(i))) {
      const ch = td[i];
      if (ch === ":") return `trust domain must not have a port: "${td}"`;
      if (ch === "@") return `trust domain must not have userinfo: "${td}"`;
      if (ch === "?") return `SPIFFE ID must not have a query: "${td}"`;
      if (ch === "#") return `SPIFFE ID must not have a fragment: "${td}"`;
      return "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores";
    }
  }
  return undefined;
}

/** Why `path` ("" or "/a/b") is not a valid SPIFFE ID path, or undefined when it is. */
export function pathError(path: string): string | undefined {
  if (path === "") return undefined;
  if (path[0] !== "/") return "path must start with a slash";
  const segments = path.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === "") {
      return i === segments.length - 1 ? "path cannot have a trailing slash" : "path cannot contain empty segments";
    }
    if (seg === "." || seg === "..") return "path cannot contain dot segments";
    for (let j = 0; j < seg.length; j++) {
      if (!isPathChar(seg.charCodeAt(j))) {
        if (seg[j] === "?") return "SPIFFE ID must not have a query";
        if (seg[j] === "#") return "SPIFFE ID must not have a fragment";
        return "path segment characters are limited to letters, numbers, dots, dashes, and underscores";
      }
    }
  }
  return undefined;
}

/** Parses a SPIFFE ID, or returns why it is not one (no exception). */
export function trySpiffeId(uri: string): SpiffeId | { error: string } {
  if (uri === "") return { error: "SPIFFE ID cannot be empty" };
  // Only ASCII can pass the character rules below, so string length equals byte length here.
  if (uri.length > MAX_SPIFFE_ID_BYTES) return { error: `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes` };
  // The scheme must be exactly "spiffe" in lower case (the SPIFFE libraries refuse "Spiffe://").
  if (!uri.startsWith(SCHEME)) return { error: "scheme is missing or invalid: a SPIFFE ID starts with spiffe://" };
  const rest = uri.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  const tdErr = trustDomainError(trustDomain);
  if (tdErr) return { error: tdErr };
  const pErr = pathError(path);
  if (pErr) return { error: pErr };
  const id: SpiffeId = { uri, trustDomain, path };
  const parts = path.split("/");
  if (parts.length === 5 && parts[1] === "ns" && parts[3] === "sa") {
    id.namespace = parts[2];
    id.serviceAccount = parts[4];
  }
  return id;
}

/**
 * Parses a SPIFFE ID by every rule of the SPIFFE-ID standard.
 * @throws MeshError (code MESH_IDENTITY_INVALID) naming the broken rule.
 * @example
 * parseSpiffeId("spiffe://cluster.local/ns/shop/sa/api")
 * // { uri, trustDomain: "cluster.local", path: "/ns/shop/sa/api", namespace: "shop", serviceAccount: "api" }
 */
export function parseSpiffeId(uri: string): SpiffeId {
  const r = trySpiffeId(uri);
  if ("error" in r) throw new MeshError(ErrorCode.IdentityInvalid, `Invalid SPIFFE ID "${clip(uri)}": ${r.error}`);
  return r;
}

/** True when `uri` is a valid SPIFFE ID. */
export function isSpiffeId(uri: string): boolean {
  return !("error" in trySpiffeId(uri));
}

/**
 * The Istio workload identity of a service account.
 * @throws MeshError (MESH_IDENTITY_INVALID) when a part breaks the SPIFFE rules.
 * @example formatIdentity("cluster.local", "shop", "api") // "spiffe://cluster.local/ns/shop/sa/api"
 */
export function formatIdentity(trustDomain: string, namespace: string, serviceAccount: string): string {
  for (const [what, part] of [["namespace", namespace], ["service account", serviceAccount]] as const) {
    if (part.includes("/")) {
      throw new MeshError(ErrorCode.IdentityInvalid, `Invalid ${what} "${part}" in a SPIFFE ID: it cannot contain '/'`);
    }
  }
  return parseSpiffeId(`${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`).uri;
}

/**
 * The principal of a SPIFFE ID as AuthorizationPolicy `source.principals` spell it: the ID without the
 * "spiffe://" scheme.
 * @example principalOf("spiffe://cluster.local/ns/shop/sa/api") // "cluster.local/ns/shop/sa/api"
 */
export function principalOf(spiffeUri: string): string {
  const id = parseSpiffeId(spiffeUri);
  return id.trustDomain + id.path;
}

/**
 * True when `uri` is an Istio workload identity: a valid SPIFFE ID of the form
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` (what mesh certificates carry).
 */
export function isWorkloadIdentity(uri: string): boolean {
  const id = trySpiffeId(uri);
  return !("error" in id) && id.namespace !== undefined;
}

/**
 * The entries of a Node/Bun `subjectaltname` string ("DNS:a, URI:spiffe://td/ns/x/sa/y"). A value with a
 * comma or quote in it is printed JSON-quoted (`URI:"a, b"`) and read as one value, never split: split
 * naively, a DNS name `"x, URI:spiffe://..."` would pass for a URI SAN.
 */
export function sanEntries(subjectaltname: string | undefined): { type: string; value: string }[] {
  const san = subjectaltname ?? "";
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(":", i);
    if (colon < 0) break;
    const type = san.slice(i, colon);
    let value: string;
    let end: number;
    if (san[colon + 1] === '"') {
      end = colon + 2;
      while (end < san.length && san[end] !== '"') end += san[end] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, end + 1)) as string;
      } catch {
        value = san.slice(colon + 2, end);
      }
      end = san.indexOf(", ", end);
    } else {
      end = san.indexOf(", ", colon);
      value = san.slice(colon + 1, end < 0 ? san.length : end);
    }
    out.push({ type, value });
    if (end < 0) break;
    i = end + 2;
  }
  return out;
}

/** The URI SANs in a Node/Bun `subjectaltname` string (see sanEntries). */
export function uriSans(subjectaltname: string | undefined): string[] {
  return sanEntries(subjectaltname).filter((e) => e.type === "URI").map((e) => e.value);
}

/**
 * The peer's SPIFFE ID from `getPeerCertificate().subjectaltname`, only when the certificate carries exactly
 * one URI SAN and it is a valid SPIFFE ID with a path (X.509-SVID §2, §5.2); otherwise undefined.
 */
export function peerSpiffeId(subjectaltname: string | undefined): string | undefined {
  const uris = uriSans(subjectaltname);
  if (uris.length !== 1) return undefined;
  const id = trySpiffeId(uris[0]!);
  return "error" in id || id.path === "" ? undefined : id.uri;
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}
