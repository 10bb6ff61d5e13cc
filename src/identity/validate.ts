/**
 * X.509-SVID validation (X.509-SVID standard §5): the leaf and signing-certificate rules, RFC 5280 path
 * validation to a root of the trust bundle, validity at a given time, and optionally the trust domain and
 * the private key. Synchronous (node:crypto verifies signatures), so TLS callbacks can use it.
 *
 * Error strings follow the wording of the SPIFFE reference libraries, so a failure reads the same as in
 * other SPIFFE tooling.
 */
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509 } from "node:crypto";
import { certificatePems, pemBlocks } from "./_pem.ts";
import { trySpiffeId } from "../model/mod.ts";
import { certificateFields, type CertificateFields, KeyUsage } from "./_der.ts";

/** Options of validateSvid. */
export interface ValidateSvidOptions {
  /** The time to validate at. Default: now. */
  now?: Date;
  /** Refuse an SVID whose SPIFFE ID is in another trust domain. */
  expectedTrustDomain?: string;
  /** Also require this PEM private key to be the leaf's key. */
  keyPem?: string;
}

/** The outcome of validateSvid. */
export type SvidValidation =
  | { ok: true; spiffeId: string; trustDomain: string; notBefore: Date; notAfter: Date; serial: string }
  | { ok: false; errors: string[] };

/** Certificates as one PEM text (leaf first; other PEM blocks such as keys are ignored), PEM strings, or DER. */
export type CertificatesInput = string | readonly (string | Uint8Array)[];

interface Parsed {
  node: NodeX509;
  /** What node:crypto does not expose, read from the DER (./_der.ts). */
  fields: CertificateFields;
  der: Uint8Array;
}

/**
 * Validates an X.509-SVID chain (leaf first, then intermediates) against a trust bundle.
 * `trustBundle` null skips path validation and time checks and keeps only the structural SVID rules: for
 * inspecting certificates offline, never for authentication.
 * @example
 * const r = validateSvid(chainPem, ca.trustBundlePem, { expectedTrustDomain: "cluster.local" });
 * if (r.ok) console.log(r.spiffeId); else console.error(r.errors.join("; "));
 */
export function validateSvid(chain: CertificatesInput, trustBundle: CertificatesInput | null, opts: ValidateSvidOptions = {}): SvidValidation {
  const errors: string[] = [];
  const parsed = parseCertificates(chain, errors);
  if (!parsed) return { ok: false, errors };
  const leaf = parsed[0]!;
  let spiffeId: string | undefined;
  let trustDomain = "";

  // Leaf rules (X.509-SVID §2, §4, §5.2).
  if (leaf.fields.sanError) errors.push(`cannot parse the subject alternative names: ${leaf.fields.sanError}`);
  const uris = leaf.fields.uris;
  if (uris.length === 0) errors.push("certificate contains no URI SAN");
  else if (uris.length > 1) errors.push(`certificate contains more than one URI SAN (${uris.length})`);
  else {
    const id = trySpiffeId(uris[0]!);
    if ("error" in id) errors.push(`certificate contains an invalid SPIFFE ID "${uris[0]}": ${id.error}`);
    else if (id.path === "") errors.push("leaf certificate SPIFFE ID must have a non-root path");
    else {
      spiffeId = id.uri;
      trustDomain = id.trustDomain;
      if (opts.expectedTrustDomain !== undefined && id.trustDomain !== opts.expectedTrustDomain) {
        errors.push(`SPIFFE ID "${id.uri}" is not in the expected trust domain "${opts.expectedTrustDomain}"`);
      }
    }
  }
  if (leaf.fields.basicConstraints?.ca) errors.push("leaf certificate must not have CA flag set to true");
  const ku = leaf.fields.keyUsage ?? 0;
  if (!(ku & KeyUsage.digitalSignature)) errors.push("leaf certificate must have 'digitalSignature' set as key usage");
  if (ku & KeyUsage.keyCertSign) errors.push("leaf certificate must not have 'keyCertSign' set as key usage");
  if (ku & KeyUsage.cRLSign) errors.push("leaf certificate must not have 'cRLSign' set as key usage");

  // Signing-certificate rules (§4.1, §4.3).
  for (const c of parsed.slice(1)) {
    if (!c.fields.basicConstraints?.ca) errors.push("signing certificate must have CA flag set to true");
    const cku = c.fields.keyUsage;
    if (cku === undefined || !(cku & KeyUsage.keyCertSign)) errors.push("signing certificate must have 'keyCertSign' set as key usage");
  }

  if (opts.keyPem !== undefined) errors.push(...keyErrors(leaf.node, opts.keyPem));

  if (trustBundle !== null) {
    const anchors = typeof trustBundle === "string" ? certificatePems(trustBundle) : [...trustBundle];
    errors.push(...verifyParsedChain(parsed, anchors, opts.now ?? new Date()));
  }
  if (errors.length || !spiffeId) return { ok: false, errors: errors.length ? errors : ["certificate has no SPIFFE ID"] };
  return { ok: true, spiffeId, trustDomain, notBefore: leaf.fields.notBefore, notAfter: leaf.fields.notAfter, serial: leaf.fields.serial };
}

