import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MeshError } from "../core/mod.ts";
import { parseConfig } from "../config/mod.ts";
import { readConfigFiles } from "./config_files.ts";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mesh-config-files-"));
  const conf = join(dir, "config");
  mkdirSync(join(conf, "nested"), { recursive: true });
  writeFileSync(join(conf, "10-namespace.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio.io/dataplane-mode: ambient}\n");
  writeFileSync(
    join(conf, "20-pod.yml"),
    "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop, labels: {app: api}}\nspec:\n  nodeName: node-a\n  containers: [{name: app}]\nstatus: {podIP: 10.244.1.5}\n",
  );
  writeFileSync(join(conf, "README.md"), "not yaml: [\n");
  writeFileSync(join(conf, ".hidden.yaml"), "kind: Nope\n");
  writeFileSync(join(conf, "nested", "x.yaml"), "kind: Nope\n");
  writeFileSync(join(dir, "policy.yaml"), "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  selector: {matchLabels: {app: api}}\n  rules: [{}]\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readConfigFiles", () => {
  test("a directory gives its *.yaml and *.yml files by name (not hidden, not nested), then the files given", async () => {
    const files = await readConfigFiles([join(dir, "config"), join(dir, "policy.yaml")]);
    expect(files.map((f) => f.path)).toEqual([
      join(dir, "config", "10-namespace.yaml"),
      join(dir, "config", "20-pod.yml"),
      join(dir, "policy.yaml"),
    ]);
    const { model, diagnostics } = parseConfig(files);
    expect(diagnostics).toEqual([]);
    expect(model.workloads[0]!.ambient).toBe(true); // the namespace from another file enrolled it
    expect(model.authorizationPolicies[0]!.name).toBe("p");
  });

  test("a path given twice is read once", async () => {
    const p = join(dir, "policy.yaml");
    expect((await readConfigFiles([p, p])).length).toBe(1);
  });

  test("a missing path is a MeshError with code ConfigNotFound that names it", async () => {
    const missing = join(dir, "nope.yaml");
    let err: unknown;
    try {
      await readConfigFiles([missing]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("MESH_CONFIG_NOT_FOUND");
    expect((err as MeshError).message).toContain(missing);
  });
});
