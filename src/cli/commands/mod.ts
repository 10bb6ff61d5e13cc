/**
 * The subcommands of `mesh`, one file each, loaded when used: a role started by `mesh run` then carries
 * only its own module graph, not the lab's, `check`'s or `explain`'s (each module loaded is resident memory
 * for the life of a proxy).
 */
import type { Command } from "../command.ts";

// One line per command; keep sorted.
export const commands: Readonly<Record<string, () => Promise<Command>>> = {
  check: async () => (await import("./check.ts")).check,
  describe: async () => (await import("./describe.ts")).describe,
  explain: async () => (await import("./explain.ts")).explain,
  httpbin: async () => (await import("./httpbin.ts")).httpbin,
  iptables: async () => (await import("./iptables.ts")).iptables,
  lab: async () => (await import("./lab.ts")).lab,
  observe: async () => (await import("./observe.ts")).observe,
  "proxy-config": async () => (await import("./proxy_config.ts")).proxyConfigCommand,
  "proxy-status": async () => (await import("./proxy_status.ts")).proxyStatusCommand,
  run: async () => (await import("./run.ts")).run,
  status: async () => (await import("./status.ts")).status,
  token: async () => (await import("./token.ts")).token,
  version: async () => (await import("./version.ts")).version,
};
