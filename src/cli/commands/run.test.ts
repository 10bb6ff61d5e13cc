import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "../args.ts";
import { MeshError } from "../../core/mod.ts";
import { verifyBootstrapToken } from "../../identity/mod.ts";
import type { MeshModel, Waypoint, Workload } from "../../model/mod.ts";
import { run } from "./run.ts";
import { defaultDataDir, defaultNode, isLocalAddress, localControlPlane, planWaypoints, prepareLocalProxy, proxyDirName, ztunnelRunDir } from "./_run_local.ts";

const tmp = mkdtempSync(join(tmpdir(), "mesh-run-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function model(workloads: Partial<Workload>[], waypoints: Partial<Waypoint>[] = []): MeshModel {
  return {
    workloads: workloads.map((w, i) => ({ name: `w${i}`, namespace: "shop", node: "", addresses: [], ...w }) as Workload),
    waypoints: waypoints.map((w) => ({ namespace: "shop", addresses: [], port: 15008, ...w }) as Waypoint),
  } as unknown as MeshModel;
}

describe("mesh run: usage errors, before anything starts", () => {
  const cases: [string, string[], RegExp][] = [
    ["all with another role", ["--role", "all,ztunnel", "--config", "x.yaml"], /give it alone/],
    ["all without --config", ["--role", "all"], /--role all needs --config/],
    ["all with --kubernetes", ["--role", "all", "--kubernetes"], /runs one host from --config/],
    ["all with --gateway", ["--role", "all", "--config", "x.yaml", "--gateway", "shop/wp"], /leave out --gateway/],
    ["all with --token-file", ["--role", "all", "--config", "x.yaml", "--token-file", "t"], /--token-file names one proxy/],
    ["control and two proxies with --token-file", ["--role", "control,ztunnel,waypoint", "--config", "x.yaml", "--token-file", "t"], /--token-file names one proxy/],
    ["an unknown role", ["--role", "control,sidecar"], /Unknown role "sidecar"/],
    ["a role twice", ["--role", "ztunnel,ztunnel"], /names a role twice/],
    ["no role", [], /Missing --role/],
  ];
  for (const [name, argv, message] of cases) {
    test(name, async () => {
      const err = await run.run(parseArgs(argv, run, {}), { stdout() {}, stderr() {} }).then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(MeshError);
      expect((err as MeshError).code).toBe("MESH_USAGE");
      expect((err as MeshError).message).toMatch(message);
    });
  }
});

describe("defaults of --role all", () => {
  test("data dir: /var/lib/mesh for root, else the user's state dir", () => {
    expect(defaultDataDir({ HOME: "/nonexistent/ann" }, 0)).toBe("/var/lib/mesh");
    expect(defaultDataDir({ HOME: "/nonexistent/ann" }, 1000)).toBe("/nonexistent/ann/.local/state/mesh");
    expect(defaultDataDir({ HOME: "/nonexistent/ann", XDG_STATE_HOME: "/srv/state" }, 1000)).toBe("/srv/state/mesh");
  });

  test("ztunnel instance records: /run/mesh for root, the user's runtime dir otherwise", () => {
    expect(ztunnelRunDir({ XDG_RUNTIME_DIR: "/run/user/1000" }, 0)).toBeUndefined();
    expect(ztunnelRunDir({ XDG_RUNTIME_DIR: "/run/user/1000" }, 1000)).toBe("/run/user/1000/mesh");
    expect(ztunnelRunDir({}, 1000)).toBe(join(tmpdir(), "mesh-run-1000"));
  });

  test("node: the configuration's only node, else the hostname (and why)", () => {
    expect(defaultNode(model([{ node: "solo" }, { node: "solo" }]), "host-1")).toEqual({ node: "solo", why: "the only node the configuration's workloads name" });
    const two = defaultNode(model([{ node: "a" }, { node: "b" }]), "host-1");
    expect(two.node).toBe("host-1");
    expect(two.why).toContain("2 nodes: a, b");
    expect(defaultNode(model([{ node: "" }]), "host-1").node).toBe("host-1");
    expect(defaultNode(undefined, "host-1")).toEqual({ node: "host-1", why: "no valid configuration yet: the host name" });
  });

  test("proxies dial the in-process control role on loopback when it listens on a wildcard", () => {
    expect(localControlPlane("0.0.0.0:15012", 15012)).toBe("127.0.0.1:15012");
    expect(localControlPlane("127.0.0.1:0", 41234)).toBe("127.0.0.1:41234");
    expect(localControlPlane("[::]:15012", 15012)).toBe("[::1]:15012");
    expect(localControlPlane("10.0.0.10:15012", 15012)).toBe("10.0.0.10:15012");
  });

  test("local addresses: interfaces, all of 127.0.0.0/8 and ::1", () => {
    const ifs = { eth0: [{ address: "10.1.2.3" }, { address: "fe80::1%eth0" }] } as never;
    for (const a of ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "10.1.2.3", "fe80::1"]) expect([a, isLocalAddress(a, ifs)]).toEqual([a, true]);
    for (const a of ["10.1.2.4", "192.0.2.7", "128.0.0.1", "::2", "0.0.0.0"]) expect([a, isLocalAddress(a, ifs)]).toEqual([a, false]);
  });
});

