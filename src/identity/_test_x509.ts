/** @peculiar/x509 with the Reflect shim it needs, for tests that make certificates (product code: ca.ts only). */
export { x509 } from "./_x509.ts";
