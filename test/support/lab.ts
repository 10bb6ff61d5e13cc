/**
 * Shared by the lab's end-to-end tests: run dist/mesh, and take inventories of what exists on the
 * machine (namespaces, host links, host iptables rules, processes inside given namespaces) so a test
 * can prove that `mesh lab down` left nothing behind.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { waitFor } from "./wait.ts";

export const ROOT = resolve(import.meta.dir, "..", "..");
export const MESH = join(ROOT, "dist", "mesh");
export const isRoot = process.getuid?.() === 0;

/** Builds dist/mesh if it is missing (test/run.ts builds it before the end-to-end tests). */
export function ensureBuilt(): void {
  if (existsSync(MESH)) return;
  const r = Bun.spawnSync([process.execPath, "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`build failed: ${r.stderr.toString()}`);
}

/**
 * Why a lab test cannot run here, or undefined when it can: the lab needs root, and dist/mesh (built
 * here when missing) must have `roles` (default: every role; a build may leave some out).
 */
export async function labUnavailable(roles?: string[]): Promise<string | undefined> {
  if (!isRoot) return "the lab needs root";
  ensureBuilt();
  const { missingRoles } = await import("../../src/lab/mod.ts");
  const missing = (await missingRoles(MESH)).filter((r) => !roles || roles.includes(r));
  return missing.length ? `this build lacks the ${missing.join(", ")} role(s)` : undefined;
}

/** Whether a lab test file (`what`) must skip, said on the console with the reason: for describe.skipIf. */
export async function skipLab(what: string, roles?: string[]): Promise<boolean> {
  const why = await labUnavailable(roles);
  if (why) console.log(`${what}: SKIPPED: ${why}`);
  return why !== undefined;
}

/** A prefix no other test run uses (lowercase letters and digits). */
export function uniquePrefix(tag: string): string {
  return `${tag}${(process.pid % 100000).toString(36)}${Math.random().toString(36).slice(2, 6)}`.slice(0, 16);
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs dist/mesh with a hard timeout; never throws for a non-zero exit. */
export async function mesh(args: string[], timeoutMs = 60_000, env?: Record<string, string>): Promise<Run> {
  const p = Bun.spawn([MESH, ...args], { stdout: "pipe", stderr: "pipe", env: env ?? (process.env as Record<string, string>) });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export function sh(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString();
}

export function netnsNames(): string[] {
  const out = sh(["ip", "-json", "netns", "list"]).trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

export interface Inventory {
  hostLinks: string[];
  hostIptables: string;
  etcNetns: string[];
  etcNetnsExists: boolean;
}

/** What a lab must never change in the host namespace. */
export function hostInventory(): Inventory {
  const links = JSON.parse(sh(["ip", "-json", "link", "show"]) || "[]") as { ifname: string }[];
  const rules = sh(["iptables-save"])
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, "")) // packet counters change by themselves
    .join("\n");
  return {
    hostLinks: links.map((l) => l.ifname).sort(),
    hostIptables: rules,
    etcNetns: existsSync("/etc/netns") ? readdirSync("/etc/netns").sort() : [],
    etcNetnsExists: existsSync("/etc/netns"),
  };
}

/** The kernel's identity of each named namespace (the inode `ip netns` keeps under /run/netns). */
export function netnsInodes(names: string[]): Set<number> {
  const out = new Set<number>();
  for (const n of names) {
    try {
      out.add(statSync(`/run/netns/${n}`).ino);
    } catch {
      // already gone
    }
  }
  return out;
}

/** PIDs of live processes whose network namespace is one of `inodes`. */
export function processesIn(inodes: Set<number>): number[] {
  const found: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${d}/ns/net`));
      if (!m || !inodes.has(Number(m[1]))) continue;
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      found.push(Number(d));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** The instance record a ztunnel keeps while it runs (a SIGKILLed one leaves it behind). */
export function ztunnelRecord(netnsInode: number | string, node: string, pid: number): string {
  return `/run/mesh/ztunnel/${netnsInode}-${node}/${pid}`;
}

/** Removes a record a killed ztunnel left, and its directory when no other record is in it. */
export function removeZtunnelRecord(record: string): void {
  rmSync(record, { force: true });
  try {
    rmdirSync(dirname(record));
  } catch { /* not empty, or gone */ }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

export interface BoundPorts {
  /** The control role's listener ("control role started"), when the process runs that role. */
  control?: number;
  ready: number;
  admin: number;
  metrics?: number;
}

/**
 * The ports a `mesh run` process bound, read back from its JSON log (give it port 0 for each and
 * MESH_LOG_LEVEL=info). A port picked free by the test and handed to the process could be taken in
 * between by another process (the kernel hands out the same ephemeral ports to everyone), and the
 * admin, ready and metrics servers use SO_REUSEPORT: a second server on the port would silently share it.
 */
export async function boundPorts(log: string, timeoutMs = 30_000): Promise<BoundPorts> {
  const lines = () => (existsSync(log) ? readFileSync(log, "utf8") : "").split("\n").flatMap((l) => {
    try {
      return [JSON.parse(l) as { msg?: string; port?: number; roles?: string[]; ports?: { ready?: number; admin?: number; metrics?: number } }];
    } catch {
      return [];
    }
  });
  try {
    return await waitFor("the process's started line", () => {
      const all = lines();
      const started = all.find((l) => l.msg === "started");
      if (!started?.ports?.ready || !started.ports.admin) return undefined;
      const control = all.find((l) => l.msg === "control role started")?.port;
      if (started.roles?.includes("control") && !control) return undefined;
      return { control, ready: started.ports.ready, admin: started.ports.admin, metrics: started.ports.metrics };
    }, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}; ${log}:\n${existsSync(log) ? readFileSync(log, "utf8").slice(-3000) : "(no log)"}`);
  }
}

/** Last-resort cleanup for afterAll: down, then down --force for anything left with the prefix. */
export async function forceDown(prefix: string): Promise<void> {
  await mesh(["lab", "down", "--prefix", prefix], 60_000);
  if (netnsNames().some((n) => n.startsWith(`mlab.${prefix}-`))) {
    await mesh(["lab", "down", "--prefix", prefix, "--force"], 60_000);
  }
}
