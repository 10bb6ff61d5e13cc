/** Traffic capture: the iptables rules that hand a node's or host's TCP to the ztunnel, and their removal. */
export * from "./rules.ts";
export * from "./iptables.ts";
export * from "./spec.ts";
export * from "./keeper.ts";
