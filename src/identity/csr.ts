/** PKCS#10 certificate requests for SVIDs: what a ztunnel or waypoint sends to the CA. */
import { certificationRequest, type GeneralName } from "./_der.ts";
import { generateP256, privateKeyPem } from "./_keys.ts";
import { toPem } from "./_pem.ts";

export type { GeneralName };

/** A CSR and the private key it was made with. */
export interface CsrWithKey {
  /** PEM "CERTIFICATE REQUEST" asking for exactly one URI SAN: the identity. */
  csrPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  keys: CryptoKeyPair;
}

/**
 * Creates a fresh EC P-256 key and a CSR for `identity` (one URI SAN, empty subject). Built with the
 * runtime's WebCrypto and a few lines of DER, so the proxies never load an X.509 library.
 * @example const { csrPem, keyPem } = await createCsr("spiffe://cluster.local/ns/shop/sa/api");
 */
export async function createCsr(identity: string, opts: { sans?: GeneralName[] } = {}): Promise<CsrWithKey> {
  const keys = await generateP256();
  const der = await certificationRequest(keys, opts.sans ?? [{ type: "url", value: identity }]);
  return { csrPem: toPem("CERTIFICATE REQUEST", der), keyPem: await privateKeyPem(keys.privateKey), keys };
}