describe("which waypoints --role all starts", () => {
  const local = (a: string) => a.startsWith("127.");
  const wildcard = { hostname: "0.0.0.0", port: 15008 };
  test("a Gateway with a local address runs there, at its HBONE port, beside a wildcard ztunnel", () => {
    const p = planWaypoints(model([], [{ name: "a", addresses: ["127.0.0.2"] }, { name: "b", addresses: ["127.0.0.3"], port: 25008 }]), wildcard, local);
    expect(p.start).toEqual([{ gateway: "shop/a", hboneAddr: "127.0.0.2:15008" }, { gateway: "shop/b", hboneAddr: "127.0.0.3:25008" }]);
    expect(p.skip).toEqual([]);
  });

  test("skipped, with the reason: no address, addresses elsewhere, exactly the ztunnel's listener", () => {
    const p = planWaypoints(
      model([], [{ name: "none" }, { name: "far", addresses: ["192.0.2.7"] }, { name: "clash", addresses: ["127.0.0.1"] }]),
      { hostname: "127.0.0.1", port: 15008 },
      local,
    );
    expect(p.start).toEqual([]);
    const why = Object.fromEntries(p.skip.map((s) => [s.gateway, s.reason]));
    expect(why["shop/none"]).toContain("has no spec.addresses");
    expect(why["shop/far"]).toBe("its addresses (192.0.2.7) are not on this host");
    expect(why["shop/clash"]).toContain("is the ztunnel's HBONE listener");
  });

  test("the same address on another port is no clash; a local second address runs with a note", () => {
    const p = planWaypoints(model([], [{ name: "x", addresses: ["192.0.2.7", "127.0.0.1"] }]), { hostname: "127.0.0.1", port: 25008 }, local);
    expect(p.start).toEqual([{ gateway: "shop/x", hboneAddr: "127.0.0.1:15008", note: "ztunnels dial its first address, 192.0.2.7, which is not on this host" }]);
  });

  test("IPv6 addresses get brackets", () => {
    const p = planWaypoints(model([], [{ name: "v6", addresses: ["::1"] }]), wildcard, (a) => a === "::1");
    expect(p.start[0]!.hboneAddr).toBe("[::1]:15008");
  });
});

describe("in-process proxy credentials", () => {
  test("a token for exactly that proxy, mode 0600, in its own 0700 directory", async () => {
    const dataDir = join(tmp, "data");
    const local = { controlPlane: "127.0.0.1:15012", caCert: join(dataDir, "root-cert.pem"), dataDir };
    const z = await prepareLocalProxy(local, { node: "worker-a" });
    expect(z.stateDir).toBe(join(dataDir, "proxies", "ztunnel-worker-a"));
    expect(statSync(z.tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(z.stateDir).mode & 0o777).toBe(0o700);
    expect(await verifyBootstrapToken(dataDir, readFileSync(z.tokenFile, "utf8").trim())).toMatchObject({ kind: "node", node: "worker-a" });
    const w = await prepareLocalProxy(local, { gateway: "shop/wp" });
    expect(w.stateDir).toBe(join(dataDir, "proxies", "waypoint-shop-wp"));
    expect(await verifyBootstrapToken(dataDir, readFileSync(w.tokenFile, "utf8").trim())).toMatchObject({ kind: "gateway", namespace: "shop", name: "wp" });
    expect(proxyDirName({ node: "a b/../c" })).toBe("ztunnel-a_b_.._c");
  });
});

describe("stray errors in a running proxy", () => {
  test("an unhandled rejection and a throwing listener are logged and counted; the process keeps running", async () => {
    const script = `
      import { keepServingOnStrayErrors } from ${JSON.stringify(import.meta.dir + "/run.ts")};
      import { Registry } from ${JSON.stringify(import.meta.dir + "/../../telemetry/mod.ts")};
      const r = new Registry();
      keepServingOnStrayErrors(r);
      void Promise.reject(new Error("boom"));
      setTimeout(() => { throw new Error("bang"); }, 5);
      setTimeout(() => { console.log(r.render().split("\\n").filter((l) => l.startsWith("mesh_uncaught")).join("|")); }, 60);
    `;
    const p = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    const out = p.stdout.toString();
    expect(out).toContain('mesh_uncaught_errors_total{kind="rejection"} 1');
    expect(out).toContain('mesh_uncaught_errors_total{kind="exception"} 1');
    expect(p.stderr.toString()).toContain("uncaught error (kept serving)");
  });
});
