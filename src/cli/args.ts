/**
 * A small flag parser: `--name value`, `--name=value`, boolean `--flag`, repeated flags, and a
 * MESH_* environment twin for every flag (`--control-plane` <- MESH_CONTROL_PLANE). Unknown flags are
 * errors that name the closest known flag.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import { editDistance } from "../core/mod.ts";

export interface FlagSpec {
  /** flag name without dashes */
  name: string;
  kind: "string" | "boolean" | "list";
  help: string;
  default?: string | boolean;
  /** no MESH_* environment twin (e.g. secrets that must not leak through env) */
  noEnv?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** extra text after the flag table */
  details?: string;
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** everything after a bare `--` */
  rest: string[];
}

export function envName(flag: string): string {
  return "MESH_" + flag.toUpperCase().replace(/-/g, "_");
}

export function parseArgs(
  argv: string[],
  spec: CommandSpec,
  env: Record<string, string | undefined> = process.env,
): Parsed {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const flags: Parsed["flags"] = {};
  const positionals: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      rest = argv.slice(i + 1);
      break;
    }
    if (a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const f = byName.get(name);
      if (!f) {
        const hint = closest(name, [...byName.keys()]);
        throw new MeshError(
          ErrorCode.Usage,
          `Unknown flag "--${name}" for "mesh ${spec.name}"${hint ? `: did you mean "--${hint}"?` : ""} (see mesh ${spec.name} --help)`,
        );
      }
      if (f.kind === "boolean") {
        flags[name] = eq > 0 ? a.slice(eq + 1) !== "false" : true;
        continue;
      }
      let value: string | undefined = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) {
        throw new MeshError(ErrorCode.Usage, `Flag "--${name}" needs a value (see mesh ${spec.name} --help)`);
      }
      if (f.kind === "list") ((flags[name] as string[] | undefined) ?? (flags[name] = [])).push(value);
      else flags[name] = value;
      continue;
    }
    positionals.push(a);
  }
  for (const f of spec.flags) {
    if (flags[f.name] !== undefined) continue;
    const fromEnv = f.noEnv ? undefined : env[envName(f.name)];
    if (fromEnv !== undefined && fromEnv !== "") {
      flags[f.name] = f.kind === "boolean" ? fromEnv !== "false" && fromEnv !== "0" : f.kind === "list" ? fromEnv.split(",") : fromEnv;
    } else if (f.default !== undefined) flags[f.name] = f.default;
  }
  return { flags, positionals, rest };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`mesh ${spec.name}: ${spec.summary}`, "", "Usage:", `  ${spec.usage}`];
  if (spec.flags.length) {
    lines.push("", "Flags:");
    const w = Math.max(...spec.flags.map((f) => f.name.length + (f.kind === "boolean" ? 0 : 6)));
    for (const f of spec.flags) {
      const left = `--${f.name}${f.kind === "boolean" ? "" : " VALUE"}`.padEnd(w + 3);
      const def = f.default !== undefined && f.default !== false ? ` (default ${f.default})` : "";
      const env = f.noEnv ? "" : ` [${envName(f.name)}]`;
      lines.push(`  ${left} ${f.help}${def}${env}`);
    }
  }
  if (spec.details) lines.push("", spec.details.trimEnd());
  return lines.join("\n") + "\n";
}

/** Levenshtein-closest candidate within distance 3, for "did you mean" hints. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = 4;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}
