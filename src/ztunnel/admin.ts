/**
 * The ztunnel's admin routes on localhost:15000 (README "Ports"): /config_dump (what this ztunnel
 * believes: its view of the mesh, its capture rules, its connections) and /certs (the certificates it
 * holds for the workloads of its node). Read-only; never prints a private key.
 */
import { X509Certificate } from "node:crypto";
import type { Hono } from "hono";

export interface HeldCertificate {
  identity: string;
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

export interface AdminSources {
  configDump(): unknown;
  /** Identities this ztunnel should hold a certificate for. */
  identities(): string[];
  certificate(identity: string): HeldCertificate | undefined;
}

function splitPem(chain: string): string[] {
  return chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function certsReport(src: AdminSources, now = Date.now()): unknown {
  return {
    certificates: src.identities().sort().map((identity) => {
      const c = src.certificate(identity);
      if (!c) return { identity, state: "pending" };
      return {
        identity,
        state: now < c.notAfter.getTime() ? "valid" : "expired",
        serial: c.serial,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        chain: splitPem(c.chainPem).map((pem) => {
          const x = new X509Certificate(pem);
          return {
            subject: x.subject || undefined,
            subjectAltName: x.subjectAltName,
            issuer: x.issuer,
            serial: x.serialNumber,
            validFrom: new Date(x.validFrom).toISOString(),
            validTo: new Date(x.validTo).toISOString(),
            pem,
          };
        }),
      };
    }),
  };
}

export function registerAdminRoutes(app: Hono, src: AdminSources): void {
  app.get("/config_dump", (c) => c.json(src.configDump() as object));
  app.get("/certs", (c) => c.json(certsReport(src) as object));
}
