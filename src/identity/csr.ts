/** PKCS#10 certificate requests for SVIDs: what a ztunnel or waypoint sends to the CA. */
import { EC_P256, generateP256, privateKeyPem } from "./_keys.ts";
import { x509 } from "./_x509.ts";

/** A CSR and the private key it was made with. */
export interface CsrWithKey {
  /** PEM "CERTIFICATE REQUEST" asking for exactly one URI SAN: the identity. */
  csrPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  keys: CryptoKeyPair;
}

/**
 * Creates a fresh EC P-256 key and a CSR for `identity` (one URI SAN, empty subject).
 * @example const { csrPem, keyPem } = await createCsr("spiffe://cluster.local/ns/shop/sa/api");
 */
export async function createCsr(identity: string, opts: { sans?: { type: "url" | "dns" | "ip"; value: string }[] } = {}): Promise<CsrWithKey> {
  const keys = await generateP256();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension(opts.sans ?? [{ type: "url", value: identity }], true)],
  });
  return { csrPem: csr.toString("pem") + "\n", keyPem: await privateKeyPem(keys.privateKey), keys };
}
