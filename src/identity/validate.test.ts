import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as X from "@peculiar/x509";
import { certificatePems } from "./_pem.ts";
import { x509 } from "./_x509.ts";
import { keyMatchesCertificate, validateSvid, verifyChain } from "./validate.ts";

const TD = join(import.meta.dir, "testdata", "spiffe");
const read = (f: string) => readFileSync(join(TD, f), "utf8");

// The vectors are expired on purpose: each is validated at a fixed time inside its validity.
const MARCH_24_2020 = new Date("2020-03-24T14:30:00Z"); // good-leaf-and-intermediate, good-cert-and-key
const YEAR_2024 = new Date("2024-06-01T00:00:00Z"); // the 2020-2025 certificates

/** Which certificates to trust for a vector: its own (self-signed ones), its intermediate, or none (structure only). */
type Bundle = "self" | "intermediate" | null;
interface Vector {
  certs: string;
  bundle: Bundle;
  now: Date;
  key?: string;
  ok?: string; // the SPIFFE ID
  error?: string; // a substring of one of the errors (the reference library's wording)
}

const vectors: Vector[] = [
  // Accepted.
  { certs: "good-leaf-only.pem", bundle: "self", now: YEAR_2024, key: "key-pkcs8-rsa.pem", ok: "spiffe://example.org/workload-1" },
  { certs: "good-leaf-and-intermediate.pem", bundle: "intermediate", now: MARCH_24_2020, key: "key-pkcs8-ecdsa.pem", ok: "spiffe://example.org/workload-1" },
  { certs: "good-key-and-cert.pem", bundle: null, now: MARCH_24_2020, key: "good-key-and-cert.pem", ok: "spiffe://example.org/workload-1" },
  { certs: "good-cert-and-key.pem", bundle: null, now: MARCH_24_2020, key: "good-cert-and-key.pem", ok: "spiffe://example.org/workload-1" },
  // Unreadable inputs.
  { certs: "key-pkcs8-rsa.pem", bundle: null, now: YEAR_2024, error: "no certificates found" },
  { certs: "good-leaf-only.pem", bundle: "self", now: YEAR_2024, key: "good-leaf-only.pem", error: "no private key found" },
  { certs: "good-leaf-only.pem", bundle: "self", now: YEAR_2024, key: "not-pem", error: "cannot parse PEM encoded private key: no PEM blocks found" },
  { certs: "not-pem", bundle: null, now: YEAR_2024, error: "cannot parse PEM encoded certificate: no PEM blocks found" },
  { certs: "good-leaf-only.pem", bundle: "self", now: YEAR_2024, key: "corrupt-key.pem", error: "cannot parse PEM encoded private key" },
  { certs: "corrupt-cert.pem", bundle: null, now: YEAR_2024, error: "cannot parse PEM encoded certificate: malformed certificate" },
  { certs: "good-leaf-and-intermediate.pem", bundle: "intermediate", now: MARCH_24_2020, key: "key-pkcs8-rsa.pem", error: "leaf certificate does not match private key" },
  // Broken SVID rules (each with its trust anchor, so only the rule itself can fail it).
  { certs: "wrong-leaf-empty-id.pem", bundle: "self", now: YEAR_2024, error: "certificate contains no URI SAN" },
  { certs: "wrong-leaf-ca-true.pem", bundle: "self", now: YEAR_2024, error: "leaf certificate must not have CA flag set to true" },
  { certs: "wrong-leaf-no-digital-signature.pem", bundle: "self", now: YEAR_2024, error: "leaf certificate must have 'digitalSignature' set as key usage" },
  { certs: "wrong-leaf-cert-sign.pem", bundle: "self", now: YEAR_2024, error: "leaf certificate must not have 'keyCertSign' set as key usage" },
  { certs: "wrong-leaf-crl-sign.pem", bundle: "self", now: YEAR_2024, error: "leaf certificate must not have 'cRLSign' set as key usage" },
  { certs: "wrong-intermediate-no-ca.pem", bundle: "self", now: YEAR_2024, error: "signing certificate must have CA flag set to true" },
  { certs: "wrong-intermediate-no-key-cert-sign.pem", bundle: "self", now: YEAR_2024, error: "signing certificate must have 'keyCertSign' set as key usage" },
];

