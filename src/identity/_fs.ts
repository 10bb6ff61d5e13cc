/** Small file helpers for key material (private to src/identity). */
import { existsSync, readFileSync } from "node:fs";

/** Written through a temporary file and a rename, so a crash never leaves half a key or certificate. */
export { writeFileAtomic } from "../core/mod.ts";

export function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}
