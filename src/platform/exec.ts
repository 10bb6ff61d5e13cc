/**
 * Running short system commands (ip, iptables, sysctl) synchronously and turning a failure into a
 * MeshError that quotes the command and its stderr, so the user sees what the kernel refused.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its exit code and output; never throws for a non-zero exit. */
export function runCommand(argv: string[], options: { input?: string; timeoutMs?: number } = {}): CommandResult {
  const r = Bun.spawnSync(argv, {
    stdin: options.input !== undefined ? new TextEncoder().encode(options.input) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: options.timeoutMs ?? 30_000,
  });
  return {
    code: r.exitCode ?? (r.signalCode ? 128 : 1),
    stdout: r.stdout?.toString() ?? "",
    stderr: r.stderr?.toString() ?? "",
  };
}

/** Runs a command that must succeed; returns its stdout. */
export function runChecked(argv: string[], options: { input?: string; timeoutMs?: number } = {}): string {
  const r = runCommand(argv, options);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.Platform,
      `Command failed (exit ${r.code}): ${argv.join(" ")}: ${r.stderr.trim() || r.stdout.trim() || "no output"}`,
    );
  }
  return r.stdout;
}
