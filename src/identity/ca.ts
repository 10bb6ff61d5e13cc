/**
 * The mesh's certificate authority: signs X.509-SVIDs for workloads, client certificates for
 * control-plane callers and the serving certificate of the control plane's 15012 listener.
 *
 * Keys and certificates in DATA_DIR:
 *   cacerts/{ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem}   Istio's plug-in CA layout. When all four
 *        are there, the CA signs with ca-cert/ca-key and puts the intermediates of cert-chain.pem into every
 *        certificate it issues; the trust bundle is root-cert.pem (which may hold several roots).
 *   ca/root-cert.pem, ca/root-key.pem      otherwise: the mesh's own self-signed root (EC P-256, 10 years),
 *        created on first start, key mode 0600.
 *   ca/pending-cert.pem, ca/pending-key.pem   a root added for rotation but not signing yet (addRoot).
 *   ca/trust-bundle.pem                    every trusted root (the active one, a pending one, retiring ones).
 *   root-cert.pem                          written on every start and change: the trust bundle, the file every
 *        `--ca-cert` points at.
 *
 * Root rotation without failed handshakes (self-signed mode): addRoot() (new root trusted everywhere, not
 * signing), then, once every proxy has the new bundle, activateRoot() (new certificates chain to the new
 * root), then, once every old certificate has been renewed, removeRoot(old). rotateRoot() does the first
 * two steps at once, for when proxies learn bundles before they renew.
 */
