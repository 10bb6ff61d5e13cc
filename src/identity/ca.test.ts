import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate as NodeX509 } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "./ca.ts";
import { callerFromIdentity } from "./caller.ts";
import { createCsr } from "./csr.ts";
import { validateSvid } from "./validate.ts";
import { x509 } from "./_x509.ts";
import { certificatePems, pemBlocks, toPem } from "./_pem.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "mesh-ca-test-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function openssl(args: string[], cwd?: string): string {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe", stdout: "pipe" });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${out}`);
  return out;
}

const ID = "spiffe://cluster.local/ns/shop/sa/product-api";

/** Every issuer-side rule of the X.509-SVID checklist, read back from the certificate itself. */
function expectSvid(certPem: string, identity: string, ttlSeconds: number, signedAfter: number) {
  const n = new NodeX509(certPem);
  const p = new x509.X509Certificate(certPem);
  // X1/X3: exactly one URI SAN, the identity, and no other SAN.
  expect(n.subjectAltName).toBe(`URI:${identity}`);
  const san = p.getExtension(x509.SubjectAlternativeNameExtension)!;
  expect(san.names.toJSON()).toEqual([{ type: "url", value: identity }]);
  // X5: empty subject, so the SAN extension is critical.
  expect(p.subject).toBe("");
  expect(san.critical).toBe(true);
  // X8: not a CA, basicConstraints critical.
  const bc = p.getExtension(x509.BasicConstraintsExtension)!;
  expect(bc.ca).toBe(false);
  expect(bc.critical).toBe(true);
  expect(n.ca).toBe(false);
  // X10/X12/X19: keyUsage critical, digitalSignature only.
  const ku = p.getExtension(x509.KeyUsagesExtension)!;
  expect(ku.critical).toBe(true);
  expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
  // X13: EKU serverAuth and clientAuth.
  expect(n.keyUsage?.sort()).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  // EC P-256 key, ECDSA-SHA256 signature.
  expect(n.publicKey.asymmetricKeyType).toBe("ec");
  expect(n.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  // Lifetime: ttl (a small backdate for clock skew allowed on notBefore only).
  const life = (p.notAfter.getTime() - Date.now()) / 1000;
  expect(life).toBeGreaterThan(ttlSeconds - 5);
  expect(life).toBeLessThanOrEqual(ttlSeconds + 1);
  expect(p.notBefore.getTime()).toBeLessThanOrEqual(Date.now());
  // At most 60 s of backdate, cut down to a whole second, from the moment of signing (not from now: the
  // time since signing would eat into the bound, and sometimes, by a millisecond, past it).
  expect(p.notBefore.getTime()).toBeGreaterThan(signedAfter - 61_000);
}

describe("self-signed CA", () => {
  const dir = tmp();
  let ca: CertificateAuthority;

  test("first start creates a root: files, modes, root properties", async () => {
    ca = await CertificateAuthority.open(dir);
    expect(ca.pluggedIn).toBe(false);
    expect(statSync(join(dir, "ca", "root-key.pem")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, "root-cert.pem"), "utf8")).toBe(ca.trustBundlePem);
    expect(certificatePems(ca.trustBundlePem)).toEqual([ca.rootPem]);
    const n = new NodeX509(ca.rootPem);
    const p = new x509.X509Certificate(ca.rootPem);
    expect(n.ca).toBe(true);
    expect(n.checkIssued(n) && n.verify(n.publicKey)).toBe(true); // self-signed
    expect(n.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const years = (p.notAfter.getTime() - Date.now()) / (365 * 86400e3);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    // X6: a signing certificate's SPIFFE ID has no path. X8, X10, X11, X19.
    expect(n.subjectAltName).toBe("URI:spiffe://cluster.local");
    expect(p.getExtension(x509.BasicConstraintsExtension)!.critical).toBe(true);
    const ku = p.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  });

  test("a second start loads the same root", async () => {
    const again = await CertificateAuthority.open(dir);
    expect(again.rootPem).toBe(ca.rootPem);
  });

  test("signs a CSR as an SVID meeting every issuer rule; 24h by default", async () => {
    const { csrPem, keyPem } = await createCsr(ID);
    const t0 = Date.now();
    const s = await ca.signCsr(csrPem, { identity: ID });
    expectSvid(s.certPem, ID, 86400, t0);
    expect(s.chainPem).toBe(s.certPem); // a root signer adds no intermediates
    expect(s.notAfter.getTime() - Date.now()).toBeGreaterThan(86395e3);
    const r = validateSvid(s.chainPem, ca.trustBundlePem, { keyPem, expectedTrustDomain: "cluster.local" });
    expect(r).toMatchObject({ ok: true, spiffeId: ID, serial: s.serial });
    // An independent verifier agrees.
    const d = tmp();
    writeFileSync(join(d, "root.pem"), ca.rootPem);
    writeFileSync(join(d, "leaf.pem"), s.certPem);
    expect(openssl(["verify", "-CAfile", "root.pem", "-purpose", "sslserver", "leaf.pem"], d)).toContain("leaf.pem: OK");
    expect(openssl(["verify", "-CAfile", "root.pem", "-purpose", "sslclient", "leaf.pem"], d)).toContain("leaf.pem: OK");
    const text = openssl(["x509", "-in", "leaf.pem", "-noout", "-text"], d);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/product-api/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
  });

  test("serials are random and distinct", async () => {
    const { csrPem } = await createCsr(ID);
    const t0 = Date.now();
    const a = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 60 });
    const b = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 60 });
    expect(a.serial).not.toBe(b.serial);
    expect(a.serial.length).toBe(32);
    expectSvid(a.certPem, ID, 60, t0);
  });

  test("refuses a CSR whose identity differs from the requested one", async () => {
    const { csrPem } = await createCsr("spiffe://cluster.local/ns/shop/sa/other");
    await expect(ca.signCsr(csrPem, { identity: ID })).rejects.toThrow("but the request is for exactly");
  });

  test("refuses a CSR with extra SANs, none, or two URIs", async () => {
    const extra = await createCsr(ID, { sans: [{ type: "url", value: ID }, { type: "dns", value: "api.shop" }] });
    await expect(ca.signCsr(extra.csrPem, { identity: ID })).rejects.toThrow("dns:api.shop");
    const two = await createCsr(ID, { sans: [{ type: "url", value: ID }, { type: "url", value: ID + "2" }] });
    await expect(ca.signCsr(two.csrPem, { identity: ID })).rejects.toThrow("Refusing the CSR");
  });

  test("refuses identities of another trust domain, without a path, or malformed", async () => {
    const other = "spiffe://evil.example/ns/shop/sa/product-api";
    await expect(ca.signCsr((await createCsr(other)).csrPem, { identity: other })).rejects.toThrow('trust domain "cluster.local"');
    await expect(ca.signCsr((await createCsr("spiffe://cluster.local")).csrPem, { identity: "spiffe://cluster.local" })).rejects.toThrow("needs a path");
    await expect(ca.signCsr((await createCsr(ID)).csrPem, { identity: ID + "/" })).rejects.toThrow("trailing slash");
  });

  test("refuses a CSR with a broken signature, garbage, or a non-P-256 key", async () => {
    const { csrPem } = await createCsr(ID);
    const der = pemBlocks(csrPem)[0]!.der;
    der[der.length - 3]! ^= 0xff; // inside the signature
    await expect(ca.signCsr(toPem("CERTIFICATE REQUEST", der), { identity: ID })).rejects.toThrow("signature does not verify");
    await expect(ca.signCsr("not a csr", { identity: ID })).rejects.toThrow("Cannot parse the CSR");
    const rsa = await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    );
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys: rsa,
      signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: ID }], true)],
    });
    await expect(ca.signCsr(rsaCsr.toString("pem"), { identity: ID })).rejects.toThrow("must be EC P-256");
  });

  test("refuses a non-positive lifetime and never outlives the signer", async () => {
    const { csrPem } = await createCsr(ID);
    await expect(ca.signCsr(csrPem, { identity: ID, ttlSeconds: 0 })).rejects.toThrow("positive");
    const s = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 20 * 365 * 86400 });
    expect(s.notAfter.getTime()).toBe(new x509.X509Certificate(ca.rootPem).notAfter.getTime());
  });

  test("client certificates name the caller; the control plane reads it back", async () => {
    const c = await ca.issueClientCertificate({ kind: "node", node: "worker-a" }, { ttlSeconds: 600 });
    expect(c.identity).toBe("spiffe://cluster.local/mesh/node/worker-a");
    const n = new NodeX509(c.certPem);
    expect(n.subjectAltName).toBe("URI:spiffe://cluster.local/mesh/node/worker-a");
    expect(n.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]); // clientAuth only
    expect(validateSvid(c.chainPem, ca.trustBundlePem, { keyPem: c.keyPem }).ok).toBe(true);
    expect(callerFromIdentity(c.identity, "cluster.local")).toEqual({ kind: "node", node: "worker-a" });
    const g = await ca.issueClientCertificate({ kind: "gateway", namespace: "shop", name: "inventory-waypoint" });
    expect(callerFromIdentity(g.identity, "cluster.local")).toEqual({ kind: "gateway", namespace: "shop", name: "inventory-waypoint" });
    expect((g.notAfter.getTime() - Date.now()) / 1000).toBeLessThanOrEqual(3601);
    await expect(ca.issueClientCertificate({ kind: "node", node: "a b" })).rejects.toThrow("Cannot name node/a b");
  });

  test("serving certificate for 15012 carries the DNS and IP names given", async () => {
    const s = await ca.serverCertificate(["localhost", "127.0.0.1", "[::1]", "Control.Example"]);
    const n = new NodeX509(s.certPem);
    expect(n.subjectAltName).toBe("URI:spiffe://cluster.local/mesh/control, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:control.example");
    expect(n.checkHost("localhost")).toBe("localhost");
    expect(n.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(n.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(n.ca).toBe(false);
    const d = tmp();
    writeFileSync(join(d, "root.pem"), ca.rootPem);
    writeFileSync(join(d, "srv.pem"), s.certPem);
    expect(openssl(["verify", "-CAfile", "root.pem", "-purpose", "sslserver", "srv.pem"], d)).toContain("OK");
  });

  test("an incomplete root (key missing) is an error, never silently replaced", async () => {
    const d = tmp();
    await CertificateAuthority.open(d);
    rmSync(join(d, "ca", "root-key.pem"));
    await expect(CertificateAuthority.open(d)).rejects.toThrow("root-key.pem is missing");
  });
});

