/**
 * Processes that outlive the command that started them (lab components, pod commands), recorded as a PID
 * plus the kernel's start time for that PID. A PID alone is not an identity: after a crash and a reboot
 * or a long wait the number may belong to someone else, and stopping it would kill an innocent process.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { runCommand } from "./exec.ts";

export interface ProcessIdentity {
  pid: number;
  /** field 22 of /proc/PID/stat: clock ticks after boot when the process started */
  startTime: number;
}

/** Start time of a live process, or undefined if there is no such process (or it is a zombie). */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after its closing ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}

/** Whether the recorded process is still the same live process. */
export function isRunning(p: ProcessIdentity): boolean {
  return processStartTime(p.pid) === p.startTime;
}

export interface DetachedOptions {
  /** file that receives stdout and stderr (appended) */
  logFile: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/**
 * Starts a process in its own session (so it survives the caller and its whole group can be signalled)
 * with output appended to a log file. Returns its identity once the kernel knows its start time.
 */
export function spawnDetached(argv: string[], options: DetachedOptions): ProcessIdentity {
  const fd = openSync(options.logFile, "a");
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: options.env as NodeJS.ProcessEnv | undefined,
      cwd: options.cwd,
    });
    if (child.pid === undefined) {
      throw new MeshError(ErrorCode.Platform, `Could not start ${argv[0]}: see ${options.logFile}`);
    }
    child.unref();
    const startTime = processStartTime(child.pid);
    if (startTime === undefined) {
      throw new MeshError(ErrorCode.Platform, `${argv.join(" ")} exited at once: see ${options.logFile}`);
    }
    return { pid: child.pid, startTime };
  } finally {
    closeSync(fd);
  }
}

/**
 * Stops a recorded process and its process group: SIGTERM, then SIGKILL after `graceMs`. Does nothing
 * if the PID now belongs to another process. Returns whether it was running.
 */
export async function stopProcess(p: ProcessIdentity, graceMs = 3000): Promise<boolean> {
  if (!isRunning(p)) return false;
  signalGroup(p, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isRunning(p) && !groupAlive(p.pid)) return true;
    await Bun.sleep(25);
  }
  signalGroup(p, "SIGKILL");
  const hard = Date.now() + 2000;
  while (isRunning(p) && Date.now() < hard) await Bun.sleep(25);
  return true;
}

function signalGroup(p: ProcessIdentity, signal: NodeJS.Signals): void {
  // The group id is the leader's PID (spawnDetached made it a session leader); only signal the group
  // while its leader is still the recorded process, so a reused number is never hit.
  if (!isRunning(p)) {
    if (groupAlive(p.pid)) tryKill(-p.pid, signal);
    return;
  }
  if (!tryKill(-p.pid, signal)) tryKill(p.pid, signal);
}

function tryKill(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether any non-zombie process is in the group. kill(-pgid, 0) would also count zombies, which linger
 * until their (re)parent reaps them: after the lab's own CLI exits, that is PID 1, which may be slow.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  for (const d of readdirSync("/proc")) {
    if (d.charCodeAt(0) > 57) continue; // not a PID
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields: state(0) ppid(1) pgrp(2)
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
  }
  return false;
}

/** PIDs of the processes whose network namespace is the named one (`ip netns pids`). */
export function pidsInNetns(netns: string): number[] {
  const r = runCommand(["ip", "netns", "pids", netns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

/**
 * Kills (SIGKILL) every process left in a network namespace, e.g. the children of a crashed lab or a
 * command started by `lab exec`. Waits until none is left or `timeoutMs` passes; returns those killed.
 */
export async function killNetnsProcesses(netns: string, timeoutMs = 3000): Promise<number[]> {
  const killed = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = pidsInNetns(netns).filter((pid) => processStartTime(pid) !== undefined);
    if (!pids.length || Date.now() > deadline) break;
    for (const pid of pids) if (tryKill(pid, "SIGKILL")) killed.add(pid);
    await Bun.sleep(25);
  }
  return [...killed];
}

/** The network namespace inode a process is in, e.g. "net:[4026532281]" (for tests and diagnostics). */
export function netnsOfProcess(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}