import { X509Certificate as NodeX509 } from "node:crypto";
import { mkdirSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { type Caller, callerIdentity } from "./caller.ts";
import { EC_P256, generateP256, importPrivateKeyPem, privateKeyPem, type SigningKey } from "./_keys.ts";
import { readIfExists, writeFileAtomic } from "./_fs.ts";
import { certificatePems, joinPem } from "./_pem.ts";
import { parseSpiffeId, trustDomainError } from "../model/mod.ts";
import { keyMatchesCertificate, verifyChain } from "./validate.ts";
import type * as X from "@peculiar/x509";
import { KeyUsage } from "./_der.ts";

/**
 * @peculiar/x509, loaded by CertificateAuthority.open: only the CA (the control role) builds certificates,
 * and the library costs about 15 MB of RSS (a compiled binary importing it against an empty one), which
 * the proxies must not pay (they make CSRs and read certificates with ./_der.ts).
 */
let x509: typeof X;

/** Options of CertificateAuthority.open. */
export interface CertificateAuthorityOptions {
  /** Trust domain of the identities it signs. Default "cluster.local". */
  trustDomain?: string;
  /** Default lifetime of workload certificates. Default 86400 (24h). */
  defaultTtlSeconds?: number;
  /** Lifetime of a self-signed root it creates. Default 10 years. */
  rootTtlSeconds?: number;
  /** Current time in ms since the epoch (tests). Default Date.now. */
  now?: () => number;
}

/** What signCsr returns. */
export interface SignedCertificate {
  /** The leaf certificate (PEM). */
  certPem: string;
  /** The leaf followed by the intermediates up to (not including) the root: what a TLS peer presents. */
  chainPem: string;
  /** Serial number, upper-case hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** A certificate with the private key the CA generated for it (client and serving certificates). */
export interface IssuedKeyPair extends SignedCertificate {
  /** PKCS#8 PEM. */
  keyPem: string;
}

/** A control-plane client certificate, naming the caller in its single URI SAN (see ./caller.ts). */
export interface ClientCertificate extends IssuedKeyPair {
  /** spiffe://<td>/mesh/node/<node> | /mesh/gateway/<ns>/<name> | /mesh/admin */
  identity: string;
}

/** Options of signCsr. */
export interface SignCsrOptions {
  /** The SPIFFE ID to certify; the CSR must ask for exactly this one URI SAN. */
  identity: string;
  /** Lifetime; default: the CA's defaultTtlSeconds. Never beyond the signing certificate's own expiry. */
  ttlSeconds?: number;
}

interface Signer {
  cert: X.X509Certificate;
  certPem: string;
  key: SigningKey;
  /** Intermediates that follow a leaf in its chain (empty when the signer is a root). */
  intermediates: string[];
}

const DAY = 86400;
const LEAF_EXTENSIONS_KU = KeyUsage.digitalSignature;

/** The mesh CA. Create with `await CertificateAuthority.open(dataDir)`. */
export class CertificateAuthority {
  /** Trust domain of the identities this CA signs. */
  readonly trustDomain: string;
  /** Where its keys live (also where bootstrap-token keys live, see ./token.ts). */
  readonly dataDir: string;
  /** True when signing with a plug-in intermediate from DATA_DIR/cacerts. */
  readonly pluggedIn: boolean;
  readonly defaultTtlSeconds: number;
  #signer: Signer;
  #pending: { cert: X.X509Certificate; certPem: string; key: SigningKey } | undefined;
  #bundle: string[];
  #now: () => number;
  #rootTtl: number;
  #listeners = new Set<(bundlePem: string) => void>();

  private constructor(init: {
    trustDomain: string;
    dataDir: string;
    pluggedIn: boolean;
    signer: Signer;
    bundle: string[];
    pending?: { cert: X.X509Certificate; certPem: string; key: SigningKey };
    opts: CertificateAuthorityOptions;
  }) {
    this.trustDomain = init.trustDomain;
    this.dataDir = init.dataDir;
    this.pluggedIn = init.pluggedIn;
    this.#signer = init.signer;
    this.#bundle = init.bundle;
    this.#pending = init.pending;
    this.#now = init.opts.now ?? Date.now;
    this.#rootTtl = init.opts.rootTtlSeconds ?? 10 * 365 * DAY;
    this.defaultTtlSeconds = init.opts.defaultTtlSeconds ?? DAY;
  }

  /**
   * Opens the CA in `dataDir`: the plug-in intermediate in dataDir/cacerts if present, else the self-signed
   * root in dataDir/ca (created on first start). Writes the trust bundle to dataDir/root-cert.pem.
   * @throws MeshError (MESH_CERT_INVALID) when key material is incomplete, unreadable or inconsistent.
   * @example
   * const ca = await CertificateAuthority.open("/var/lib/mesh", { trustDomain: "cluster.local" });
   * const { chainPem } = await ca.signCsr(csrPem, { identity: "spiffe://cluster.local/ns/shop/sa/api" });
   */
  static async open(dataDir: string, opts: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    x509 ??= (await import("./_x509.ts")).x509;
    const trustDomain = opts.trustDomain ?? "cluster.local";
    const tdErr = trustDomainError(trustDomain);
    if (tdErr) throw new MeshError(ErrorCode.ConfigInvalid, `Invalid trust domain "${trustDomain}": ${tdErr}`);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const now = opts.now ?? Date.now;
    const plug = await loadPluggedIn(dataDir, now());
    let ca: CertificateAuthority;
    if (plug) {
      ca = new CertificateAuthority({ trustDomain, dataDir, pluggedIn: true, signer: plug.signer, bundle: plug.bundle, opts });
    } else {
      const dir = join(dataDir, "ca");
      let root = await loadKeyPair(join(dir, "root-cert.pem"), join(dir, "root-key.pem"), "self-signed root");
      if (!root) {
        root = await createRoot(trustDomain, now(), opts.rootTtlSeconds ?? 10 * 365 * DAY);
        writeFileAtomic(join(dir, "root-key.pem"), root.keyPem, 0o600);
        writeFileAtomic(join(dir, "root-cert.pem"), root.certPem, 0o644);
      }
      const pending = await loadKeyPair(join(dir, "pending-cert.pem"), join(dir, "pending-key.pem"), "pending root");
      const saved = readIfExists(join(dir, "trust-bundle.pem"));
      const bundle = saved ? certificatePems(saved) : [];
      for (const pem of [root.certPem, pending?.certPem]) {
        if (pem && !bundle.some((b) => samePem(b, pem))) bundle.unshift(pem);
      }
      ca = new CertificateAuthority({
        trustDomain,
        dataDir,
        pluggedIn: false,
        signer: { cert: root.cert, certPem: root.certPem, key: root.key, intermediates: [] },
        bundle,
        pending: pending ? { cert: pending.cert, certPem: pending.certPem, key: pending.key } : undefined,
        opts,
      });
    }
    ca.#persistBundle();
    return ca;
  }

  /** The root that the active signing chain ends in (PEM). */
  get rootPem(): string {
    if (this.pluggedIn) {
      // The plug-in bundle may hold several roots: pick the one that issued the top of our chain.
      const top = this.#signer.intermediates.at(-1) ?? this.#signer.certPem;
      const topX = new NodeX509(top);
      return this.#bundle.find((r) => topX.checkIssued(new NodeX509(r)) && topX.verify(new NodeX509(r).publicKey)) ?? this.#bundle[0]!;
    }
    return this.#signer.certPem;
  }

  /** Every trusted root, concatenated PEM (active first). This is what proxies verify peers against. */
  get trustBundlePem(): string {
    return joinPem(this.#bundle);
  }

  /** The trust bundle as a list of PEM certificates. */
  get trustBundle(): readonly string[] {
    return [...this.#bundle];
  }

  /** Calls `listener` with the new trust bundle whenever it changes. Returns an unsubscribe function. */
  onTrustBundleChange(listener: (bundlePem: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Signs a workload's PKCS#10 CSR as an X.509-SVID for `identity`. The CSR must be signed by its own key
   * (EC P-256) and must ask for exactly one SAN: the URI `identity`. Whether the caller may have that
   * identity is decided before, by mayIssue (./authorize.ts).
   * @throws MeshError (MESH_CERT_INVALID for a bad CSR, MESH_IDENTITY_INVALID for an identity that is not
   * a SPIFFE ID of this trust domain or does not match the CSR).
   */
  async signCsr(csrPem: string, opts: SignCsrOptions): Promise<SignedCertificate> {
    const id = parseSpiffeId(opts.identity);
    if (id.trustDomain !== this.trustDomain) {
      throw new MeshError(ErrorCode.IdentityInvalid, `Refusing to sign "${opts.identity}": this CA serves trust domain "${this.trustDomain}"`);
    }
    if (id.path === "") throw new MeshError(ErrorCode.IdentityInvalid, `Refusing to sign "${opts.identity}": a workload identity needs a path`);
    let csr: X.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (e) {
      throw new MeshError(ErrorCode.CertificateInvalid, `Cannot parse the CSR: ${(e as Error).message}`);
    }
    const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
    if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
      throw new MeshError(ErrorCode.CertificateInvalid, `Refusing the CSR: its key must be EC P-256, not ${alg.name} ${alg.namedCurve ?? ""}`.trim());
    }
    if (!(await csr.verify())) throw new MeshError(ErrorCode.CertificateInvalid, "Refusing the CSR: its signature does not verify");
    const sans = csrSans(csr);
    const uris = sans.filter((n) => n.type === "url").map((n) => n.value);
    if (uris.length !== 1 || sans.length !== 1 || uris[0] !== opts.identity) {
      throw new MeshError(
        ErrorCode.IdentityInvalid,
        `Refusing the CSR: it asks for ${sans.length ? sans.map((n) => `${n.type}:${n.value}`).join(", ") : "no SAN"}, but the request is for exactly "${opts.identity}"`,
      );
    }
    const ttl = opts.ttlSeconds ?? this.defaultTtlSeconds;
    return await this.#issue({
      publicKey: csr.publicKey,
      sans: [{ type: "url", value: opts.identity }],
      ttlSeconds: ttl,
      eku: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    });
  }

  /**
   * A short-lived client certificate (with a fresh EC P-256 key) for a control-plane caller: its single URI
   * SAN is callerIdentity(trustDomain, caller), e.g. spiffe://cluster.local/mesh/node/worker-a; EKU clientAuth.
   * The control plane reads it back with callerFromIdentity. Default lifetime 1 hour.
   */
  async issueClientCertificate(caller: Caller, opts: { ttlSeconds?: number } = {}): Promise<ClientCertificate> {
    const identity = callerIdentity(this.trustDomain, caller);
    const keys = await generateP256();
    const signed = await this.#issue({
      publicKey: keys.publicKey,
      sans: [{ type: "url", value: identity }],
      ttlSeconds: opts.ttlSeconds ?? 3600,
      eku: [x509.ExtendedKeyUsage.clientAuth],
    });
    return { ...signed, identity, keyPem: await privateKeyPem(keys.privateKey) };
  }

  /**
   * The serving certificate of the control plane's listener (15012): DNS and IP SANs from `names`
   * (e.g. the --listen host, "localhost", "127.0.0.1"), plus the URI SAN spiffe://<td>/mesh/control;
   * EKU serverAuth; fresh EC P-256 key. Default lifetime 30 days: the control role issues a new one at half
   * of that (it is not renewed by itself).
   */
  async serverCertificate(names: readonly string[], opts: { ttlSeconds?: number } = {}): Promise<IssuedKeyPair> {
    const sans: X.JsonGeneralName[] = [{ type: "url", value: `spiffe://${this.trustDomain}/mesh/control` }];
    for (const n of new Set(names)) {
      const host = n.replace(/^\[(.*)\]$/, "$1");
      if (host === "") continue;
      sans.push(isIP(host) ? { type: "ip", value: host } : { type: "dns", value: host.toLowerCase() });
    }
    const keys = await generateP256();
    const signed = await this.#issue({
      publicKey: keys.publicKey,
      sans,
      ttlSeconds: opts.ttlSeconds ?? 30 * DAY,
      eku: [x509.ExtendedKeyUsage.serverAuth],
    });
    return { ...signed, keyPem: await privateKeyPem(keys.privateKey) };
  }

  /**
   * Root rotation, step 1: creates a new self-signed root and adds it to the trust bundle without signing
   * with it yet. Returns the new root (PEM).
   * @throws MeshError (MESH_CERT_INVALID) with a plug-in CA (rotate by replacing DATA_DIR/cacerts).
   */
  async addRoot(): Promise<string> {
    this.#requireSelfSigned("add a root");
    if (this.#pending) return this.#pending.certPem;
    const root = await createRoot(this.trustDomain, this.#now(), this.#rootTtl);
    const dir = join(this.dataDir, "ca");
    writeFileAtomic(join(dir, "pending-key.pem"), root.keyPem, 0o600);
    writeFileAtomic(join(dir, "pending-cert.pem"), root.certPem, 0o644);
    this.#pending = { cert: root.cert, certPem: root.certPem, key: root.key };
    this.#bundle.push(root.certPem);
    this.#persistBundle();
    return root.certPem;
  }

  /**
   * Root rotation, step 2: the root added by addRoot() becomes the signer. The previous root stays in the
   * trust bundle until removeRoot(). Returns the now active root (PEM).
   */
  async activateRoot(): Promise<string> {
    this.#requireSelfSigned("activate a root");
    const p = this.#pending;
    if (!p) throw new MeshError(ErrorCode.CertificateInvalid, "No pending root to activate: call addRoot() first");
    const dir = join(this.dataDir, "ca");
    // Order matters for crash safety: the new root is written as active before the pending copy goes away.
    writeFileAtomic(join(dir, "root-key.pem"), await privateKeyPem(p.key.key), 0o600);
    writeFileAtomic(join(dir, "root-cert.pem"), p.certPem, 0o644);
    const { rmSync } = await import("node:fs");
    rmSync(join(dir, "pending-key.pem"), { force: true });
    rmSync(join(dir, "pending-cert.pem"), { force: true });
    this.#signer = { cert: p.cert, certPem: p.certPem, key: p.key, intermediates: [] };
    this.#pending = undefined;
    // Active root first in the bundle.
    this.#bundle = [p.certPem, ...this.#bundle.filter((b) => !samePem(b, p.certPem))];
    this.#persistBundle();
    return p.certPem;
  }

  /** addRoot() then activateRoot(). Returns the new active root (PEM). */
  async rotateRoot(): Promise<string> {
    await this.addRoot();
    return await this.activateRoot();
  }

  /**
   * Root rotation, step 3: removes a root (PEM, or its SHA-256 fingerprint as node:crypto prints it) from the
   * trust bundle. The active and the pending root cannot be removed.
   * @returns whether a root was removed.
   */
  removeRoot(rootPemOrFingerprint: string): boolean {
    const fp = rootPemOrFingerprint.includes("BEGIN") ? fingerprint(rootPemOrFingerprint) : rootPemOrFingerprint.toUpperCase();
    if (fp === fingerprint(this.rootPem)) throw new MeshError(ErrorCode.CertificateInvalid, "Cannot remove the active root from the trust bundle");
    if (this.#pending && fp === fingerprint(this.#pending.certPem)) {
      throw new MeshError(ErrorCode.CertificateInvalid, "Cannot remove the pending root: activate it or start over");
    }
    const before = this.#bundle.length;
    this.#bundle = this.#bundle.filter((b) => fingerprint(b) !== fp);
    if (this.#bundle.length === before) return false;
    this.#persistBundle();
    return true;
  }

  /** Adds an extra trusted root (e.g. the root of a plug-in CA you are migrating to). */
  addTrustedRoot(rootPem: string): void {
    const pems = certificatePems(rootPem);
    if (pems.length === 0) throw new MeshError(ErrorCode.CertificateInvalid, "addTrustedRoot: no PEM certificate given");
    let changed = false;
    for (const p of pems) {
      if (!new NodeX509(p).ca) throw new MeshError(ErrorCode.CertificateInvalid, "addTrustedRoot: the certificate is not a CA");
      if (!this.#bundle.some((b) => samePem(b, p))) {
        this.#bundle.push(p);
        changed = true;
      }
    }
    if (changed) this.#persistBundle();
  }

  #requireSelfSigned(what: string): void {
    if (this.pluggedIn) {
      throw new MeshError(ErrorCode.CertificateInvalid, `Cannot ${what} with a plug-in CA: replace the files in ${join(this.dataDir, "cacerts")} and restart`);
    }
  }

  #persistBundle(): void {
    const pem = this.trustBundlePem;
    if (!this.pluggedIn) writeFileAtomic(join(this.dataDir, "ca", "trust-bundle.pem"), pem, 0o644);
    writeFileAtomic(join(this.dataDir, "root-cert.pem"), pem, 0o644);
    for (const l of this.#listeners) {
      try {
        l(pem);
      } catch {
        // A listener's failure must not stop the others from learning the new bundle.
      }
    }
  }

  async #issue(p: {
    publicKey: X.PublicKeyType;
    sans: X.JsonGeneralName[];
    ttlSeconds: number;
    eku: string[];
  }): Promise<SignedCertificate> {
    if (!(p.ttlSeconds > 0) || !Number.isFinite(p.ttlSeconds)) {
      throw new MeshError(ErrorCode.CertificateInvalid, `Certificate lifetime must be a positive number of seconds, not ${p.ttlSeconds}`);
    }
    const s = this.#signer;
    const nowMs = this.#now();
    // Backdate a little for clock skew between nodes, but never by a large part of a short lifetime.
    const notBefore = new Date(nowMs - Math.min(60_000, p.ttlSeconds * 100));
    let notAfter = new Date(nowMs + p.ttlSeconds * 1000);
    if (notAfter > s.cert.notAfter) notAfter = s.cert.notAfter;
    if (notAfter.getTime() <= nowMs) {
      throw new MeshError(ErrorCode.CertificateInvalid, "The signing certificate has expired: renew the CA (DATA_DIR/cacerts or the root)");
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // Empty subject, as Istio's SVIDs: the identity is the URI SAN, which is then critical (RFC 5280 §4.1.2.6).
      subject: "",
      issuer: s.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: p.publicKey,
      signingKey: s.key.key,
      signingAlgorithm: s.key.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(LEAF_EXTENSIONS_KU, true),
        new x509.ExtendedKeyUsageExtension(p.eku, false),
        new x509.SubjectAlternativeNameExtension(p.sans, true),
        await authorityKeyId(s.cert),
      ],
    });
    const certPem = cert.toString("pem") + "\n";
    return {
      certPem,
      chainPem: joinPem([certPem, ...s.intermediates]),
      serial: cert.serialNumber.toUpperCase(),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }
}

