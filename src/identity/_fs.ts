/** Small file helpers for key material (private to src/identity). */
import { mkdirSync, renameSync, writeFileSync, existsSync, readFileSync, chmodSync } from "node:fs";
import { dirname } from "node:path";

/** Writes through a temporary file and a rename, so a crash never leaves half a key or certificate. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed or (never) widened it
  renameSync(tmp, path);
}

export function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}
