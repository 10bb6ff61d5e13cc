/**
 * Test-only certificates for src/hbone: a throwaway root CA and SPIFFE leaf certificates made with
 * @peculiar/x509 over WebCrypto (EC P-256). Kept here rather than in src/identity so the HBONE tests
 * do not depend on the real CA. Never used outside tests and benches.
 */
// @peculiar/x509 as src/identity loads it (after the Reflect metadata shim it needs).
import { x509 } from "../identity/_test_x509.ts";

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** PEM material for one TLS endpoint: leaf (+chain) certificate, PKCS#8 key, trusted roots. */
export interface TestTls {
  cert: string;
  key: string;
  ca: string;
}

export interface TestCa {
  /** Root certificate in PEM. */
  ca: string;
  /** Issues a leaf for `spiffe` (a full spiffe:// URI) signed by this CA. */
  issue(spiffe: string, opts?: { notAfter?: Date; notBefore?: Date; uris?: string[] }): Promise<TestTls>;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END PRIVATE KEY-----\n`;
}

let serial = 1;
function nextSerial(): string {
  return (0x100000 + serial++).toString(16);
}

/** Creates a root CA named `name`. */
export async function makeTestCa(name = "mesh-test-root"): Promise<TestCa> {
  const keys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}, O=mesh-test`,
    keys,
    signingAlgorithm: alg,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 7 * 86400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const caPem = root.toString("pem") + "\n";
  return {
    ca: caPem,
    async issue(spiffe, opts = {}) {
      const leafKeys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
      const uris = opts.uris ?? [spiffe];
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
        subject: "O=mesh-test",
        issuer: root.subject,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: alg,
        notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000),
        notAfter: opts.notAfter ?? new Date(Date.now() + 86400_000),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(uris.map((u) => ({ type: "url" as const, value: u })), true),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const pkcs8 = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
      return { cert: leaf.toString("pem") + "\n", key: pemKey(pkcs8), ca: caPem };
    },
  };
}

/** The SPIFFE URI for namespace `ns` and service account `sa` in cluster.local. */
export function spiffeId(ns: string, sa: string): string {
  return `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
}