/** The AKI must repeat the issuer's own SKI when it has one (path builders match them), else derive it. */
async function authorityKeyId(issuer: X.X509Certificate): Promise<X.Extension> {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId, false) : await x509.AuthorityKeyIdentifierExtension.create(issuer, false);
}

/** The SANs a CSR asks for (from its extensionRequest attribute). */
function csrSans(csr: X.Pkcs10CertificateRequest): X.JsonGeneralName[] {
  const out: X.JsonGeneralName[] = [];
  for (const ext of csr.extensions) {
    if (ext.type === "2.5.29.17") out.push(...new x509.SubjectAlternativeNameExtension(ext.rawData).names.toJSON());
  }
  return out;
}

/** 16 random bytes, first bit cleared so the DER INTEGER stays positive, first byte non-zero. */
function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function fingerprint(pem: string): string {
  return new NodeX509(pem).fingerprint256;
}

function samePem(a: string, b: string): boolean {
  return a.replace(/\s+/g, "") === b.replace(/\s+/g, "");
}

async function createRoot(trustDomain: string, nowMs: number, ttlSeconds: number) {
  const keys = await generateP256();
  const tag = Array.from(crypto.getRandomValues(new Uint8Array(4)), (x) => x.toString(16).padStart(2, "0")).join("");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    // A distinct CN per root keeps two roots of one trust domain apart during a rotation.
    name: `O=${trustDomain}, CN=mesh root ${tag}`,
    notBefore: new Date(nowMs - 3600_000),
    notAfter: new Date(nowMs + ttlSeconds * 1000),
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      // A signing certificate's SPIFFE ID names the trust domain and has no path (X.509-SVID §3.2).
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }], false),
    ],
  });
  return {
    cert,
    certPem: cert.toString("pem") + "\n",
    keyPem: await privateKeyPem(keys.privateKey),
    key: { key: keys.privateKey, algorithm: EC_P256 } as SigningKey,
  };
}

