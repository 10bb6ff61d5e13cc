/**
 * The certificate client of a ztunnel or a waypoint: keeps one X.509-SVID per identity it serves, with
 * a private key that never leaves the process (unless `persistDir` asks for last-known-good copies),
 * renews each at `rotationFraction` of its lifetime (with jitter so a node's certificates do not all renew
 * at once), retries failures with exponential backoff while the old certificate keeps serving, and holds
 * the trust bundle that peers are verified against.
 *
 * TLS code reads `current(identity)` and `trustBundle()` synchronously for each new handshake, so a renewed
 * certificate or a changed bundle applies to the next connection and open connections are never dropped.
 */
import { mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { createCsr } from "./csr.ts";
import { writeFileAtomic } from "./_fs.ts";
import { certificatePems, joinPem, pemBlocks } from "./_pem.ts";
import { parseSpiffeId } from "../model/mod.ts";
import { validateSvid } from "./validate.ts";

/** A certificate the client holds for one identity. */
export interface Cert {
  /** The SPIFFE ID in its URI SAN. */
  identity: string;
  /** The leaf certificate (PEM). */
  certPem: string;
  /** Leaf followed by intermediates (PEM): what to present in TLS. */
  chainPem: string;
  /** The private key (PKCS#8 PEM). */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  /** Serial number, upper-case hex. */
  serial: string;
}

/** What a signer returns: the chain as one PEM text, a list [leaf, ...intermediates], or both parts. */
export type SignResult = string | string[] | { certPem: string; chainPem: string };

/** Options of WorkloadCertificates. */
export interface WorkloadCertificatesOptions {
  /** Sends a CSR (PEM) for `identity` to the CA (the control plane) and returns the signed chain. */
  sign: (csrPem: string, identity: string) => Promise<SignResult>;
  /** Current time in ms since the epoch. Default Date.now. (Timers still run on real time.) */
  clock?: () => number;
  /** Renew at this fraction of a certificate's lifetime. Default 0.5. */
  rotationFraction?: number;
  /** Spread of the renewal point, as a fraction of the lifetime (uniform in ±jitter/2). Default 0.1. */
  jitter?: number;
  /** First retry delay after a failed signing; doubles each time up to maxRetryMs. Default 200 ms. */
  initialRetryMs?: number;
  /** Largest retry delay. Default 30 s. */
  maxRetryMs?: number;
  /** Called on each failed attempt (the client keeps retrying). */
  onError?: (error: unknown, identity: string) => void;
  /** Keep last-known-good certificates and keys here (mode 0600) and reuse them after a restart. */
  persistDir?: string;
  /** Initial trust bundle (PEM). */
  trustBundlePem?: string;
}

interface Entry {
  identity: string;
  cert?: Cert;
  inflight?: Promise<Cert>;
  timer?: ReturnType<typeof setTimeout>;
  failures: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Workload certificates of one proxy.
 * @example
 * const certs = new WorkloadCertificates({ sign: (csr, id) => control.sign(csr, id), trustBundlePem: rootPem });
 * const cert = await certs.get("spiffe://cluster.local/ns/shop/sa/api");
 * // in a TLS callback: certs.current(id)?.chainPem, certs.trustBundle()
 */
export class WorkloadCertificates {
  #opts: WorkloadCertificatesOptions;
  #entries = new Map<string, Entry>();
  #rotateListeners = new Set<(cert: Cert, previous: Cert | undefined) => void>();
  #bundleListeners = new Set<(bundlePem: string) => void>();
  #bundle: string | undefined;
  #now: () => number;
  #closed = false;

  constructor(opts: WorkloadCertificatesOptions) {
    const f = opts.rotationFraction ?? 0.5;
    if (!(f > 0 && f < 1)) throw new MeshError(ErrorCode.ConfigInvalid, `rotationFraction must be between 0 and 1, not ${f}`);
    this.#opts = opts;
    this.#now = opts.clock ?? Date.now;
    if (opts.trustBundlePem !== undefined) this.setTrustBundle(opts.trustBundlePem);
    if (opts.persistDir) mkdirSync(opts.persistDir, { recursive: true, mode: 0o700 });
  }

  /**
   * The certificate for `identity`, requesting it on first use (or when the held one has expired).
   * Later calls return the held certificate; renewal happens in the background.
   * @throws whatever `sign` threw, or MeshError (MESH_CERT_INVALID) when the CA's answer is unusable. The
   * client keeps retrying in the background until forget(identity).
   */
  async get(identity: string): Promise<Cert> {
    if (this.#closed) throw new MeshError(ErrorCode.CertificateInvalid, "The certificate client is closed");
    let e = this.#entries.get(identity);
    if (!e) {
      parseSpiffeId(identity);
      e = { identity, failures: 0 };
      this.#entries.set(identity, e);
      const saved = this.#loadPersisted(identity);
      if (saved) {
        e.cert = saved;
        this.#schedule(e, this.#renewDelay(saved));
      }
    }
    const c = e.cert;
    if (c && this.#now() < c.notAfter.getTime()) return c;
    return await this.#renew(e);
  }

  /** The held certificate for `identity` if it has not expired; never waits (for TLS callbacks). */
  current(identity: string): Cert | undefined {
    const c = this.#entries.get(identity)?.cert;
    return c && this.#now() < c.notAfter.getTime() ? c : undefined;
  }

  /** Every held certificate (for admin and status output). */
  list(): Cert[] {
    return [...this.#entries.values()].flatMap((e) => (e.cert ? [e.cert] : []));
  }

  /** Identities being kept (requested and not forgotten), with or without a certificate yet. */
  identities(): string[] {
    return [...this.#entries.keys()];
  }

  /** Certificate, key and trust bundle for a TLS context, or undefined while there is no valid certificate. */
  tlsMaterial(identity: string): { cert: string; key: string; ca: string | undefined } | undefined {
    const c = this.current(identity);
    return c && { cert: c.chainPem, key: c.keyPem, ca: this.#bundle };
  }

  /** Calls `listener` after each new certificate (first issue and renewals). Returns an unsubscribe function. */
  onRotate(listener: (cert: Cert, previous: Cert | undefined) => void): () => void {
    this.#rotateListeners.add(listener);
    return () => this.#rotateListeners.delete(listener);
  }

  /**
   * Renews at `fraction` of a certificate's lifetime from now on (a proxy applies each MeshConfig it
   * receives): renewals already scheduled move to the new point, retries after a failure keep theirs.
   * @throws MeshError (MESH_CONFIG_INVALID) unless 0 < fraction < 1; the previous fraction stays.
   */
  setRotationFraction(fraction: number): void {
    if (!(fraction > 0 && fraction < 1)) throw new MeshError(ErrorCode.ConfigInvalid, `rotationFraction must be between 0 and 1, not ${fraction}`);
    if (fraction === (this.#opts.rotationFraction ?? 0.5)) return;
    this.#opts = { ...this.#opts, rotationFraction: fraction };
    for (const e of this.#entries.values()) {
      if (e.cert && e.timer && !e.inflight && e.failures === 0) this.#schedule(e, this.#renewDelay(e.cert));
    }
  }

  /** Stops renewing `identity` and drops its certificate, key and persisted copy (the workload is gone). */
  forget(identity: string): void {
    const e = this.#entries.get(identity);
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    this.#entries.delete(identity);
    if (this.#opts.persistDir) rmSync(this.#persistPath(identity), { force: true });
  }

  /**
   * Replaces the trust bundle (every root to accept peers from). During a root rotation, first set a bundle
   * with both roots, and remove the old root only after every peer's certificate chains to the new one.
   * @throws MeshError (MESH_CERT_INVALID) when `pem` holds no certificate.
   */
  setTrustBundle(pem: string): void {
    const certs = certificatePems(pem);
    if (certs.length === 0) throw new MeshError(ErrorCode.CertificateInvalid, "Trust bundle has no PEM certificate");
    const next = joinPem(certs);
    if (next === this.#bundle) return;
    this.#bundle = next;
    for (const l of this.#bundleListeners) safe(() => l(next));
  }

  /** The current trust bundle (PEM), or undefined before one is set. */
  trustBundle(): string | undefined {
    return this.#bundle;
  }

  /** Calls `listener` whenever the trust bundle changes. Returns an unsubscribe function. */
  onTrustBundle(listener: (bundlePem: string) => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  /** Stops every renewal timer. Held certificates stay readable. */
  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) if (e.timer) clearTimeout(e.timer);
  }

  #renew(e: Entry): Promise<Cert> {
    if (e.inflight) return e.inflight;
    if (e.timer) {
      clearTimeout(e.timer);
      e.timer = undefined;
    }
    const p = this.#issue(e.identity).then(
      (cert) => {
        e.inflight = undefined;
        if (this.#entries.get(e.identity) !== e) return cert; // forgotten meanwhile: do not resurrect
        const previous = e.cert;
        e.cert = cert;
        e.failures = 0;
        this.#persist(cert);
        for (const l of this.#rotateListeners) safe(() => l(cert, previous));
        this.#schedule(e, this.#renewDelay(cert));
        return cert;
      },
      (err) => {
        e.inflight = undefined;
        if (this.#entries.get(e.identity) === e) {
          safe(() => this.#opts.onError?.(err, e.identity));
          e.failures++;
          this.#schedule(e, this.#retryDelay(e));
        }
        throw err;
      },
    );
    e.inflight = p;
    // Background renewals report through onError; an unobserved rejection must not crash the process.
    p.catch(() => {});
    return p;
  }

  async #issue(identity: string): Promise<Cert> {
    const { csrPem, keyPem } = await createCsr(identity);
    const res = await this.#opts.sign(csrPem, identity);
    return this.#accept(identity, res, keyPem);
  }

  /** Checks the CA's answer before using it: our key, the identity we asked for, a valid SVID chain. */
  #accept(identity: string, res: SignResult, keyPem: string): Cert {
    let chain: string[];
    if (typeof res === "string") chain = certificatePems(res);
    else if (Array.isArray(res)) chain = res.flatMap((p) => certificatePems(p));
    else {
      const leaf = certificatePems(res.certPem);
      const rest = certificatePems(res.chainPem);
      chain = leaf.length && rest[0] !== leaf[0] ? [...leaf, ...rest] : rest.length ? rest : leaf;
    }
    if (chain.length === 0) throw new MeshError(ErrorCode.CertificateInvalid, `The CA returned no certificate for "${identity}"`);
    const r = validateSvid(chain, this.#bundle ?? null, { now: new Date(this.#now()), keyPem });
    if (!r.ok) throw new MeshError(ErrorCode.CertificateInvalid, `The CA returned an unusable certificate for "${identity}": ${r.errors.join("; ")}`);
    if (r.spiffeId !== identity) {
      throw new MeshError(ErrorCode.CertificateInvalid, `The CA returned a certificate for "${r.spiffeId}", not "${identity}"`);
    }
    return {
      identity,
      certPem: chain[0]!,
      chainPem: joinPem(chain),
      keyPem,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      serial: r.serial,
    };
  }

  #renewDelay(c: Cert): number {
    const start = c.notBefore.getTime();
    const life = c.notAfter.getTime() - start;
    const f = this.#opts.rotationFraction ?? 0.5;
    const j = this.#opts.jitter ?? 0.1;
    // Never past 90% of the lifetime, so retries still have time before expiry.
    const frac = Math.min(0.9, Math.max(0.05, f + (Math.random() - 0.5) * j));
    return Math.max(0, start + life * frac - this.#now());
  }

  #retryDelay(e: Entry): number {
    const base = Math.min(this.#opts.maxRetryMs ?? 30_000, (this.#opts.initialRetryMs ?? 200) * 2 ** Math.min(e.failures - 1, 30));
    const d = base * (0.75 + Math.random() * 0.25);
    // While a certificate still serves, make sure several attempts fit before it expires.
    const left = e.cert ? e.cert.notAfter.getTime() - this.#now() : Infinity;
    return Math.max(10, Math.min(d, left > 0 ? left / 4 : d));
  }

  #schedule(e: Entry, delayMs: number): void {
    if (this.#closed) return;
    if (e.timer) clearTimeout(e.timer);
    const wait = Math.min(delayMs, MAX_TIMER_MS);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.#entries.get(e.identity) !== e || this.#closed) return;
      if (wait < delayMs) return this.#schedule(e, delayMs - wait);
      this.#renew(e).catch(() => {});
    }, wait);
    // Renewal timers alone must not keep a process alive.
    (e.timer as { unref?: () => void }).unref?.();
  }

  #persistPath(identity: string): string {
    return join(this.#opts.persistDir!, identity.replace(/^spiffe:\/\//, "").replace(/[^A-Za-z0-9._-]/g, "_") + ".pem");
  }

  #persist(c: Cert): void {
    if (!this.#opts.persistDir) return;
    try {
      writeFileAtomic(this.#persistPath(c.identity), c.chainPem + c.keyPem, 0o600);
    } catch (err) {
      safe(() => this.#opts.onError?.(err, c.identity));
    }
  }

  #loadPersisted(identity: string): Cert | undefined {
    if (!this.#opts.persistDir) return undefined;
    const path = this.#persistPath(identity);
    if (!existsSync(path)) return undefined;
    try {
      const text = readFileSync(path, "utf8");
      const key = pemBlocks(text).find((b) => b.label.endsWith("PRIVATE KEY"));
      if (!key) return undefined;
      // A stale or foreign file is simply not used: the client asks the CA instead.
      return this.#accept(identity, certificatePems(text), key.pem);
    } catch {
      return undefined;
    }
  }
}

function safe(f: () => void): void {
  try {
    f();
  } catch {
    // Listener errors must not break renewal.
  }
}
