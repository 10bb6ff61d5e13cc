import type { CommandSpec, Parsed } from "./args.ts";

/** A subcommand: its spec (flags, help) and what it does. Returns the process exit code. */
export interface Command extends CommandSpec {
  run(args: Parsed, io: CommandIO): Promise<number>;
}

export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}
