/**
 * mesh's runtime-neutral library: the configuration model and its validation, authorization policy
 * evaluation, HTTPRoute matching and SPIFFE helpers. No I/O and no runtime-specific API: importable
 * from Bun and from Deno (`deno check mod.ts`).
 */
export * from "./src/model/mod.ts";
export * from "./src/policy/mod.ts";
export * from "./src/route/mod.ts";
export * from "./src/config/mod.ts";
export * from "./src/explain/mod.ts";