describe("trust domain", () => {
  test("a CA of another trust domain names it in its root and signs only its own identities", async () => {
    const ca = await CertificateAuthority.open(tmp(), { trustDomain: "example.org", defaultTtlSeconds: 600 });
    expect(new NodeX509(ca.rootPem).subjectAltName).toBe("URI:spiffe://example.org");
    const id = "spiffe://example.org/ns/a/sa/b";
    const csr = (await createCsr(id)).csrPem;
    const t0 = Date.now();
    const s = await ca.signCsr(csr, { identity: id });
    expectSvid(s.certPem, id, 600, t0);
    expect(validateSvid(s.chainPem, ca.trustBundlePem, { expectedTrustDomain: "example.org" }).ok).toBe(true);
    expect(validateSvid(s.chainPem, ca.trustBundlePem, { expectedTrustDomain: "cluster.local" }).ok).toBe(false);
    await expect(ca.signCsr((await createCsr(ID)).csrPem, { identity: ID })).rejects.toThrow('trust domain "example.org"');
    await expect(CertificateAuthority.open(tmp(), { trustDomain: "Bad_Domain:1" })).rejects.toThrow("Invalid trust domain");
  });
});

describe("root rotation", () => {
  test("add, activate, remove: bundle holds both roots during the overlap", async () => {
    const dir = tmp();
    const ca = await CertificateAuthority.open(dir);
    const oldRoot = ca.rootPem;
    const seen: number[] = [];
    ca.onTrustBundleChange((b) => seen.push(certificatePems(b).length));
    const { csrPem } = await createCsr(ID);
    const before = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 60 });

    const newRoot = await ca.addRoot();
    expect(ca.rootPem).toBe(oldRoot); // not signing yet
    expect(certificatePems(ca.trustBundlePem)).toEqual([oldRoot, newRoot]);
    expect(readFileSync(join(dir, "root-cert.pem"), "utf8")).toBe(ca.trustBundlePem);
    // A restart in the middle of a rotation keeps the pending root.
    const reopened = await CertificateAuthority.open(dir);
    expect(reopened.rootPem).toBe(oldRoot);
    expect(certificatePems(reopened.trustBundlePem).sort()).toEqual([oldRoot, newRoot].sort());

    await ca.activateRoot();
    expect(ca.rootPem).toBe(newRoot);
    const after = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 60 });
    // Both generations validate against the overlap bundle, each only against its own root.
    expect(validateSvid(before.chainPem, ca.trustBundlePem).ok).toBe(true);
    expect(validateSvid(after.chainPem, ca.trustBundlePem).ok).toBe(true);
    expect(validateSvid(after.chainPem, oldRoot).ok).toBe(false);
    expect(() => ca.removeRoot(newRoot)).toThrow("active root");

    expect(ca.removeRoot(oldRoot)).toBe(true);
    expect(certificatePems(ca.trustBundlePem)).toEqual([newRoot]);
    expect(validateSvid(before.chainPem, ca.trustBundlePem).ok).toBe(false);
    expect(seen).toEqual([2, 2, 1]);
    const restarted = await CertificateAuthority.open(dir);
    expect(restarted.rootPem).toBe(newRoot);
    expect(certificatePems(restarted.trustBundlePem)).toEqual([newRoot]);
  });
});

