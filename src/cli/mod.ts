/**
 * The command line: argument parsing and the subcommands. src/cli/main.ts is the executable's entry;
 * this door is for tests that drive a subcommand in-process.
 */
export { closest, envName, parseArgs } from "./args.ts";
export { run, status } from "./commands/mod.ts";
