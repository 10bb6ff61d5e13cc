/**
 * TLS for HBONE: options for Bun's TLS sockets (TLS 1.3 only, ALPN h2, mutual authentication) and
 * the identity checks on the peer certificate (SPIFFE IDs from URI SANs, docs/hbone.md §5).
 */
import { X509Certificate } from "node:crypto";
import { isWorkloadIdentity, type SpiffeId, trySpiffeId, uriSans } from "../model/mod.ts";

/** PEM certificate chain, key and trusted roots of one workload identity. */
export interface TlsMaterial {
  /** Leaf certificate, followed by intermediates if any (PEM). */
  cert: string | Uint8Array;
  /** Private key (PEM). */
  key: string | Uint8Array;
  /** Trusted root(s) (PEM): the trust bundle peers must chain to. */
  ca: string | Uint8Array | (string | Uint8Array)[];
}

/** ALPN "h2" in wire format: Bun reads a string as wire format and rejects arrays (docs/bun.md 4). */
export const ALPN_H2 = Buffer.from("\x02h2");

// OpenSSL SSL_OP_NO_* bits: everything below TLS 1.3 is off (docs/hbone.md §1).
const SSL_OP_NO_SSLv3 = 0x02000000;
const SSL_OP_NO_TLSv1 = 0x04000000;
const SSL_OP_NO_TLSv1_2 = 0x08000000;
const SSL_OP_NO_TLSv1_1 = 0x10000000;
export const TLS13_ONLY = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;

/** Bun TLS options for the HBONE server side of one connection. */
export function serverTlsOptions(m: TlsMaterial): Record<string, unknown> {
  return {
    cert: m.cert,
    key: m.key,
    ca: m.ca,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ALPN_H2,
    secureOptions: TLS13_ONLY,
    isServer: true,
  };
}

/**
 * Bun TLS options for the HBONE client side. The chain is still verified by BoringSSL against `ca`;
 * `rejectUnauthorized` is off only because Bun would also match the dialled IP against DNS/IP SANs,
 * and HBONE certificates carry a SPIFFE URI SAN instead. `checkClientPeer` makes the decision.
 */
export function clientTlsOptions(m: TlsMaterial): Record<string, unknown> {
  return {
    cert: m.cert,
    key: m.key,
    ca: m.ca,
    rejectUnauthorized: false,
    ALPNProtocols: ALPN_H2,
    secureOptions: TLS13_ONLY,
  };
}

/**
 * URI SANs with the spiffe scheme, whatever their shape (a malformed one still counts as one, so it
 * cannot hide a second identity). The scheme is compared case-insensitively for that count only: the
 * SPIFFE parser itself accepts only "spiffe://".
 */
function spiffeUris(san: string | undefined): string[] {
  return uriSans(san).filter((u) => u.slice(0, 7).toLowerCase() === "spiffe:");
}

/**
 * Istio workload identities (`spiffe://<td>/ns/<ns>/sa/<sa>`, valid by the SPIFFE rules) among the URI
 * SANs of a `subjectaltname` string as node/Bun print it ("URI:spiffe://..., DNS:x"). Other SAN types
 * and other URIs are ignored.
 */
export function spiffeIdsFromSan(san: string | undefined): string[] {
  return spiffeUris(san).filter(isWorkloadIdentity);
}

/**
 * The identity of a peer certificate: its one SPIFFE URI SAN, parsed by the SPIFFE rules and of Istio's
 * workload form, or a reason to refuse it. An X.509-SVID carries exactly one (SPIFFE X509-SVID 2; docs/design.md "Identity"): a
 * certificate with several could be read as whichever identity suits the reader (the first by one
 * check, another by the next), so it is refused rather than read.
 */