/**
 * RFC 5280 path validation only (no SVID rules): each certificate is signed by the next, the last by a
 * trust anchor (or is one), every signing certificate is a CA with keyCertSign and within its
 * pathLenConstraint, and everything is valid at `now`. Returns the errors (empty when valid).
 */
export function verifyChain(chain: CertificatesInput, trustBundle: CertificatesInput, now: Date = new Date()): string[] {
  const errors: string[] = [];
  const parsed = parseCertificates(chain, errors);
  if (!parsed) return errors;
  const anchors = typeof trustBundle === "string" ? certificatePems(trustBundle) : [...trustBundle];
  return verifyParsedChain(parsed, anchors, now);
}

/** True when `keyPem` is a private key whose public half is the certificate's. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    return keyErrors(new NodeX509(certPem), keyPem).length === 0;
  } catch {
    return false;
  }
}

function keyErrors(leaf: NodeX509, keyPem: string): string[] {
  const blocks = pemBlocks(keyPem).filter((b) => b.label.endsWith("PRIVATE KEY"));
  if (!pemBlocks(keyPem).length) return ["cannot parse PEM encoded private key: no PEM blocks found"];
  if (!blocks.length) return ["no private key found"];
  let pub: Buffer;
  try {
    pub = createPublicKey(createPrivateKey(blocks[0]!.pem)).export({ format: "der", type: "spki" });
  } catch (e) {
    return [`cannot parse PEM encoded private key: ${(e as Error).message}`];
  }
  const leafPub = leaf.publicKey.export({ format: "der", type: "spki" });
  return Buffer.compare(pub, leafPub) === 0 ? [] : ["leaf certificate does not match private key"];
}

function parseCertificates(input: CertificatesInput, errors: string[]): Parsed[] | undefined {
  const ders: Uint8Array[] = [];
  if (typeof input === "string") {
    const blocks = pemBlocks(input);
    if (blocks.length === 0) {
      errors.push("cannot parse PEM encoded certificate: no PEM blocks found");
      return undefined;
    }
    for (const b of blocks) if (b.label === "CERTIFICATE") ders.push(b.der);
  } else {
    for (const item of input) {
      if (typeof item === "string") for (const b of pemBlocks(item)) if (b.label === "CERTIFICATE") ders.push(b.der);
      if (item instanceof Uint8Array) ders.push(item);
    }
  }
  if (ders.length === 0) {
    errors.push("no certificates found");
    return undefined;
  }
  const out: Parsed[] = [];
  for (const der of ders) {
    try {
      out.push({ node: new NodeX509(der), fields: certificateFields(der), der });
    } catch (e) {
      errors.push(`cannot parse PEM encoded certificate: malformed certificate (${(e as Error).message})`);
      return undefined;
    }
  }
  return out;
}

function label(c: Parsed, i: number): string {
  return `certificate ${i} (serial ${c.node.serialNumber}${c.node.subject ? `, subject "${c.node.subject.replace(/\n/g, ", ")}"` : ""})`;
}

function timeErrors(c: Parsed, what: string, now: Date): string[] {
  if (now < c.fields.notBefore) return [`${what} is not valid before ${c.fields.notBefore.toISOString()}`];
  if (now > c.fields.notAfter) return [`${what} expired at ${c.fields.notAfter.toISOString()}`];
  return [];
}

function signed(child: Parsed, issuer: Parsed): boolean {
  try {
    return child.node.checkIssued(issuer.node) && child.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

function sameDer(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** The CA checks RFC 5280 §6.1.4 makes of each issuer: cA, keyCertSign, pathLenConstraint. */
function issuerErrors(issuer: Parsed, what: string, intermediatesBelow: number): string[] {
  const out: string[] = [];
  const bc = issuer.fields.basicConstraints;
  if (!bc?.ca) out.push(`${what} signs certificates but is not a CA`);
  const ku = issuer.fields.keyUsage;
  if (ku !== undefined && !(ku & KeyUsage.keyCertSign)) out.push(`${what} signs certificates but lacks keyCertSign`);
  if (bc?.pathLength !== undefined && intermediatesBelow > bc.pathLength) {
    out.push(`${what} allows ${bc.pathLength} intermediate(s) below it (pathLenConstraint), the chain has ${intermediatesBelow}`);
  }
  return out;
}

