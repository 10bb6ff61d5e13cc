import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const iptables: Command = {
  name: "iptables",
  summary: "inspect or remove the capture rules this mesh installed",
  usage: "mesh iptables cleanup [--redirect node|host]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh iptables: not available in this build yet\n");
    return 1;
  },
};
