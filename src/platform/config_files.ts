/**
 * Reading configuration from disk: files and directories (every *.yaml / *.yml in a directory, sorted
 * by name, not recursive), handed to the pure parser in src/config as one configuration.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import type { ConfigFile } from "../config/mod.ts";

const YAML_FILE = /\.ya?ml$/i;

/** The YAML files a path stands for: itself, or the *.yaml / *.yml files of a directory. */
export async function configFilePaths(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new MeshError(ErrorCode.ConfigNotFound, `Configuration "${path}" not found: give a mesh.yaml file or a directory of *.yaml files`, { cause: e });
  }
  if (!st.isDirectory()) return [path];
  const names = (await readdir(path, { withFileTypes: true }))
    .filter((d) => (d.isFile() || d.isSymbolicLink()) && YAML_FILE.test(d.name) && !d.name.startsWith("."))
    .map((d) => d.name)
    .sort();
  return names.map((n) => join(path, n));
}

/** Read files and directories as one configuration, in the order given (directory entries by name). */
export async function readConfigFiles(paths: readonly string[]): Promise<ConfigFile[]> {
  const out: ConfigFile[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    for (const file of await configFilePaths(p)) {
      if (seen.has(file)) continue;
      seen.add(file);
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        throw new MeshError(ErrorCode.ConfigNotFound, `Cannot read configuration file "${file}": ${(e as Error).message}`, { cause: e });
      }
      out.push({ path: file, text });
    }
  }
  return out;
}
