/**
 * mesh lab, end to end through dist/mesh, without mesh components (--no-mesh): the topology itself, exec,
 * apply, status, and that down (also after a crash in the middle of up) leaves nothing behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ensureBuilt,
  forceDown,
  hostInventory,
  isRoot,
  MESH,
  mesh,
  netnsInodes,
  netnsNames,
  pidAlive,
  processesIn,
  ROOT,
  sh,
  uniquePrefix,
  waitFor,
} from "./support/mod.ts";

if (!isRoot) console.log("test/lab.test.ts: skipped, the lab needs root (network namespaces)");

const FIXTURE = join(ROOT, "src", "lab", "testdata", "two-nodes.yaml");

describe.skipIf(!isRoot)("mesh lab --no-mesh", () => {
  const prefix = uniquePrefix("t");
  const ns = (rest: string) => `mlab.${prefix}-${rest}`;
  const P = ["--prefix", prefix];
  const exec = (target: string, ...cmd: string[]) => mesh(["lab", "exec", ...P, target, "--", ...cmd], 30_000);
  let before: ReturnType<typeof hostInventory>;
  let tmp = "";
  let upOutput = "";

  beforeAll(async () => {
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), "mesh-lab-test-"));
    before = hostInventory();
    const r = await mesh(["lab", "up", FIXTURE, "--no-mesh", ...P, "--timeout", "30"]);
    upOutput = r.stdout + r.stderr;
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${upOutput}`);
  });

  afterAll(async () => {
    await forceDown(prefix);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test("up builds one namespace per node, pod, waypoint, plus the fabric, and reports progress", () => {
    const mine = netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`)).sort();
    expect(mine).toEqual(
      [
        ns("fabric"),
        ns("node-node-a"),
        ns("node-node-b"),
        ns("pod-shop.client"),
        ns("pod-shop.neighbour"),
        ns("pod-shop.api"),
        ns("wp-shop.api-waypoint"),
      ].sort(),
    );
    expect(upOutput).toContain("network");
    expect(upOutput).toMatch(/shop\/api 10\.244\.2\.10 on node-b: mesh httpbin --port 80 \(listening on 80\) ready/);
    expect(upOutput).toMatch(/mesh lab: ready/);
    // Nothing in the host namespace: no route into the lab.
    expect(sh(["ip", "route", "get", "10.244.2.10"])).not.toContain("10.99.0");
  });

  test("pods reach each other across nodes and on the same node, and the node reaches its pods", async () => {
    const cross = await exec("shop/client", "curl", "-sS", "-m", "3", "http://10.244.2.10/get?from=client");
    expect(cross.code).toBe(0);
    const body = JSON.parse(cross.stdout);
    expect(body.origin).toBe("10.244.1.10"); // no NAT anywhere: the pod's own address arrives
    expect(body.args).toEqual({ from: "client" });
    const same = await exec("shop/client", "curl", "-sS", "-m", "3", "http://10.244.1.11:8080/ip");
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout).origin).toBe("10.244.1.10");
    const fromNode = await exec("node/node-b", "curl", "-sS", "-m", "3", "http://10.244.2.10/ip");
    expect(JSON.parse(fromNode.stdout).origin).toBe("10.99.0.11");
  });

  test("every pod packet crosses its node's iptables, same-node ones included", async () => {
    const node = ns("node-node-a");
    const rule = ["FORWARD", "-s", "10.244.1.10", "-d", "10.244.1.11", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT"];
    sh(["ip", "netns", "exec", node, "iptables", "-I", ...rule]);
    try {
      const r = await exec("shop/client", "curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "http://10.244.1.11:8080/get");
      expect(r.stdout).toBe("200");
      const counters = sh(["ip", "netns", "exec", node, "iptables", "-nvxL", "FORWARD"]);
      const line = counters.split("\n").find((l) => l.includes("10.244.1.10") && l.includes("dpt:8080"))!;
      expect(Number(line.trim().split(/\s+/)[0])).toBeGreaterThan(3); // SYN, ACK, request, FIN...
    } finally {
      sh(["ip", "netns", "exec", node, "iptables", "-D", ...rule]);
    }
  });

  test("ClusterIPs are routed by nothing but the mesh: without it a Service address is unreachable", async () => {
    const hosts = await exec("shop/client", "getent", "hosts", "api");
    expect(hosts.stdout).toContain("10.96.0.20"); // service names resolve in pods
    const r = await exec("shop/client", "curl", "-sS", "-m", "5", "http://api:8000/get");
    // Refused by the fabric (no route), not a timeout: curl's exit 7 (could not connect; a timeout is 28),
    // and its own clock (the wall time around `mesh lab exec` also counts process starts, slow when the
    // machine is loaded).
    expect(r.code).toBe(7);
    expect(Number(/after (\d+) ms/.exec(r.stderr)?.[1])).toBeLessThan(4500);
  });

  test("exec runs in the right namespace and passes the exit code back", async () => {
    expect((await exec("shop/client", "ip", "netns", "identify")).stdout.trim()).toBe(ns("pod-shop.client"));
    expect((await exec("api", "ip", "netns", "identify")).stdout.trim()).toBe(ns("pod-shop.api")); // bare name
    expect((await exec("node/node-a", "ip", "netns", "identify")).stdout.trim()).toBe(ns("node-node-a"));
    expect((await exec("waypoint/shop/api-waypoint", "ip", "netns", "identify")).stdout.trim()).toBe(ns("wp-shop.api-waypoint"));
    const addr = await exec("shop/api", "ip", "-o", "-4", "addr", "show", "eth0");
    expect(addr.stdout).toContain("10.244.2.10/32");
    expect((await exec("shop/client", "sh", "-c", "exit 7")).code).toBe(7);
    expect((await exec("shop/client", "sh", "-c", "command -v mesh")).stdout.trim()).toEndWith("/bin/mesh");
    const missing = await exec("shop/nope", "true");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('No pod "shop/nope"');
    expect(missing.stderr).toContain("shop/client"); // lists what exists
  });

  test("status shows what runs where, healthy, with log paths (text and json)", async () => {
    const text = await mesh(["lab", "status", ...P]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("healthy");
    expect(text.stdout).toMatch(/pod\/shop\/api\s+10\.244\.2\.10\s+node-b\s+\d+\s+ready/);
    const json = await mesh(["lab", "status", ...P, "--format", "json"]);
    const s = JSON.parse(json.stdout);
    expect(s.mode).toBe("no-mesh");
    expect(s.healthy).toBe(true);
    const api = s.entries.find((e: { id: string }) => e.id === "pod/shop/api");
    expect(api).toMatchObject({ netns: ns("pod-shop.api"), address: "10.244.2.10", running: true, ready: true });
    expect(readFileSync(api.log, "utf8")).toContain("listening on 0.0.0.0:80");
  });

  test("a pod whose process dies makes status unhealthy", async () => {
    const s = JSON.parse((await mesh(["lab", "status", ...P, "--format", "json"])).stdout);
    const client = s.entries.find((e: { id: string }) => e.id === "pod/shop/client");
    process.kill(client.pid, "SIGKILL");
    await waitFor("the pod to exit", () => !pidAlive(client.pid), 5000);
    const after = await mesh(["lab", "status", ...P]);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/pod\/shop\/client\s.*exited/);
    expect(after.stdout).toContain("NOT healthy");
  });

  test("apply adds, changes and removes pods in the running lab", async () => {
    const text = readFileSync(FIXTURE, "utf8")
      // neighbour moves to a new node and a new address; client disappears
      .replace("nodeName: node-a\n  containers:\n  - name: httpbin", "nodeName: node-c\n  containers:\n  - name: httpbin")
      .replace("10.244.1.11", "10.244.3.11")
      .replace(/---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client[\s\S]*?podIP: 10\.244\.1\.10\n/, "");
    const file = join(tmp, "changed.yaml");
    writeFileSync(file, text);
    const r = await mesh(["lab", "apply", file, ...P, "--timeout", "30"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+ node node-c");
    expect(r.stdout).toContain("- node node-a");
    const names = netnsNames();
    expect(names).toContain(ns("node-node-c"));
    expect(names).not.toContain(ns("node-node-a"));
    expect(names).not.toContain(ns("pod-shop.client"));
    const moved = await exec("shop/api", "curl", "-sS", "-m", "3", "http://10.244.3.11:8080/ip");
    expect(JSON.parse(moved.stdout).origin).toBe("10.244.2.10");
    expect(readFileSync(`/run/mesh-lab/${prefix}/config/mesh.yaml`, "utf8")).toBe(text);
  });

  test("down removes every namespace, link, rule and process it made, and nothing else", async () => {
    const mine = netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`));
    const inodes = netnsInodes(mine);
    const state = JSON.parse(readFileSync(`/run/mesh-lab/${prefix}/state.json`, "utf8"));
    const pids: number[] = state.processes.map((p: { pid: number }) => p.pid);
    expect(pids.length).toBeGreaterThan(0);
    expect(processesIn(inodes).length).toBeGreaterThan(0);
    const r = await mesh(["lab", "down", ...P]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("down:");
    expect(netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`))).toEqual([]);
    expect(processesIn(inodes)).toEqual([]);
    expect(pids.filter(pidAlive)).toEqual([]);
    const after = hostInventory();
    expect(after.hostLinks).toEqual(before.hostLinks);
    expect(after.hostIptables).toEqual(before.hostIptables);
    expect(after.etcNetns.filter((n) => n.startsWith(`mlab.${prefix}-`))).toEqual([]);
    // /etc/netns itself goes too if the lab made it and no other lab still uses it.
    if (!before.etcNetnsExists && !netnsNames().some((n) => n.startsWith("mlab"))) expect(after.etcNetnsExists).toBe(false);
    expect(existsSync(`/run/mesh-lab/${prefix}`)).toBe(false);
    // A second down finds nothing to do.
    const again = await mesh(["lab", "down", ...P]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to take down");
  });
});

describe.skipIf(!isRoot)("mesh lab crash recovery and refusals", () => {
  const prefix = uniquePrefix("c");
  let tmp = "";

  beforeAll(() => {
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), "mesh-lab-crash-"));
  });
  afterAll(async () => {
    await forceDown(prefix);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test("a crash in the middle of up is cleaned by down, from the recorded state", async () => {
    // The second pod declares a port it never opens, so up waits for it: we kill up right then.
    const file = join(tmp, "stuck.yaml");
    writeFileSync(
      file,
      readFileSync(FIXTURE, "utf8").replace('command: ["sleep", "3650d"]', 'command: ["sh", "-c", "sleep 600 & sleep 600"]\n    ports:\n    - containerPort: 9999'),
    );
    const up = Bun.spawn([MESH, "lab", "up", file, "--no-mesh", "--prefix", prefix, "--timeout", "60"], { stdout: "pipe", stderr: "pipe" });
    const statePath = `/run/mesh-lab/${prefix}/state.json`;
    try {
      const stuck = await waitFor("the stuck pod to start", () => {
        if (!existsSync(statePath)) return undefined;
        const s = JSON.parse(readFileSync(statePath, "utf8"));
        return s.processes.find((p: { id: string; pid?: number }) => p.id === "pod/shop/client" && p.pid);
      }, 30_000);
      // The shell has started its two sleeps (a fixed wait could end before a loaded machine ran them).
      const clientNs = `mlab.${prefix}-pod-shop.client`;
      await waitFor("the shell and its two sleeps", () => processesIn(netnsInodes([clientNs])).length >= 3, 10_000);
      up.kill("SIGKILL");
      await up.exited;
      const mine = netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`));
      expect(mine.length).toBe(7);
      const inodes = netnsInodes(mine);
      const orphans = processesIn(inodes);
      expect(orphans.length).toBeGreaterThanOrEqual(3); // sh and its two sleeps, at least
      expect(pidAlive(stuck.pid)).toBe(true);

      const down = await mesh(["lab", "down", "--prefix", prefix]);
      expect(down.code).toBe(0);
      expect(netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`))).toEqual([]);
      expect(processesIn(inodes)).toEqual([]);
      expect(orphans.filter(pidAlive)).toEqual([]);
      expect(existsSync(statePath)).toBe(false);
    } finally {
      up.kill("SIGKILL");
    }
  });

  test("up refuses a second lab with the same prefix, and names left without a state", async () => {
    const p2 = `${prefix}b`;
    const first = await mesh(["lab", "up", FIXTURE, "--no-mesh", "--prefix", p2, "--timeout", "30"]);
    try {
      expect(first.code).toBe(0);
      const second = await mesh(["lab", "up", FIXTURE, "--no-mesh", "--prefix", p2]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain("already recorded");
      // State lost (as if /run was wiped without a reboot): up refuses, down --force sweeps the prefix.
      rmSync(`/run/mesh-lab/${p2}`, { recursive: true, force: true });
      const third = await mesh(["lab", "up", FIXTURE, "--no-mesh", "--prefix", p2]);
      expect(third.stderr).toContain("already exist");
      const plainDown = await mesh(["lab", "down", "--prefix", p2]);
      expect(plainDown.code).toBe(1);
      expect(plainDown.stderr).toContain("--force");
      const forced = await mesh(["lab", "down", "--prefix", p2, "--force"]);
      expect(forced.code).toBe(0);
      expect(netnsNames().filter((n) => n.startsWith(`mlab.${p2}-`))).toEqual([]);
      expect(existsSync(`/etc/netns/mlab.${p2}-pod-shop.api`)).toBe(false);
    } finally {
      await forceDown(p2);
    }
  });

  test("refuses to run as non-root with a clear message", async () => {
    const r = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", MESH, "lab", "up", FIXTURE, "--prefix", prefix], {
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("needs root");
    expect(netnsNames().filter((n) => n.startsWith(`mlab.${prefix}-`))).toEqual([]);
  });

  test("usage errors: unknown subcommand, missing file, invalid prefix", async () => {
    expect((await mesh(["lab", "sideways"])).stderr).toContain('Unknown lab subcommand "sideways"');
    expect((await mesh(["lab", "up"])).code).toBe(2);
    expect((await mesh(["lab", "up", FIXTURE, "--prefix", "Bad-Prefix"])).stderr).toContain("Invalid --prefix");
    expect((await mesh(["lab", "up", join(tmp, "missing.yaml"), "--prefix", prefix])).stderr).toContain("not found");
    const help = await mesh(["lab", "exec", "--help"]);
    expect(help.stdout).toContain("exec TARGET -- CMD");
  });
});