function peerIdentity(san: string | undefined): { id: SpiffeId } | { error: string } {
  const uris = spiffeUris(san);
  if (uris.length === 0) return { error: "certificate has no SPIFFE ID" };
  if (uris.length > 1) return { error: `certificate has ${uris.length} SPIFFE IDs (${uris.join(", ")}); an X.509-SVID has exactly one` };
  const id = trySpiffeId(uris[0]!);
  if ("error" in id) return { error: `certificate's SPIFFE ID "${uris[0]}" is invalid: ${id.error}` };
  if (id.namespace === undefined) {
    return { error: `certificate's SPIFFE ID "${id.uri}" is not a workload identity (spiffe://<trust domain>/ns/<namespace>/sa/<service account>)` };
  }
  return { id };
}

/** The SPIFFE ID of a peer certificate's `subjectaltname` (see peerIdentity), or a reason to refuse it. */
export function peerSpiffeId(san: string | undefined): { id: string } | { error: string } {
  const peer = peerIdentity(san);
  return "error" in peer ? peer : { id: peer.id.uri };
}

const idCache = new Map<string, string>();
/** The SPIFFE ID of a PEM leaf certificate (first certificate of a chain); cached per certificate. */
export function identityOfCert(cert: string | Uint8Array): string {
  const key = typeof cert === "string" ? cert : Buffer.from(cert).toString("latin1");
  const hit = idCache.get(key);
  if (hit !== undefined) return hit;
  const leaf = new X509Certificate(typeof cert === "string" ? cert : Buffer.from(cert));
  const peer = peerSpiffeId(leaf.subjectAltName);
  const id = "id" in peer ? peer.id : "";
  if (idCache.size > 1024) idCache.clear();
  idCache.set(key, id);
  return id;
}

/** What the TLS handshake callback needs from a Bun socket. */
export interface HandshakeSocket {
  authorized: boolean;
  alpnProtocol: string | false | null;
  getTLSVersion(): string;
  getPeerCertificate(): { subjectaltname?: string } | null;
}

/** Checks common to both sides: TLS 1.3 and h2 were negotiated. Returns a reason to refuse, or "". */
function checkProtocol(s: HandshakeSocket): string {
  const v = s.getTLSVersion();
  if (v !== "TLSv1.3") return `TLS version ${v} is not TLSv1.3`;
  if (s.alpnProtocol !== "h2") return `ALPN ${JSON.stringify(s.alpnProtocol)} is not h2`;
  return "";
}

/**
 * Client side: the server chain verified (the only tolerated complaint is the host-name mismatch,
 * which BoringSSL reports only once the chain itself is good) and one of the server's SPIFFE IDs is
 * expected. Returns [reason to refuse or "", server identity].
 */
export function checkServerPeer(
  s: HandshakeSocket,
  authError: Error | null,
  expected: readonly string[],
): [string, string] {
  if (!s.authorized) {
    const code = (authError as { code?: string } | null)?.code;
    if (code !== "ERR_TLS_CERT_ALTNAME_INVALID") return [`server certificate rejected: ${code ?? authError?.message ?? "unknown"}`, ""];
  }
  const proto = checkProtocol(s);
  if (proto) return [proto, ""];
  const peer = peerSpiffeId(s.getPeerCertificate()?.subjectaltname);
  if ("error" in peer) return [`server identity refused: the server's ${peer.error}`, ""];
  if (!expected.includes(peer.id)) {
    return [`server identity ${peer.id} is not one of ${expected.join(", ") || "(none)"}`, ""];
  }
  return ["", peer.id];
}

/** Server side: the client presented a verified certificate carrying a SPIFFE ID. */
export function checkClientPeer(
  s: HandshakeSocket,
  ok: boolean,
  authError: Error | null,
  trustDomain?: string,
): [string, string] {
  if (!ok || !s.authorized) return [`client certificate rejected: ${authError?.message ?? "not authorized"}`, ""];
  const proto = checkProtocol(s);
  if (proto) return [proto, ""];
  const peer = peerIdentity(s.getPeerCertificate()?.subjectaltname);
  if ("error" in peer) return [`client ${peer.error}`, ""];
  // docs/hbone.md §5: the client identity must be in the local trust domain.
  if (trustDomain !== undefined && peer.id.trustDomain !== trustDomain) {
    return [`client identity ${peer.id.uri} is not in trust domain "${trustDomain}"`, ""];
  }
  return ["", peer.id.uri];
}
