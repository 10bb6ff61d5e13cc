import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const lab: Command = {
  name: "lab",
  summary: "a multi-node mesh on one Linux machine in network namespaces",
  usage: "mesh lab up FILE | apply FILE | exec [NS/]POD|node/NAME -- CMD... | status | down",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh lab: not available in this build yet\n");
    return 1;
  },
};
