import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const run: Command = {
  name: "run",
  summary: "run one or more roles: control, ztunnel, waypoint, all",
  usage: "mesh run --role control|ztunnel|waypoint|all [flags]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh run: not available in this build yet\n");
    return 1;
  },
};
