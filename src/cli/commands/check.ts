import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const check: Command = {
  name: "check",
  summary: "lint mesh configuration (Istio and Gateway API YAML): file:line:col diagnostics",
  usage: "mesh check FILE|DIR... [--format text|json]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh check: not available in this build yet\n");
    return 1;
  },
};
