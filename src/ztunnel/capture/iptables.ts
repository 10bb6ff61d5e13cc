/**
 * Installs, verifies and removes the capture rules of ./rules.ts with iptables and iptables-restore, in
 * the network namespace the process runs in. Installing is idempotent (our chains are refilled
 * atomically; a jump is added only when missing); removing deletes only our jumps and chains.
 */
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { jumpArgs, OWNED_CHAINS, restoreInput, type Jump, type RuleSet } from "./rules.ts";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one command; injected so tests can run it inside a namespace (`ip netns exec NS ...`). */
export type Runner = (argv: string[], input?: string) => CommandResult;

export const localRunner: Runner = (argv, input) => {
  const r = Bun.spawnSync(argv, {
    stdin: input !== undefined ? new TextEncoder().encode(input) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 15_000,
  });
  return { code: r.exitCode ?? 1, stdout: r.stdout?.toString() ?? "", stderr: r.stderr?.toString() ?? "" };
};

/** A runner that runs every command inside a named network namespace. */
export function netnsRunner(netns: string, base: Runner = localRunner): Runner {
  return (argv, input) => base(["ip", "netns", "exec", netns, ...argv], input);
}

function bin(family: 4 | 6, restore = false): string {
  return (family === 6 ? "ip6tables" : "iptables") + (restore ? "-restore" : "");
}

function must(run: Runner, argv: string[], input?: string): string {
  const r = run(argv, input);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.Platform,
      `Capture rules: "${argv.join(" ")}" failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim() || "no output"}. ` +
        "The ztunnel needs CAP_NET_ADMIN and the iptables tools in its network namespace",
    );
  }
  return r.stdout;
}

function jumpExists(run: Runner, family: 4 | 6, j: Jump): boolean {
  return run([bin(family), "-w", "-t", j.table, "-C", j.from, ...jumpArgs(j)]).code === 0;
}

/** Installs one rule set (creating or refilling our chains, then adding missing jumps). */
export function applyRules(run: Runner, set: RuleSet): void {
  must(run, [bin(set.family, true), "-w", "--noflush"], restoreInput(set));
  for (const j of set.jumps) {
    // Insert first in the built-in chain: capture must see the packet before other nat rules rewrite it.
    if (!jumpExists(run, set.family, j)) must(run, [bin(set.family), "-w", "-t", j.table, "-I", j.from, "1", ...jumpArgs(j)]);
  }
}

/** The rules currently in one of our chains, as `iptables -S` prints them; undefined if the chain is missing. */
export function readChain(run: Runner, family: 4 | 6, chain: string): string[] | undefined {
  const r = run([bin(family), "-w", "-t", "nat", "-S", chain]);
  if (r.code !== 0) return undefined;
  return r.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("-A "));
}

/** Differences between what is installed and what `set` says; empty when they agree. */
export function verifyRules(run: Runner, set: RuleSet): string[] {
  const problems: string[] = [];
  for (const [chain, want] of Object.entries(set.chains)) {
    const have = readChain(run, set.family, chain);
    if (!have) {
      problems.push(`chain ${chain} is missing`);
      continue;
    }
    if (have.join("\n") !== want.join("\n")) {
      const missing = want.filter((r) => !have.includes(r));
      const extra = have.filter((r) => !want.includes(r));
      problems.push(
        `chain ${chain} differs: ${missing.length} missing, ${extra.length} unexpected` +
          (missing[0] ? ` (e.g. missing "${missing[0]}")` : extra[0] ? ` (e.g. unexpected "${extra[0]}")` : " (order)"),
      );
    }
  }
  for (const j of set.jumps) {
    if (!jumpExists(run, set.family, j)) problems.push(`jump ${j.from} -> ${j.to} is missing`);
  }
  return problems;
}

/**
 * Removes every jump into our chains and then the chains, for both families. Safe to run when nothing
 * is installed. Returns what it removed (for `mesh iptables cleanup`).
 */
export function removeRules(run: Runner, families: (4 | 6)[] = [4, 6]): string[] {
  const removed: string[] = [];
  for (const family of families) {
    // A family whose tool is missing has nothing of ours in it.
    if (run([bin(family), "-w", "-t", "nat", "-S"]).code !== 0) continue;
    for (const from of ["PREROUTING", "OUTPUT"] as const) {
      for (const to of OWNED_CHAINS) {
        const j: Jump = { table: "nat", from, to };
        // Bounded: a jump added N times is removed N times; stop if deleting stops working.
        for (let i = 0; i < 64 && jumpExists(run, family, j); i++) {
          must(run, [bin(family), "-w", "-t", "nat", "-D", from, ...jumpArgs(j)]);
          removed.push(`IPv${family} nat ${from} -> ${to}`);
        }
        // A jump without our comment (hand-made) into our chain would block deleting the chain.
        for (let i = 0; i < 64 && run([bin(family), "-w", "-t", "nat", "-C", from, "-j", to]).code === 0; i++) {
          must(run, [bin(family), "-w", "-t", "nat", "-D", from, "-j", to]);
          removed.push(`IPv${family} nat ${from} -> ${to}`);
        }
      }
    }
    for (const chain of OWNED_CHAINS) {
      if (readChain(run, family, chain) === undefined) continue;
      must(run, [bin(family), "-w", "-t", "nat", "-F", chain]);
      must(run, [bin(family), "-w", "-t", "nat", "-X", chain]);
      removed.push(`IPv${family} nat chain ${chain}`);
    }
  }
  return removed;
}
