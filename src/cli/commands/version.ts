import type { Command } from "../command.ts";
import pkg from "../../../package.json" with { type: "json" };

export const version: Command = {
  name: "version",
  summary: "print the version of this binary",
  usage: "mesh version [--format text|json]",
  flags: [{ name: "format", kind: "string", help: "text or json", default: "text" }],
  async run(args, io) {
    const info = { version: pkg.version, bun: typeof Bun !== "undefined" ? Bun.version : "unknown" };
    io.stdout(args.flags.format === "json" ? JSON.stringify(info) + "\n" : `mesh ${info.version} (bun ${info.bun})\n`);
    return 0;
  },
};
