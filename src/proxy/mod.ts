/**
 * The shared tier under the two proxies (ztunnel and waypoint): what every proxy does before and beside its
 * own data path, written once. Responsible for a proxy's link to the control plane: reading its bootstrap
 * files (--ca-cert, --token-file), the config client, the workload certificates signed through that
 * client, applying the trust bundle and MeshConfig.rotationFraction of each configuration, waiting for the
 * first configuration at start-up, the connection logs, the control-plane status for config_dump, and
 * stopping all of it. Not responsible for what a role builds from the configuration (its state, listeners,
 * readiness): the roles keep that and stay out of each other's way.
 *
 * @example
 * const agent = new ProxyAgent({ proxy: { kind: "ztunnel", node }, controlPlane, caCert, tokenFile, dataDir });
 * const initDone = agent.start({
 *   onUpdate: (view, version) => state.replace(view.model, version),
 *   stopping: () => stopping,
 *   configured: async () => listen(),
 * });
 */
export { readBootstrap, type Bootstrap } from "./bootstrap.ts";
export { type AgentStart, type ControlPlaneClient, ProxyAgent, type ProxyAgentOptions } from "./agent.ts";
export { FlowRing, type FlowRingOptions, policyOfReason } from "./flows.ts";
