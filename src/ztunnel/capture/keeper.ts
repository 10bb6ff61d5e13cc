/**
 * The capture rules one ztunnel keeps in place: installs them for the current view of the mesh,
 * refills them when the node's workloads change, verifies after each install, and removes them.
 */
import type { ModelIndex } from "../../model/mod.ts";
import { applyRules, removeRules, type Runner, verifyRules } from "./iptables.ts";
import { captureRules, type RuleSet } from "./rules.ts";
import { type CaptureChoice, captureSpecFor } from "./spec.ts";

export class CaptureRules {
  readonly #run: Runner;
  readonly #node: string;
  readonly #choice: CaptureChoice;
  #installed: RuleSet[] | undefined;
  #error: string | undefined;

  constructor(run: Runner, node: string, choice: CaptureChoice) {
    this.#run = run;
    this.#node = node;
    this.#choice = choice;
  }

  /** True once the rules for the latest view are installed and verified. */
  get ready(): boolean {
    return this.#installed !== undefined && this.#error === undefined;
  }

  /** Why the rules are not in place, if they are not. */
  get error(): string | undefined {
    return this.#error;
  }

  get installed(): RuleSet[] {
    return this.#installed ?? [];
  }

  /**
   * Installs the rules for `index` (a no-op when they did not change, unless `force`: someone changed
   * them behind our back). Never throws: see `error`.
   */
  sync(index: ModelIndex, force = false): boolean {
    const sets = captureRules(captureSpecFor(index, this.#node, this.#choice));
    if (!force && this.#installed && this.#error === undefined && JSON.stringify(sets) === JSON.stringify(this.#installed)) return true;
    try {
      for (const set of sets) applyRules(this.#run, set);
      const problems = sets.flatMap((s) => verifyRules(this.#run, s));
      if (problems.length) throw new Error(`installed rules do not match: ${problems.join("; ")}`);
      this.#installed = sets;
      this.#error = undefined;
      return true;
    } catch (e) {
      this.#error = (e as Error).message;
      return false;
    }
  }

  /** Differences between the kernel's rules and ours (empty when intact). */
  verify(): string[] {
    return (this.#installed ?? []).flatMap((s) => verifyRules(this.#run, s));
  }

  remove(): string[] {
    this.#installed = undefined;
    return removeRules(this.#run);
  }
}