/** Loads a certificate and its key; undefined when neither file exists; an error when only one does. */
async function loadKeyPair(certPath: string, keyPath: string, what: string) {
  const certText = readIfExists(certPath);
  const keyText = readIfExists(keyPath);
  if (certText === undefined && keyText === undefined) return undefined;
  if (certText === undefined || keyText === undefined) {
    throw new MeshError(
      ErrorCode.CertificateInvalid,
      `The ${what} is incomplete: ${certText === undefined ? certPath : keyPath} is missing (restore it from a backup; a new root would break every existing certificate)`,
    );
  }
  const pem = certificatePems(certText)[0];
  if (!pem) throw new MeshError(ErrorCode.CertificateInvalid, `${certPath}: no PEM certificate found`);
  assertKeyMatches(pem, keyText, certPath, keyPath);
  const key = await importPrivateKeyPem(keyText, keyPath);
  const cert = new x509.X509Certificate(pem);
  return { cert, certPem: pem, keyPem: keyText, key };
}

function assertKeyMatches(certPem: string, keyPem: string, certPath: string, keyPath: string): void {
  if (!keyMatchesCertificate(certPem, keyPem)) {
    throw new MeshError(ErrorCode.CertificateInvalid, `${keyPath} is not the private key of ${certPath}`);
  }
}

