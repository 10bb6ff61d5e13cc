/**
 * How the lab runs things: as root, with this very mesh executable (pod commands that say "mesh" get it
 * too, through a bin directory first in PATH), and with an environment free of the caller's MESH_*
 * variables (a `mesh run` child would read them as its own flags).
 */
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new MeshError(
      ErrorCode.NotRoot,
      `${what} needs root: it creates network namespaces, links and iptables rules. Run it with sudo (sudo mesh lab ...)`,
    );
  }
}

/** argv prefix that runs this mesh: the compiled executable itself, or bun with the CLI's entry file. */
export function currentMeshCommand(): string[] {
  const exe = process.execPath;
  const name = basename(exe);
  if (name === "bun" || name === "bun.exe" || name.startsWith("bun-")) {
    return [exe, Bun.main];
  }
  return [exe];
}

/** Makes `dir/mesh` run `mesh` (a symlink to the executable, or a script around bun + entry file). */
export function installMeshShim(dir: string, mesh: string[]): void {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, "mesh");
  if (existsSync(target)) rmSync(target);
  if (mesh.length === 1) {
    symlinkSync(mesh[0]!, target);
  } else {
    const quoted = mesh.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    writeFileSync(target, `#!/bin/sh\nexec ${quoted} "$@"\n`);
    chmodSync(target, 0o755);
  }
}

const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Environment for lab processes: the caller's, minus MESH_* flags (log level kept), with extra vars. */
export function childEnv(binDir: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith("MESH_") && k !== "MESH_LOG_LEVEL") continue;
    env[k] = v;
  }
  env.PATH = `${binDir}:${process.env.PATH ?? BASE_PATH}`;
  return { ...env, ...extra };
}
