import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InstanceRegistry } from "./instances.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-instances-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("another live instance keeps the rules; records of dead or reused PIDs are dropped", async () => {
  const reg = new InstanceRegistry(dir, "node-a");
  reg.register();
  expect(reg.others()).toEqual([]);
  // A live process of ours (a child), recorded the way a second ztunnel records itself.
  const child = Bun.spawn(["sleep", "30"]);
  try {
    const other = new InstanceRegistry(dir, "node-a");
    // Registering as another process: write its record by hand (register() records the caller).
    const stat = await Bun.file(`/proc/${child.pid}/stat`).text();
    const startTime = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    writeFileSync(join(other.dir, String(child.pid)), startTime!);
    expect(reg.others()).toEqual([child.pid]);
    // The same PID with another start time is somebody else: not an instance.
    writeFileSync(join(other.dir, String(child.pid)), "1");
    expect(reg.others()).toEqual([]);
    expect(readdirSync(reg.dir)).toEqual([String(process.pid)]);
    // A record of a process that is gone is dropped too.
    writeFileSync(join(other.dir, "999999999"), "5");
    expect(reg.others()).toEqual([]);
  } finally {
    child.kill();
    await child.exited;
  }
  reg.unregister();
  expect(existsSync(reg.dir)).toBe(false);
});

test("instances are counted per node (and per network namespace)", () => {
  const a = new InstanceRegistry(dir, "node-a");
  const b = new InstanceRegistry(dir, "node-b");
  expect(a.dir).not.toBe(b.dir);
  expect(a.dir).toContain("-node-a");
});

