import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { verifyBootstrapToken } from "../../identity/mod.ts";
import { parseTtl } from "./token.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-token-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const main = join(import.meta.dir, "..", "main.ts");

function mesh(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, main, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MESH_NODE: "" } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("mesh token create", () => {
  test("prints the token alone on stdout; default lifetime 24h", async () => {
    const r = mesh("token", "create", "--data-dir", dir, "--node", "worker-a");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const c = decodeJwt(r.out.trim());
    expect(c.exp! - c.iat!).toBe(86400);
    expect(await verifyBootstrapToken(dir, r.out)).toEqual({ kind: "node", node: "worker-a" });
  });

  test("--gateway, --admin and --ttl", async () => {
    const g = mesh("token", "create", "--data-dir", dir, "--gateway", "shop/inventory-waypoint", "--ttl", "15m");
    expect(g.code).toBe(0);
    expect(await verifyBootstrapToken(dir, g.out)).toEqual({ kind: "gateway", namespace: "shop", name: "inventory-waypoint" });
    const c = decodeJwt(g.out.trim());
    expect(c.exp! - c.iat!).toBe(900);
    const a = mesh("token", "create", "--data-dir", dir, "--admin", "--ttl", "7d");
    expect(a.code).toBe(0);
    expect(await verifyBootstrapToken(dir, a.out)).toEqual({ kind: "admin" });
  });

  test("usage errors exit 2 with a hint and print nothing on stdout", () => {
    for (const args of [
      ["token", "create", "--data-dir", dir],
      ["token", "create", "--data-dir", dir, "--node", "a", "--admin"],
      ["token", "create", "--node", "a"],
      ["token", "create", "--data-dir", dir, "--node", "a", "--ttl", "soon"],
      ["token", "create", "--data-dir", dir, "--gateway", "noslash"],
      ["token", "--data-dir", dir, "--node", "a"],
    ]) {
      const r = mesh(...args);
      expect([args.join(" "), r.code]).toEqual([args.join(" "), 2]);
      expect(r.out).toBe("");
      expect(r.err.length).toBeGreaterThan(10);
    }
  });

  test("durations", () => {
    expect(parseTtl("90s")).toBe(90);
    expect(parseTtl("15m")).toBe(900);
    expect(parseTtl("24h")).toBe(86400);
    expect(parseTtl("7d")).toBe(604800);
    expect(parseTtl("1h30m")).toBe(5400);
    for (const bad of ["", "0s", "10", "1w", "-5m", "h"]) expect(parseTtl(bad)).toBeUndefined();
  });
});
