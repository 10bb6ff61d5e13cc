/**
 * The command line: argument parsing and the subcommands. src/cli/main.ts is the executable's entry;
 * this door is for tests that drive a subcommand in-process.
 */
export { closest, envName, parseArgs } from "./args.ts";
import { commands } from "./commands/mod.ts";

export const run = await commands.run!();
export const status = await commands.status!();