function bundleOf(v: Vector): string | null {
  if (v.bundle === null) return null;
  const certs = certificatePems(read(v.certs));
  return v.bundle === "intermediate" ? certs[1]! : certs.join("");
}

describe("validateSvid over the SPIFFE reference vectors", () => {
  for (const v of vectors) {
    const name = `${v.certs}${v.key ? ` + key ${v.key}` : ""}${v.bundle ? ` (trusting ${v.bundle})` : " (structure only)"}`;
    test(`${v.ok ? "accepts" : "rejects"} ${name}`, () => {
      const r = validateSvid(read(v.certs), bundleOf(v), { now: v.now, keyPem: v.key ? read(v.key) : undefined });
      if (v.ok) {
        expect(r).toMatchObject({ ok: true, spiffeId: v.ok, trustDomain: "example.org" });
      } else {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.errors.join("\n")).toContain(v.error!);
      }
    });
  }

  test("the valid vectors are refused at the real time (they are expired)", () => {
    for (const v of vectors.filter((x) => x.ok && x.bundle)) {
      const r = validateSvid(read(v.certs), bundleOf(v));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.errors.join("\n")).toContain("expired at");
    }
  });

  test("path validation: unknown authority, wrong order, trust domain", () => {
    const leafAndInt = read("good-leaf-and-intermediate.pem");
    const [leaf, intermediate] = certificatePems(leafAndInt);
    const other = read("good-leaf-only.pem");
    let r = validateSvid(leafAndInt, other, { now: MARCH_24_2020 });
    expect(!r.ok && r.errors.join()).toContain("unknown authority");
    r = validateSvid([intermediate!, leaf!], intermediate!, { now: MARCH_24_2020 });
    expect(r.ok).toBe(false);
    r = validateSvid(leafAndInt, intermediate!, { now: MARCH_24_2020, expectedTrustDomain: "cluster.local" });
    expect(!r.ok && r.errors.join()).toContain('not in the expected trust domain "cluster.local"');
    r = validateSvid(leafAndInt, intermediate!, { now: new Date("2020-03-24T14:00:00Z") });
    expect(!r.ok && r.errors.join()).toContain("is not valid before");
    expect(validateSvid(leafAndInt, "", { now: MARCH_24_2020 }).ok).toBe(false);
  });
});

// ---- Certificates minted here, for the rules no static vector covers ----

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const KU = x509.KeyUsageFlags;

async function mint(p: {
  issuer?: { cert: X.X509Certificate; keys: CryptoKeyPair };
  ca?: boolean;
  pathLength?: number;
  usages?: number;
  uris?: string[];
  notBefore?: Date;
  notAfter?: Date;
  name?: string;
}): Promise<{ cert: X.X509Certificate; keys: CryptoKeyPair; pem: string }> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const exts: X.Extension[] = [
    new x509.BasicConstraintsExtension(p.ca ?? false, p.pathLength, true),
    new x509.KeyUsagesExtension(p.usages ?? (p.ca ? KU.keyCertSign : KU.digitalSignature), true),
  ];
  if (p.uris?.length) exts.push(new x509.SubjectAlternativeNameExtension(p.uris.map((u) => ({ type: "url" as const, value: u })), false));
  const name = p.name ?? `CN=${p.ca ? "ca" : "leaf"}-${crypto.randomUUID()}`;
  const common = {
    serialNumber: "0" + crypto.randomUUID().replace(/-/g, "").slice(0, 15),
    notBefore: p.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: p.notAfter ?? new Date(Date.now() + 3600_000),
    signingAlgorithm: EC,
    extensions: exts,
  };
  const cert = p.issuer
    ? await x509.X509CertificateGenerator.create({ ...common, subject: name, issuer: p.issuer.cert.subjectName, publicKey: keys.publicKey, signingKey: p.issuer.keys.privateKey })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name, keys });
  return { cert, keys, pem: cert.toString("pem") + "\n" };
}

