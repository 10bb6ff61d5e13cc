/**
 * The systemd units of systemd/: `systemd-analyze verify` clean (no warning at all), the hardening the
 * issue asks for, an exposure score systemd rates OK, and ExecStart plus the environment files accepted by
 * the real `mesh run` flag parser (every MESH_* variable is the twin of a flag).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envName, parseArgs } from "../src/cli/mod.ts";
import { run } from "../src/cli/mod.ts";
import { ensureBuilt, MESH, ROOT } from "./support/mod.ts";

const UNITS = ["mesh-ztunnel.service", "mesh-control.service"];
const dir = join(ROOT, "systemd");
const analyze = Bun.which("systemd-analyze");

/** Directives of a unit file: key -> values (a key may repeat). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("[")) continue;
    const i = line.indexOf("=");
    const k = line.slice(0, i);
    out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
  }
  return out;
}

function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf("=");
    out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

describe("systemd units", () => {
  test("systemd-analyze verify: no error and no warning (the binary path pointed at dist/mesh)", () => {
    if (!analyze) throw new Error("systemd-analyze is not installed: apt-get install systemd (it is in .ci/deps)");
    ensureBuilt();
    const tmp = mkdtempSync(join(tmpdir(), "mesh-units-"));
    try {
      // verify checks that ExecStart's program exists: point it at the binary this tree builds.
      const paths = UNITS.map((u) => {
        const p = join(tmp, u);
        writeFileSync(p, readFileSync(join(dir, u), "utf8").replaceAll("/usr/local/bin/mesh", MESH));
        return p;
      });
      const r = Bun.spawnSync([analyze, "verify", ...paths], { stdout: "pipe", stderr: "pipe" });
      expect(r.stderr.toString() + r.stdout.toString()).toBe("");
      expect(r.exitCode).toBe(0);
      for (const p of paths) {
        const s = Bun.spawnSync([analyze, "security", "--offline=yes", p], { stdout: "pipe", stderr: "pipe" });
        const m = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(s.stdout.toString());
        expect(m).not.toBeNull();
        expect(Number(m![1])).toBeLessThan(4.5);
        expect(m![2]).toBe("OK");
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("hardening, dedicated user, capabilities, state and restart", () => {
    for (const u of UNITS) {
      const d = directives(readFileSync(join(dir, u), "utf8"));
      const one = (k: string) => d.get(k)?.at(-1);
      expect(one("User")).toBe("mesh");
      expect(one("Group")).toBe("mesh");
      expect(one("NoNewPrivileges")).toBe("yes");
      expect(one("ProtectSystem")).toBe("strict");
      expect(one("ProtectHome")).toBe("yes");
      expect(one("PrivateTmp")).toBe("yes");
      expect(one("Restart")).toBe("always");
      expect(one("StateDirectory")).toMatch(/^mesh/);
      expect(one("EnvironmentFile")).toMatch(/^\/etc\/mesh\/\w+\.env$/);
      expect(Number(one("TimeoutStopSec"))).toBeGreaterThanOrEqual(25); // covers the 20 s drain
    }
    const zt = directives(readFileSync(join(dir, "mesh-ztunnel.service"), "utf8"));
    expect(zt.get("AmbientCapabilities")).toEqual(["CAP_NET_ADMIN CAP_NET_RAW"]);
    expect(zt.get("CapabilityBoundingSet")).toEqual(["CAP_NET_ADMIN CAP_NET_RAW"]);
    expect(zt.get("RuntimeDirectory")).toEqual(["mesh"]);
    const ctl = directives(readFileSync(join(dir, "mesh-control.service"), "utf8"));
    expect(ctl.get("AmbientCapabilities")).toEqual([""]);
    // The group the capture rules exempt must be the one the unit runs as: 1337 (sysusers).
    expect(readFileSync(join(dir, "mesh.sysusers.conf"), "utf8")).toMatch(/^u mesh 1337:1337 /m);
  });

  test("ExecStart and the env files are what `mesh run` accepts; each env file gives what its role needs", () => {
    const needs: Record<string, string[]> = {
      "mesh-ztunnel.service": ["node", "control-plane", "ca-cert", "token-file"],
      "mesh-control.service": ["config", "data-dir"],
    };
    for (const u of UNITS) {
      const d = directives(readFileSync(join(dir, u), "utf8"));
      const argv = d.get("ExecStart")![0]!.split(/\s+/);
      expect(argv.slice(0, 2)).toEqual(["/usr/local/bin/mesh", "run"]);
      const example = join(dir, `${u.replace(/^mesh-|\.service$/g, "")}.env.example`);
      const env = envFile(readFileSync(example, "utf8"));
      const twins = new Set(run.flags.filter((f) => !f.noEnv).map((f) => envName(f.name)));
      twins.add("MESH_LOG_LEVEL"); // read by the logger itself, and the twin of --log-level
      for (const k of Object.keys(env)) expect(twins.has(k) ? k : `${k} (not a flag of mesh run)`).toBe(k);
      // The real parser, with the env file as the environment: no unknown flag, every required value there.
      const parsed = parseArgs(argv.slice(2), run, env);
      for (const f of needs[u]!) expect(parsed.flags[f] ? f : `missing ${f}`).toBe(f);
    }
  });
});
