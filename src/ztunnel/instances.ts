/**
 * The ztunnel processes serving one node in one network namespace. A restart can overlap the old
 * and the new process (both listen with SO_REUSEPORT; the old one drains): the capture rules are
 * shared, so the one stopping removes them only when no other live instance remains.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processStartTime } from "../platform/mod.ts";

export class InstanceRegistry {
  readonly dir: string;
  readonly #self: string;

  /** `runDir` is shared by the instances (default /run/mesh); the set is per node and network namespace. */
  constructor(runDir: string, node: string) {
    let netns = "unknown";
    try {
      netns = String(statSync("/proc/self/ns/net").ino);
    } catch {
      // No /proc: one set per node.
    }
    this.dir = join(runDir, "ztunnel", `${netns}-${node.replace(/[^A-Za-z0-9._-]/g, "_")}`);
    this.#self = join(this.dir, String(process.pid));
  }

  register(): void {
    const record = String(processStartTime(process.pid) ?? 0);
    // Twice: a predecessor leaving may remove the (then empty) directory between our mkdir and write.
    for (let attempt = 0; ; attempt++) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(this.#self, record);
        return;
      } catch (e) {
        if (attempt > 0 || (e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
  }

  unregister(): void {
    rmSync(this.#self, { force: true });
    try {
      // The last one out removes the set's directory (one per node and namespace: labs make many).
      rmdirSync(this.dir);
    } catch {
      // Another instance's record is still there.
    }
  }

  /** Other live instances (stale records of dead processes are removed on the way). */
  others(): number[] {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const alive: number[] = [];
    for (const name of names) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      let recorded = NaN;
      try {
        recorded = Number(readFileSync(join(this.dir, name), "utf8"));
      } catch {
        continue;
      }
      const now = processStartTime(pid);
      // A PID alone can be reused: the start time proves it is still the same process.
      if (now !== undefined && (recorded === 0 || now === recorded)) alive.push(pid);
      else rmSync(join(this.dir, name), { force: true });
    }
    return alive;
  }
}
