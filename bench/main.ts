/**
 * `npm run bench [-- NAME [ARGS...]]`: runs bench/NAME.ts (its exported `main(args)`), or every benchmark
 * in this folder when no name is given. Each benchmark prints its own table and the numbers that
 * bench/README.md records.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

type Bench = { main(args: string[]): Promise<number | void> };

const here = dirname(new URL(import.meta.url).pathname);
const names = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "main.ts" && !f.startsWith("_") && !f.endsWith(".test.ts"))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (name === "--help" || name === "-h") {
  console.log(`Usage: npm run bench [-- NAME [ARGS...]]\nBenchmarks: ${names.join(", ")}`);
  process.exit(0);
}
if (name && !names.includes(name)) {
  console.error(`Unknown benchmark "${name}": use one of ${names.join(", ")}`);
  process.exit(2);
}
if (name && (rest.includes("--help") || rest.includes("-h"))) {
  // A benchmark's usage is the comment it opens with (its command line, options and what it measures).
  const head = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(join(here, `${name}.ts`), "utf8"))?.[1] ?? "";
  console.log(head.split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n").trim());
  process.exit(0);
}
let failed = 0;
for (const n of name ? [name] : names) {
  console.error(`\n=== bench ${n}`);
  const mod = (await import(join(here, `${n}.ts`))) as Bench;
  const code = await mod.main(name ? rest : []);
  if (typeof code === "number" && code !== 0) failed++;
}
process.exit(failed ? 1 : 0);
