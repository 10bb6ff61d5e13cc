/** The normalized mesh state and its indexes. */
export * from "./types.ts";
export * from "./index.ts";
export * from "./attach.ts";
export * from "./attributes.ts";
export * from "./spiffe.ts";
export { endpointPort, readyEndpoints, resolveTargetPort, type ReadyEndpoint } from "./endpoints.ts";
export * from "./enforcement.ts";
export { allocateVips, isAutoVip, VIP_RANGE } from "./vip.ts";
export { buildRegistry, entryOfService, entryService, hostMatches, type Registry, type RegistryHost } from "./registry.ts";
