import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const token: Command = {
  name: "token",
  summary: "create bootstrap tokens for ztunnels, waypoints and admins",
  usage: "mesh token create --data-dir DIR (--node NAME | --gateway NS/NAME | --admin) [--ttl DURATION]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh token: not available in this build yet\n");
    return 1;
  },
};
