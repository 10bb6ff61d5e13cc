/** Process-level metrics, readiness and admin servers, and the contract between a role and the process. */
export * from "./servers.ts";
// The proxies' start-up (ztunnel/mod.ts, waypoint/mod.ts) still takes splitAddr from here; it lives in core.
export { splitAddr } from "../core/mod.ts";
export * from "./auth.ts";
export * from "./client.ts";
