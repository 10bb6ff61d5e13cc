/** Key generation and PEM import/export over WebCrypto (private to src/identity). */
import { createPrivateKey } from "node:crypto";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { pemBlocks, toPem } from "./_pem.ts";

/** ECDSA P-256 with SHA-256: the key and signature algorithm of every SVID and of the mesh's own roots. */
export const EC_P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A signing key with the WebCrypto algorithm to sign with. */
export interface SigningKey {
  key: CryptoKey;
  /** For x509 signingAlgorithm / crypto.subtle.sign. */
  algorithm: Algorithm | EcdsaParams;
}

export async function generateP256(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", key));
}

/**
 * Imports a PEM private key in any common encoding (PKCS#8, SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY"),
 * so a plug-in CA made with openssl or Istio's tooling loads as it is.
 */
export async function importPrivateKeyPem(pem: string, what: string): Promise<SigningKey> {
  if (!pemBlocks(pem).some((b) => b.label.endsWith("PRIVATE KEY"))) {
    throw new MeshError(ErrorCode.CertificateInvalid, `${what}: no PEM private key found`);
  }
  let ko;
  try {
    ko = createPrivateKey(pem);
  } catch (e) {
    throw new MeshError(ErrorCode.CertificateInvalid, `${what}: cannot parse private key: ${(e as Error).message}`);
  }
  const pkcs8 = ko.export({ format: "der", type: "pkcs8" });
  if (ko.asymmetricKeyType === "ec") {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const named = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!named) throw new MeshError(ErrorCode.CertificateInvalid, `${what}: unsupported EC curve "${curve}" (use P-256 or P-384)`);
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: named }, true, ["sign"]);
    return { key, algorithm: { name: "ECDSA", hash: named === "P-256" ? "SHA-256" : "SHA-384" } as EcdsaParams };
  }
  if (ko.asymmetricKeyType === "rsa") {
    const algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm, true, ["sign"]);
    return { key, algorithm };
  }
  throw new MeshError(ErrorCode.CertificateInvalid, `${what}: unsupported key type "${ko.asymmetricKeyType}" (use EC or RSA)`);
}
