import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { certificateFields, KeyUsage } from "./_der.ts";
import { certificatePems, pemBlocks } from "./_pem.ts";
import { x509 } from "./_x509.ts";
import { createCsr } from "./csr.ts";

const ID = "spiffe://cluster.local/ns/shop/sa/api";

/** The CSR's subjectAltName extension, read as the CA reads it. */
function sanOf(csr: InstanceType<typeof x509.Pkcs10CertificateRequest>) {
  const ext = csr.extensions.find((e) => e.type === "2.5.29.17")!;
  return { critical: ext.critical, names: new x509.SubjectAlternativeNameExtension(ext.rawData).names.toJSON() };
}

describe("createCsr (DER built without an X.509 library)", () => {
  test("an independent parser reads it: EC P-256, empty subject, one critical URI SAN, a signature that verifies", async () => {
    const { csrPem, keys } = await createCsr(ID);
    expect(csrPem).toStartWith("-----BEGIN CERTIFICATE REQUEST-----\n");
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe("");
    expect((csr.publicKey.algorithm as EcKeyAlgorithm).namedCurve).toBe("P-256");
    expect(Buffer.from(csr.publicKey.rawData)).toEqual(Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey)));
    expect(csr.extensions.length).toBe(1);
    expect(sanOf(csr)).toEqual({ critical: true, names: [{ type: "url", value: ID }] });
  });

  test("several SANs of each kind, in order", async () => {
    const sans = [
      { type: "url" as const, value: ID },
      { type: "dns" as const, value: "api.shop" },
      { type: "ip" as const, value: "10.1.2.3" },
      { type: "ip" as const, value: "fd00::1:2" },
    ];
    const csr = new x509.Pkcs10CertificateRequest((await createCsr(ID, { sans })).csrPem);
    expect(await csr.verify()).toBe(true);
    expect(sanOf(csr).names).toEqual(sans);
  });

  test("a tampered request does not verify", async () => {
    const der = pemBlocks((await createCsr(ID)).csrPem)[0]!.der;
    const at = Buffer.from(der).indexOf(Buffer.from(ID)); // inside the signed part
    der[at + ID.length - 1] ^= 1;
    expect(await new x509.Pkcs10CertificateRequest(der as Uint8Array<ArrayBuffer>).verify()).toBe(false);
  });
});

describe("certificateFields agrees with @peculiar/x509", () => {
  const dir = join(import.meta.dir, "testdata", "spiffe");
  const ders = readdirSync(dir).flatMap((f) => certificatePems(readFileSync(join(dir, f), "utf8"))).map((p) => pemBlocks(p)[0]!.der);
  test.each(ders.map((d, i) => [i, d] as const))("test vector certificate %d", (_i, der) => {
    let px;
    try {
      px = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
    } catch {
      expect(() => certificateFields(der)).toThrow();
      return;
    }
    const f = certificateFields(der);
    expect(f.notBefore).toEqual(px.notBefore);
    expect(f.notAfter).toEqual(px.notAfter);
    expect(f.serial).toBe(px.serialNumber.toUpperCase());
    const bc = px.getExtension(x509.BasicConstraintsExtension);
    expect(f.basicConstraints).toEqual(bc ? { ca: bc.ca, pathLength: bc.pathLength } : undefined);
    expect(f.keyUsage).toBe(px.getExtension(x509.KeyUsagesExtension)?.usages);
    const sans = px.getExtensions(x509.SubjectAlternativeNameExtension).flatMap((e) => e.names.items.filter((n) => n.type === "url").map((n) => n.value));
    expect(f.uris).toEqual(sans);
    expect(KeyUsage.keyCertSign).toBe(x509.KeyUsageFlags.keyCertSign);
    expect(KeyUsage.cRLSign).toBe(x509.KeyUsageFlags.cRLSign);
    expect(KeyUsage.digitalSignature).toBe(x509.KeyUsageFlags.digitalSignature);
  });
});
