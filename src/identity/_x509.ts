/**
 * The one place that loads @peculiar/x509: after the Reflect metadata shim, with WebCrypto as its provider.
 * A dynamic import, because Bun evaluates a CommonJS dependency graph (x509 -> tsyringe) before the ES
 * modules that import it, so a static import would run tsyringe before the shim.
 */
import "./_reflect.ts";

export const x509: typeof import("@peculiar/x509") = await import("@peculiar/x509");
x509.cryptoProvider.set(globalThis.crypto);
