import type { Command } from "../command.ts";

// Placeholder until its owner lands the real command.
export const httpbin: Command = {
  name: "httpbin",
  summary: "a built-in httpbin-style test server",
  usage: "mesh httpbin --port N",
  flags: [],
  async run(_args, io) {
    io.stderr("mesh httpbin: not available in this build yet\n");
    return 1;
  },
};
