/** Process-level metrics, readiness and admin servers, and the contract between a role and the process. */
export * from "./servers.ts";
export * from "./auth.ts";
export * from "./client.ts";
