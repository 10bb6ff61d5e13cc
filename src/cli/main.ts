#!/usr/bin/env bun
/**
 * The mesh executable's entry point: picks the subcommand, parses its flags, prints help.
 * Each subcommand lives in ./commands/<name>.ts and is listed once in ./commands/mod.ts, which loads only
 * the one asked for.
 */
import { helpText, parseArgs } from "./args.ts";
import type { CommandIO } from "./command.ts";
import { MeshError } from "../core/mod.ts";
import { commands } from "./commands/mod.ts";

const io: CommandIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

async function usage(): Promise<string> {
  const all = await Promise.all(Object.values(commands).map((load) => load()));
  const w = Math.max(...all.map((c) => c.name.length));
  return [
    "mesh: a zero-trust service mesh (ztunnel, waypoint and control roles in one binary)",
    "",
    "Usage: mesh COMMAND [flags]   (mesh COMMAND --help for details)",
    "",
    "Commands:",
    ...all.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    "",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.stdout(await usage());
    return name ? 0 : 2;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    io.stderr(`mesh: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  const cmd = await load();
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