describe("validateSvid on minted certificates", () => {
  test("accepts a good chain, refuses two URI SANs and a root-path ID (X2, X4)", async () => {
    const root = await mint({ ca: true, uris: ["spiffe://td"] });
    const good = await mint({ issuer: root, uris: ["spiffe://td/ns/a/sa/b"] });
    expect(validateSvid(good.pem, root.pem)).toMatchObject({ ok: true, spiffeId: "spiffe://td/ns/a/sa/b" });
    const two = await mint({ issuer: root, uris: ["spiffe://td/a", "spiffe://td/b"] });
    let r = validateSvid(two.pem, root.pem);
    expect(!r.ok && r.errors.join()).toContain("more than one URI SAN");
    const rootPath = await mint({ issuer: root, uris: ["spiffe://td"] });
    r = validateSvid(rootPath.pem, root.pem);
    expect(!r.ok && r.errors.join()).toContain("leaf certificate SPIFFE ID must have a non-root path");
    const notSpiffe = await mint({ issuer: root, uris: ["https://td/a"] });
    r = validateSvid(notSpiffe.pem, root.pem);
    expect(!r.ok && r.errors.join()).toContain("invalid SPIFFE ID");
  });

  test("a leaf cannot authenticate with a signing certificate (X7), and CA leaves are refused even when trusted", async () => {
    const root = await mint({ ca: true, uris: ["spiffe://td"] });
    const r = validateSvid(root.pem, root.pem);
    expect(!r.ok && r.errors.join()).toContain("leaf certificate must not have CA flag set to true");
  });

  test("intermediates: pathLenConstraint, CA flag and the root sent along in the chain", async () => {
    const root = await mint({ ca: true, pathLength: 0 });
    const int1 = await mint({ issuer: root, ca: true });
    const leaf = await mint({ issuer: int1, uris: ["spiffe://td/w"] });
    let r = validateSvid([leaf.pem, int1.pem], root.pem);
    expect(!r.ok && r.errors.join()).toContain("pathLenConstraint");

    const root2 = await mint({ ca: true, pathLength: 1 });
    const int2 = await mint({ issuer: root2, ca: true, pathLength: 0 });
    const leaf2 = await mint({ issuer: int2, uris: ["spiffe://td/w"] });
    expect(validateSvid([leaf2.pem, int2.pem], root2.pem).ok).toBe(true);
    expect(validateSvid([leaf2.pem, int2.pem, root2.pem], root2.pem).ok).toBe(true);
    // Missing intermediate: the leaf alone does not reach the root.
    r = validateSvid(leaf2.pem, root2.pem);
    expect(!r.ok && r.errors.join()).toContain("unknown authority");
    // An intermediate without keyCertSign cannot sign.
    const weak = await mint({ issuer: root2, ca: true, usages: KU.digitalSignature });
    const leaf3 = await mint({ issuer: weak, uris: ["spiffe://td/w"] });
    r = validateSvid([leaf3.pem, weak.pem], root2.pem);
    expect(!r.ok && r.errors.join()).toContain("keyCertSign");
    expect(verifyChain([leaf2.pem, int2.pem], root2.pem)).toEqual([]);
  });

  test("an expired or not-yet-valid root fails the chain; of two same-named roots the valid one is used", async () => {
    const name = "CN=shared root name";
    const oldRoot = await mint({ ca: true, name, notAfter: new Date(Date.now() - 1000), notBefore: new Date(Date.now() - 7200_000) });
    const leafOld = await mint({ issuer: oldRoot, uris: ["spiffe://td/w"], notBefore: new Date(Date.now() - 3600_000) });
    let r = validateSvid(leafOld.pem, oldRoot.pem);
    expect(!r.ok && r.errors.join()).toContain("the trusted root expired");
    const newRoot = await mint({ ca: true, name });
    const leafNew = await mint({ issuer: newRoot, uris: ["spiffe://td/w"] });
    r = validateSvid(leafNew.pem, oldRoot.pem + newRoot.pem);
    expect(r.ok).toBe(true);
  });

  test("keyMatchesCertificate", async () => {
    const root = await mint({ ca: true });
    const leaf = await mint({ issuer: root, uris: ["spiffe://td/w"] });
    const pkcs8 = await crypto.subtle.exportKey("pkcs8", leaf.keys.privateKey);
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString("base64")}\n-----END PRIVATE KEY-----\n`;
    expect(keyMatchesCertificate(leaf.pem, keyPem)).toBe(true);
    expect(keyMatchesCertificate(root.pem, keyPem)).toBe(false);
    expect(keyMatchesCertificate("junk", keyPem)).toBe(false);
  });
});
