import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const explain: Command = {
  name: "explain",
  summary: "what the mesh would do with one request, and why",
  usage: "mesh explain --config FILE --from NS/SA|ip:ADDR --to SERVICE.NS:PORT|ADDR:PORT [--method M --path P --header K=V --jwt TOKEN] [--format text|json]",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh explain: not available in this build yet\n");
    return 1;
  },
};
