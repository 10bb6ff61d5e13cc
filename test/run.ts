/**
 * The whole test suite, as `npm test` runs it: builds dist/mesh (the end-to-end tests run the real
 * binary), runs the unit tests beside the code (src/) and the end-to-end tests (test/), and ends with
 * one line `N passed, N failed[, N skipped]`. Skipped tests are counted apart, never as passed.
 *
 *   bun test/run.ts            everything
 *   bun test/run.ts src/hbone  only the tests under these paths
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";

function hasTests(path: string): boolean {
  if (statSync(path, { throwIfNoEntry: false })?.isFile()) return true;
  try {
    return readdirSync(path, { recursive: true }).some((f) => /\.test\.[tj]sx?$/.test(String(f)));
  } catch {
    return false;
  }
}

const bun = process.execPath;
const args = process.argv.slice(2);
const groups = args.length ? args : ["src", "test"];

if (!args.length || args.some((a) => a.startsWith("test"))) {
  const b = spawnSync(bun, ["run", "build"], { stdio: "inherit" });
  if (b.status !== 0) {
    console.log("build failed");
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

let passed = 0, failed = 0, skipped = 0, broken = 0;
for (const g of groups) {
  // bun test reads bare words as name filters: give it a path.
  const path = g.startsWith(".") || g.startsWith("/") ? g : `./${g}`;
  if (!hasTests(path)) {
    console.log(`\n=== ${g}: no test files`);
    continue;
  }
  console.log(`\n=== bun test ${path}`);
  const r = spawnSync(bun, ["test", "--timeout", "120000", path], {
    stdio: ["ignore", "inherit", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
  });
  const err = r.stderr?.toString() ?? "";
  process.stderr.write(err);
  const count = (word: string) => Number(err.match(new RegExp(`^\\s*(\\d+) ${word}$`, "m"))?.[1] ?? 0);
  const p = count("pass"), f = count("fail"), s = count("skip");
  passed += p;
  failed += f;
  skipped += s;
  // A runner that crashed or found nothing under a path it was asked to run is a failure, not a pass.
  if (r.status !== 0 && f === 0) {
    console.log(`bun test ${g} exited with ${r.status ?? r.signal} without a failing test: counted as one failure`);
    broken++;
  }
}
failed += broken;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