function verifyParsedChain(chain: Parsed[], anchorsIn: readonly (string | Uint8Array)[], now: Date): string[] {
  const errors: string[] = [];
  const anchors: Parsed[] = [];
  for (const a of anchorsIn) {
    const list = typeof a === "string" ? pemBlocks(a).filter((b) => b.label === "CERTIFICATE").map((b) => b.der) : [a];
    for (const der of list) {
      try {
        anchors.push({ node: new NodeX509(der), fields: certificateFields(der), der });
      } catch {
        errors.push("the trust bundle holds a certificate that cannot be parsed");
      }
    }
  }
  if (anchors.length === 0) return [...errors, "the trust bundle is empty"];
  // The path ends at the first certificate that is itself trusted (a root sent along), else at the last one,
  // which a trusted root must have signed.
  const trustedIndex = chain.findIndex((c) => anchors.some((a) => sameDer(a.der, c.der)));
  const path = trustedIndex >= 0 ? chain.slice(0, trustedIndex + 1) : chain;
  for (let i = 0; i < path.length; i++) {
    errors.push(...timeErrors(path[i]!, label(path[i]!, i), now));
    if (i + 1 < path.length) {
      if (!signed(path[i]!, path[i + 1]!)) errors.push(`${label(path[i]!, i)} is not signed by certificate ${i + 1}`);
      else errors.push(...issuerErrors(path[i + 1]!, label(path[i + 1]!, i + 1), i));
    }
  }
  if (trustedIndex >= 0) return errors;
  const last = chain.at(-1)!;
  const lastIndex = chain.length - 1;
  const issuers = anchors.filter((a) => signed(last, a));
  if (issuers.length === 0) {
    errors.push(`${label(last, lastIndex)} is not signed by any root of the trust bundle (unknown authority)`);
    return errors;
  }
  // Several roots can share a name during a rotation: one that passes all checks is enough.
  let best: string[] | undefined;
  for (const a of issuers) {
    const e = [...timeErrors(a, "the trusted root", now), ...issuerErrors(a, "the trusted root", lastIndex)];
    if (!best || e.length < best.length) best = e;
    if (e.length === 0) break;
  }
  return [...errors, ...best!];
}
