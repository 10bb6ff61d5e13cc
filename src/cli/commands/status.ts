import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const status: Command = {
  name: "status",
  summary: "control plane status: connected proxies, acknowledged versions, certificate expiry",
  usage: "mesh status [--control-plane HOST:15012] [--format text|json]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh status: not available in this build yet\n");
    return 1;
  },
};