/** Istio's plug-in CA: all four files in DATA_DIR/cacerts, or none. */
async function loadPluggedIn(dataDir: string, nowMs: number): Promise<{ signer: Signer; bundle: string[] } | undefined> {
  const dir = join(dataDir, "cacerts");
  const names = ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"] as const;
  const files = Object.fromEntries(names.map((n) => [n, readIfExists(join(dir, n))])) as Record<(typeof names)[number], string | undefined>;
  const present = names.filter((n) => files[n] !== undefined);
  if (present.length === 0) return undefined;
  if (present.length < names.length) {
    const missing = names.filter((n) => files[n] === undefined);
    throw new MeshError(
      ErrorCode.CertificateInvalid,
      `Plug-in CA in ${dir} is incomplete: missing ${missing.join(", ")} (provide all of ${names.join(", ")}, or remove the directory to use a self-signed root)`,
    );
  }
  const caPem = certificatePems(files["ca-cert.pem"]!)[0];
  if (!caPem) throw new MeshError(ErrorCode.CertificateInvalid, `${join(dir, "ca-cert.pem")}: no PEM certificate found`);
  const bundle = certificatePems(files["root-cert.pem"]!);
  if (bundle.length === 0) throw new MeshError(ErrorCode.CertificateInvalid, `${join(dir, "root-cert.pem")}: no PEM certificate found`);
  const caX = new NodeX509(caPem);
  if (!caX.ca) throw new MeshError(ErrorCode.CertificateInvalid, `${join(dir, "ca-cert.pem")} is not a CA certificate (basicConstraints CA:TRUE)`);
  // cert-chain.pem is the intermediate chain, often with the root appended: keep what is not a root and
  // not ca-cert itself, in order.
  const isRoot = (p: string) => bundle.some((b) => samePem(b, p)) || selfIssued(p);
  const intermediates = certificatePems(files["cert-chain.pem"]!).filter((p) => !samePem(p, caPem) && !isRoot(p));
  const signerChain = [caPem, ...intermediates];
  assertKeyMatches(caPem, files["ca-key.pem"]!, join(dir, "ca-cert.pem"), join(dir, "ca-key.pem"));
  const key = await importPrivateKeyPem(files["ca-key.pem"]!, join(dir, "ca-key.pem"));
  const cert = new x509.X509Certificate(caPem);
  const check = verifyChain(signerChain, bundle, new Date(nowMs));
  if (check.length) {
    throw new MeshError(ErrorCode.CertificateInvalid, `Plug-in CA in ${dir}: ca-cert.pem and cert-chain.pem do not chain to root-cert.pem: ${check.join("; ")}`);
  }
  return { signer: { cert, certPem: caPem, key, intermediates: [caPem, ...intermediates] }, bundle };
}

function selfIssued(pem: string): boolean {
  const c = new NodeX509(pem);
  return c.checkIssued(c) && c.verify(c.publicKey);
}
