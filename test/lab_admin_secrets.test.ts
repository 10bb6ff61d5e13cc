/**
 * `mesh lab down` removes the admin secrets (/run/mesh/admin/<netns inode>-<port>.secret) of its own
 * namespaces, even one left by a proxy killed with SIGKILL, and no other namespace's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminSecretDirs } from "../src/admin/mod.ts";
import { l4OnlyConfig } from "../src/lab/mod.ts";
import {
  forceDown,
  type KilledZtunnel,
  killLabZtunnel,
  labInfo,
  mesh,
  netnsInodes,
  netnsNames,
  removeKilledZtunnel,
  ROOT,
  skipLab,
  uniquePrefix,
  waitFor,
} from "./support/mod.ts";

const skip = await skipLab("test/lab_admin_secrets.test.ts", ["control", "ztunnel"]);

/** Secret files (and creation leftovers) in every admin secret directory, by the namespace inode they name. */
function secretsOf(inodes: Set<number>): string[] {
  const out: string[] = [];
  for (const dir of adminSecretDirs()) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const m = /^(\d+)-\d+\.secret/.exec(f);
      if (m && inodes.has(Number(m[1]))) out.push(join(dir, f));
    }
  }
  return out;
}

describe.skipIf(skip)("mesh lab down and the proxies' admin secrets", () => {
  const prefix = uniquePrefix("s");
  const P = ["--prefix", prefix];
  let tmp = "";
  const dummies: string[] = [];
  /** What the killed ztunnel leaves (its instance record; its secret is down's to remove). */
  let killed: KilledZtunnel | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "mesh-lab-secrets-"));
    const file = join(tmp, "l4.yaml");
    writeFileSync(file, l4OnlyConfig(readFileSync(join(ROOT, "config", "mesh-no-waypoint.yaml"), "utf8")));
    const r = await mesh(["lab", "up", file, ...P, "--timeout", "45"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
  }, 150_000);
  afterAll(async () => {
    await forceDown(prefix);
    for (const d of dummies) rmSync(d, { force: true });
    removeKilledZtunnel(killed);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 150_000);

  test("after a ztunnel is killed with SIGKILL, down removes every secret of the lab's namespaces and only those", async () => {
    const mine = netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`));
    const inodes = netnsInodes(mine);
    expect(inodes.size).toBe(mine.length);
    const info = labInfo(prefix);
    const ztInode = netnsInodes([info.processes.find((p) => p.id === "ztunnel/node-a")!.netns]);
    // The running ztunnel's admin API has its secret, named after its node's namespace.
    await waitFor("the ztunnel's admin secret", () => secretsOf(ztInode).length > 0, 10_000);

    killed = await killLabZtunnel(info, "node-a");
    // It could not clean up after itself.
    const left = secretsOf(ztInode);
    expect(left.length).toBeGreaterThan(0);

    // Secrets of namespaces that are not the lab's: an unrelated inode, and one whose digits start like a
    // lab namespace's (a prefix match would take it).
    const dir = adminSecretDirs()[0]!;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const first = [...inodes][0]!;
    let other = 4_000_000_000 + Math.floor(Math.random() * 1_000_000);
    while (inodes.has(other)) other++;
    for (const name of [`${other}-15000.secret`, `${first}7-15000.secret`]) {
      const path = join(dir, name);
      writeFileSync(path, "dummy-secret-of-another-namespace-0123456789abcdef\n", { mode: 0o600 });
      dummies.push(path);
    }

    const r = await mesh(["lab", "down", ...P], 60_000);
    expect(r.code).toBe(0);
    expect(netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`))).toEqual([]);
    expect(secretsOf(inodes)).toEqual([]);
    for (const f of left) expect(existsSync(f)).toBe(false);
    for (const d of dummies) expect(readFileSync(d, "utf8")).toBe("dummy-secret-of-another-namespace-0123456789abcdef\n");
  }, 90_000);
});
