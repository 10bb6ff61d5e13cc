/** The valibot schemas of every kind mesh reads, one file per API group. */
export { isIpAddress, isIpBlock, isPortValue } from "./common.ts";
export { namespaceSchema, podSchema, serviceAccountSchema, serviceSchema } from "./core.ts";
export { gatewaySchema, httpRouteSchema, referenceGrantSchema } from "./gateway.ts";
export { authorizationPolicySchema, peerAuthenticationSchema, requestAuthenticationSchema, workloadEntrySchema } from "./istio.ts";
export { meshConfigSchema } from "./mesh.ts";
export { destinationRuleSchema, isServiceEntryHost, serviceEntrySchema } from "./networking.ts";
export { externalHostSchema } from "./lab.ts";
