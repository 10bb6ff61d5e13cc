/**
 * `npm run demo`: builds dist/mesh if it is missing or older than the sources, then runs the article's
 * walkthrough in the lab (src/lab/demo.ts) and leaves the lab up. Needs root (network namespaces).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { missingRoles, runDemo } from "../src/lab/mod.ts";

const root = resolve(import.meta.dir, "..");
const mesh = join(root, "dist", "mesh");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

if (process.getuid?.() !== 0) {
  console.error("npm run demo needs root: the lab creates network namespaces and iptables rules. Run: sudo npm run demo");
  process.exit(1);
}
if (!existsSync(mesh) || statSync(mesh).mtimeMs < Math.max(newestSource(join(root, "src")), statSync(join(root, "package.json")).mtimeMs)) {
  console.log("Building dist/mesh ...");
  const b = Bun.spawnSync([process.execPath, "run", "build"], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (b.exitCode !== 0) process.exit(1);
}
const missing = await missingRoles(mesh);
if (missing.length) {
  console.error(`This build of mesh lacks the ${missing.join(", ")} role(s) the demo needs (mesh run says "not available").`);
  process.exit(1);
}
const result = await runDemo({ mesh, root, print: (t) => process.stdout.write(t), color: process.stdout.isTTY === true });
process.exit(result.ok ? 0 : 1);
