/**
 * Server certificates as an HTTPS server outside the mesh has them (openssl): a CA (`ca.pem`), and per host
 * `<name>.pem` and `<name>.key`, either signed by that CA or self-signed (a server the CA does not vouch
 * for). Short-lived: for the lab's external hosts and for tests.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { runCommand } from "./exec.ts";

export interface ServerCertificate {
  /** File name stem: `<name>.pem`, `<name>.key`. */
  name: string;
  /** The DNS name in its subjectAltName. */
  host: string;
  /** Signed by the lab CA (default) or self-signed. */
  selfSigned?: boolean;
}

export function writeServerCertificates(dir: string, certs: ServerCertificate[]): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const at = (f: string) => join(dir, f);
  const openssl = (args: string[]) => {
    const r = runCommand(["openssl", ...args], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new MeshError(ErrorCode.LabState, `openssl ${args.join(" ")} failed: ${r.stderr.trim()}`);
  };
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(["req", "-x509", ...key, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "7", "-subj", "/CN=mesh lab partner CA"]);
  for (const c of certs) {
    const san = `subjectAltName=DNS:${c.host}`;
    if (c.selfSigned) {
      openssl(["req", "-x509", ...key, "-keyout", at(`${c.name}.key`), "-out", at(`${c.name}.pem`), "-days", "7", "-subj", `/CN=${c.host}`, "-addext", san]);
      continue;
    }
    openssl(["req", ...key, "-keyout", at(`${c.name}.key`), "-out", at(`${c.name}.csr`), "-subj", `/CN=${c.host}`]);
    writeFileSync(at(`${c.name}.ext`), `${san}\n`);
    openssl(["x509", "-req", "-in", at(`${c.name}.csr`), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-out", at(`${c.name}.pem`), "-days", "7", "-extfile", at(`${c.name}.ext`)]);
  }
}
