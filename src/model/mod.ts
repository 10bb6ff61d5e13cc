/** The normalized mesh state and its indexes. */
export * from "./types.ts";
export * from "./index.ts";
export * from "./attach.ts";
export { L7_OPERATION_FIELDS, L7_SOURCE_FIELDS, conditionKeyKind, type ConditionKeyKind } from "./attributes.ts";
export * from "./spiffe.ts";
export { endpointPort, readyEndpoints, resolveTargetPort, type ReadyEndpoint } from "./endpoints.ts";
