#!/usr/bin/env bun
/**
 * The mesh executable's entry point: picks the subcommand, parses its flags, prints help.
 * Each subcommand lives in ./commands/<name>.ts and is listed once below.
 */
import { helpText, parseArgs } from "./args.ts";
import type { Command, CommandIO } from "./command.ts";
import { MeshError } from "../core/mod.ts";
import { check } from "./commands/mod.ts";
import { describe } from "./commands/mod.ts";
import { explain } from "./commands/mod.ts";
import { httpbin } from "./commands/mod.ts";
import { iptables } from "./commands/mod.ts";
import { lab } from "./commands/mod.ts";
import { observe } from "./commands/mod.ts";
import { proxyConfigCommand } from "./commands/mod.ts";
import { proxyStatusCommand } from "./commands/mod.ts";
import { run } from "./commands/mod.ts";
import { status } from "./commands/mod.ts";
import { token } from "./commands/mod.ts";
import { version } from "./commands/mod.ts";
// One line per command; keep sorted.
const commands: Command[] = [
  check,
  describe,
  explain,
  httpbin,
  iptables,
  lab,
  observe,
  proxyConfigCommand,
  proxyStatusCommand,
  run,
  status,
  token,
  version,
];

const io: CommandIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

function usage(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    "mesh: a zero-trust service mesh (ztunnel, waypoint and control roles in one binary)",
    "",
    "Usage: mesh COMMAND [flags]   (mesh COMMAND --help for details)",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    "",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.stdout(usage());
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr(`mesh: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const dd = rest.indexOf("--");
  const own = dd >= 0 ? rest.slice(0, dd) : rest;
  if (own.includes("--help") || own.includes("-h")) {
    io.stdout(helpText(cmd));
    return 0;
  }
  try {
    return await cmd.run(parseArgs(rest, cmd), io);
  } catch (e) {
    if (e instanceof MeshError) {
      io.stderr(`mesh ${name}: ${e.message}\n`);
      return e.code === "MESH_USAGE" ? 2 : 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // Long-running roles never return; short commands exit with their code.
  process.exitCode = code;
}