describe("plug-in CA (Istio cacerts layout)", () => {
  /** An RSA root and an EC intermediate made with openssl, like an operator's own PKI. */
  function makePki(d: string) {
    writeFileSync(join(d, "root.cnf"), "[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n");
    writeFileSync(
      join(d, "int.cnf"),
      "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=URI:spiffe://cluster.local\n",
    );
    openssl(["genrsa", "-traditional", "-out", "root-key.pem", "2048"], d);
    openssl(["req", "-x509", "-new", "-key", "root-key.pem", "-subj", "/O=Example Corp/CN=Example Root CA", "-days", "3650", "-config", "root.cnf", "-extensions", "v3", "-out", "root-cert.pem"], d);
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], d); // SEC1 "EC PRIVATE KEY"
    openssl(["req", "-new", "-key", "ca-key.pem", "-subj", "/O=Example Corp/CN=Mesh Intermediate CA", "-out", "ca.csr"], d);
    openssl(["x509", "-req", "-in", "ca.csr", "-CA", "root-cert.pem", "-CAkey", "root-key.pem", "-CAcreateserial", "-days", "730", "-extfile", "int.cnf", "-extensions", "v3", "-out", "ca-cert.pem"], d);
    const cacerts = join(d, "data", "cacerts");
    mkdirSync(cacerts, { recursive: true });
    for (const f of ["ca-cert.pem", "ca-key.pem", "root-cert.pem"]) writeFileSync(join(cacerts, f), readFileSync(join(d, f)));
    writeFileSync(join(cacerts, "cert-chain.pem"), readFileSync(join(d, "ca-cert.pem"), "utf8") + readFileSync(join(d, "root-cert.pem"), "utf8"));
    return join(d, "data");
  }

  test("signs with the intermediate, puts it in every chain, writes the plug-in root", async () => {
    const d = tmp();
    const dataDir = makePki(d);
    const ca = await CertificateAuthority.open(dataDir);
    expect(ca.pluggedIn).toBe(true);
    const rootPem = readFileSync(join(d, "root-cert.pem"), "utf8");
    expect(certificatePems(readFileSync(join(dataDir, "root-cert.pem"), "utf8"))).toEqual(certificatePems(rootPem));
    expect(ca.rootPem).toBe(certificatePems(rootPem)[0]!);

    const { csrPem, keyPem } = await createCsr(ID);
    const t0 = Date.now();
    const s = await ca.signCsr(csrPem, { identity: ID, ttlSeconds: 3600 });
    expectSvid(s.certPem, ID, 3600, t0);
    const chain = certificatePems(s.chainPem);
    expect(chain.length).toBe(2);
    expect(chain[1]).toBe(certificatePems(readFileSync(join(d, "ca-cert.pem"), "utf8"))[0]!);
    expect(new NodeX509(s.certPem).issuer).toBe(new NodeX509(chain[1]!).subject);
    expect(validateSvid(s.chainPem, ca.trustBundlePem, { keyPem }).ok).toBe(true);
    // The leaf alone does not reach the root: the intermediate in the chain is what makes it verify.
    expect(validateSvid(s.certPem, ca.trustBundlePem).ok).toBe(false);

    writeFileSync(join(d, "leaf.pem"), s.certPem);
    writeFileSync(join(d, "chain.pem"), chain.slice(1).join(""));
    expect(openssl(["verify", "-CAfile", "root-cert.pem", "-untrusted", "chain.pem", "leaf.pem"], d)).toContain("leaf.pem: OK");
    expect(() => openssl(["verify", "-CAfile", "root-cert.pem", "leaf.pem"], d)).toThrow();
    await expect(ca.rotateRoot()).rejects.toThrow("plug-in CA");
  });

  test("incomplete or inconsistent layouts are refused with the reason", async () => {
    const d = tmp();
    const dataDir = makePki(d);
    const cacerts = join(dataDir, "cacerts");
    rmSync(join(cacerts, "cert-chain.pem"));
    await expect(CertificateAuthority.open(dataDir)).rejects.toThrow("missing cert-chain.pem");
    writeFileSync(join(cacerts, "cert-chain.pem"), readFileSync(join(d, "ca-cert.pem")));
    writeFileSync(join(cacerts, "ca-key.pem"), readFileSync(join(d, "root-key.pem"))); // wrong key
    await expect(CertificateAuthority.open(dataDir)).rejects.toThrow("is not the private key of");
    writeFileSync(join(cacerts, "ca-key.pem"), readFileSync(join(d, "ca-key.pem")));
    const other = await CertificateAuthority.open(tmp());
    writeFileSync(join(cacerts, "root-cert.pem"), other.rootPem); // a root that did not sign the intermediate
    await expect(CertificateAuthority.open(dataDir)).rejects.toThrow("do not chain to root-cert.pem");
  });
});
