/**
 * Control and proxies in one process, through dist/mesh on loopback:
 * - `mesh run --role all --config FILE`: control, the ztunnel of the configuration's only node and the
 *   waypoint of the Gateway at 127.0.0.2 (the one at a foreign address is skipped, so is the one without
 *   addresses), with no --control-plane, --ca-cert or --token-file. Ready on 15021, `mesh status` shows
 *   both proxies SYNCED, `mesh proxy-config workloads` lists the node's workloads, the ztunnel's wildcard
 *   HBONE listener and the waypoint's share one port (each presents its own certificate), and SIGTERM
 *   ends it with exit 0 and every port released.
 * - the same as an unprivileged user, with the default data dir (~/.local/state/mesh).
 * - `mesh run --role control,ztunnel` without proxy credentials.
 * Every port is the process's own (port 0, read back from its log; no 15000/15008/15012/15020/15021), so
 * this runs beside other tests; the HBONE port, which the configuration names, is drawn from outside the
 * ephemeral range (fixedPort).
 * Root: the ztunnel records its instance under /run/mesh.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import {
  ensureBuilt,
  fixedPort,
  isRoot,
  MESH,
  mesh,
  namespaceYaml,
  podYaml,
  serviceAccountYaml,
  serviceYaml,
  waitFor,
  waypointYaml,
  yamlFile,
} from "./support/mod.ts";
import { findAdminSecret } from "../src/admin/mod.ts";

if (!isRoot) console.log("test/run_all.test.ts: skipped, the ztunnel role records its instance under /run/mesh (root)");

const NODE = "solo-node";

function config(hbonePort: number): string {
  const pod = (name: string, ip: string) => podYaml({ name, ip, node: NODE, containerPorts: [8080] });
  const gateway = (name: string, addresses: string[]) => waypointYaml({ name, addresses, port: hbonePort });
  return yamlFile(
    namespaceYaml("shop"),
    serviceAccountYaml("viewer"),
    serviceAccountYaml("api"),
    pod("viewer", "127.0.0.10"),
    pod("api", "127.0.0.11"),
    serviceYaml({
      name: "api",
      clusterIP: "10.96.7.10",
      labels: { "istio.io/use-waypoint": "api-waypoint" },
      selector: { app: "api" },
      ports: [{ name: "http", port: 80, targetPort: 8080 }],
    }),
    gateway("api-waypoint", ["127.0.0.2"]),
    gateway("far-waypoint", ["192.0.2.7"]),
    gateway("nowhere-waypoint", []),
  );
}

/** The end of a process's log, for the message of a wait that timed out. */
const logTail = (log: string) => (existsSync(log) ? `\n${readFileSync(log, "utf8").slice(-3000)}` : "");

const isReady = (port: number) => fetch(`http://127.0.0.1:${port}/healthz/ready`).then((r) => r.status === 200, () => false);

interface BoundPorts {
  control: number;
  ready: number;
  admin: number;
}

/**
 * The ports the process bound (it is given port 0 for each, read back from its log): a port picked free
 * here and bound later could meanwhile be taken by another test's SO_REUSEPORT server, which would then
 * answer in its place.
 */
async function boundPorts(log: string): Promise<BoundPorts> {
  const lines = () => (existsSync(log) ? readFileSync(log, "utf8") : "").split("\n").flatMap((l) => {
    try {
      return [JSON.parse(l) as { msg?: string; port?: number; ports?: { ready?: number; admin?: number } }];
    } catch {
      return [];
    }
  });
  return await waitFor("the started line", async () => {
    const all = lines();
    const control = all.find((l) => l.msg === "control role started")?.port;
    const ports = all.find((l) => l.msg === "started")?.ports;
    return control && ports?.ready && ports.admin ? { control, ready: ports.ready, admin: ports.admin } : undefined;
  }, 30_000, { detail: () => logTail(log) });
}

/** Whether anything accepts TCP at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        connectError: () => resolve(false),
      },
    }).catch(() => resolve(false));
  });
}

/** The URI SAN of the certificate the TLS server at host:port presents (no client certificate sent). */
function serverIdentity(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      const san = s.getPeerCertificate().subjectaltname ?? "";
      s.destroy();
      resolve(san.replace(/^URI:/, ""));
    });
    s.on("error", reject);
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error(`no TLS answer at ${host}:${port}`));
    });
  });
}

interface Proc {
  proc: ReturnType<typeof Bun.spawn>;
  log: string;
}

describe.skipIf(!isRoot)("mesh run with control and proxies in one process", () => {
  let dir = "";
  const procs: Proc[] = [];
  const adminPorts: number[] = [];

  function start(name: string, args: string[]): Proc {
    const log = join(dir, `${name}.log`);
    const proc = Bun.spawn([MESH, "run", ...args], { stdout: Bun.file(log), stderr: Bun.file(log), env: { ...process.env, MESH_LOG_LEVEL: "info" } });
    const p = { proc, log };
    procs.push(p);
    return p;
  }

  async function stop(p: Proc): Promise<number> {
    p.proc.kill("SIGTERM");
    const code = await Promise.race([p.proc.exited, Bun.sleep(15_000).then(() => "timeout" as const)]);
    if (code === "timeout") {
      p.proc.kill("SIGKILL");
      throw new Error(`did not stop within 15 s after SIGTERM:\n${readFileSync(p.log, "utf8").slice(-2000)}`);
    }
    return code;
  }

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), "mesh-run-all-"));
  });

  afterAll(async () => {
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.proc.exited));
    // A process that had to be killed leaves its admin secret behind.
    for (const port of adminPorts) {
      const s = findAdminSecret(port);
      if (s) rmSync(s.path, { force: true });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test("--role all: control, this node's ztunnel and the local waypoint; ready, SYNCED, inspectable, SIGTERM exits 0", async () => {
    const hbone = fixedPort(); // written into the configuration: chosen before the process starts
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, config(hbone));
    const dataDir = join(dir, "all");
    const p = start("all", [
      "--role", "all", "--config", file, "--data-dir", dataDir, "--listen", "127.0.0.1:0",
      // The ztunnel's HBONE on every address, the waypoint's on 127.0.0.2, the same port.
      "--hbone-addr", `0.0.0.0:${hbone}`, "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0",
      "--admin-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
      "--drain-timeout", "2s",
    ]);
    const { control: cp, ready, admin } = await boundPorts(p.log);
    adminPorts.push(admin);
    await waitFor("--role all ready", () => isReady(ready), 30_000, { detail: () => logTail(p.log) });

    // The log reaches its file a little after the fact: wait for the lines.
    for (const line of [
      /"node":"solo-node","why":"the only node the configuration's workloads name"/,
      /"waypoint not started here","gateway":"shop\/far-waypoint","reason":"its addresses \(192\.0\.2\.7\) are not on this host"/,
      /"waypoint not started here","gateway":"shop\/nowhere-waypoint","reason":"the Gateway has no spec.addresses/,
    ]) {
      await waitFor(`log line ${line}`, async () => line.test(readFileSync(p.log, "utf8")), 5_000, { detail: () => logTail(p.log) });
    }

    // The control plane sees both proxies, each on the latest version.
    const st = await mesh(["status", "--data-dir", dataDir, "--control-plane", `127.0.0.1:${cp}`], 20_000);
    expect(st.stderr).toBe("");
    expect(st.code).toBe(0);
    const rows = st.stdout.split("\n");
    expect(rows.find((r) => r.startsWith(`ztunnel/${NODE} `))).toContain("SYNCED");
    expect(rows.find((r) => r.startsWith("waypoint/shop/api-waypoint "))).toContain("SYNCED");
    expect(st.stdout).not.toContain("far-waypoint");

    // The ztunnel's admin API (root paths) lists exactly its node's workloads, with certificates.
    const pc = await mesh(["proxy-config", "workloads", "--admin", `127.0.0.1:${admin}`, "--node", NODE, "--format", "json"], 20_000);
    expect(pc.stderr).toBe("");
    expect(pc.code).toBe(0);
    const text = pc.stdout;
    for (const name of ["viewer", "api"]) expect(text).toContain(`"name": "${name}"`);
    expect(text).toContain("spiffe://cluster.local/ns/shop/sa/api");
    // The waypoint's own admin routes sit under its prefix, where proxy-config --gateway finds them.
    const wpc = await mesh(["proxy-config", "certs", "--admin", `127.0.0.1:${admin}`, "--gateway", "shop/api-waypoint", "--format", "json"], 20_000);
    expect(wpc.stderr).toBe("");
    expect(JSON.parse(wpc.stdout)).toMatchObject({ proxy: "waypoint/shop/api-waypoint", rows: [{ identity: "spiffe://cluster.local/ns/shop/sa/api-waypoint", state: "valid" }] });
    const secret = findAdminSecret(admin)!.secret;
    const wpDump = await (await fetch(`http://127.0.0.1:${admin}/waypoint/shop/api-waypoint/config_dump`, { headers: { authorization: `Bearer ${secret}` } })).json();
    expect(wpDump).toMatchObject({ gateway: "shop/api-waypoint", ready: true, hbone: { address: `127.0.0.2:${hbone}` } });

    // One port, two listeners: the Gateway's address reaches the waypoint, a pod's address the ztunnel
    // (which presents that pod's certificate).
    expect(await serverIdentity("127.0.0.2", hbone)).toBe("spiffe://cluster.local/ns/shop/sa/api-waypoint");
    expect(await serverIdentity("127.0.0.11", hbone)).toBe("spiffe://cluster.local/ns/shop/sa/api");
    expect(await serverIdentity("127.0.0.10", hbone)).toBe("spiffe://cluster.local/ns/shop/sa/viewer");

    // The tokens minted in-process: one per proxy, readable by the owner only.
    for (const d of [`ztunnel-${NODE}`, "waypoint-shop-api-waypoint"]) {
      expect(statSync(join(dataDir, "proxies", d, "token")).mode & 0o777).toBe(0o600);
    }
    expect(existsSync(join(dataDir, "proxies", "waypoint-shop-far-waypoint"))).toBe(false);

    expect(await stop(p)).toBe(0);
    for (const [host, port] of [["127.0.0.1", cp], ["127.0.0.1", ready], ["127.0.0.1", admin], ["127.0.0.2", hbone], ["127.0.0.11", hbone]] as const) {
      expect([`${host}:${port}`, await accepts(host, port)]).toEqual([`${host}:${port}`, false]);
    }
    expect(findAdminSecret(admin)).toBeUndefined();
  }, 60_000);

  const setpriv = Bun.which("setpriv");
  test.skipIf(!setpriv)("--role all as an unprivileged user: state under ~/.local/state/mesh, instance records in its runtime dir", async () => {
    const hbone = fixedPort(); // written into the configuration: chosen before the process starts
    const home = join(dir, "nobody");
    chmodSync(dir, 0o711); // mkdtemp's 0700 would keep the user out of its home below
    mkdirSync(join(home, "tmp"), { recursive: true });
    writeFileSync(join(home, "mesh.yaml"), config(hbone));
    chownSync(home, 65534, 65534);
    for (const f of ["tmp", "mesh.yaml"]) chownSync(join(home, f), 65534, 65534);
    const log = join(dir, "nobody.log");
    const proc = Bun.spawn([
      setpriv!, "--reuid=65534", "--regid=65534", "--clear-groups", MESH, "run", "--role", "all", "--config", join(home, "mesh.yaml"),
      "--listen", "127.0.0.1:0", "--hbone-addr", `127.0.0.1:${hbone}`, "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0",
      "--admin-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--drain-timeout", "2s",
    ], {
      stdout: Bun.file(log),
      stderr: Bun.file(log),
      // Its temp files (admin secret) and runtime dir stay inside this test's directory.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, TMPDIR: join(home, "tmp"), XDG_RUNTIME_DIR: join(home, "tmp") },
    });
    const p = { proc, log };
    procs.push(p);
    const { ready } = await boundPorts(log);
    await waitFor("unprivileged --role all ready", () => isReady(ready), 30_000, { detail: () => logTail(log) });
    const state = join(home, ".local", "state", "mesh");
    expect(existsSync(join(state, "root-cert.pem"))).toBe(true);
    expect(statSync(join(state, "proxies", `ztunnel-${NODE}`, "token")).uid).toBe(65534);
    expect(existsSync(join(home, "tmp", "mesh", "ztunnel"))).toBe(true);
    expect(await stop(p)).toBe(0);
  }, 45_000);

  test("--role control,ztunnel needs no --control-plane, --ca-cert or --token-file", async () => {
    const hbone = fixedPort(); // written into the configuration: chosen before the process starts
    const file = join(dir, "mesh2.yaml");
    writeFileSync(file, config(hbone));
    const dataDir = join(dir, "cz");
    const p = start("control-ztunnel", [
      "--role", "control,ztunnel", "--node", NODE, "--config", file, "--data-dir", dataDir, "--listen", "0.0.0.0:0",
      "--hbone-addr", `127.0.0.1:${hbone}`, "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0",
      "--admin-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
      "--drain-timeout", "2s",
    ]);
    const { control: cp, ready, admin } = await boundPorts(p.log);
    adminPorts.push(admin);
    await waitFor("control,ztunnel ready", () => isReady(ready), 30_000, { detail: () => logTail(p.log) });
    // A wildcard --listen: the ztunnel dialed it on loopback.
    const connected = `"msg":"connected to the control plane","controlPlane":"127.0.0.1:${cp}"`;
    await waitFor("the ztunnel's connection on loopback in the log", async () => readFileSync(p.log, "utf8").includes(connected), 5_000, { detail: () => logTail(p.log) });
    const st = await mesh(["status", "--data-dir", dataDir, "--control-plane", `127.0.0.1:${cp}`, "--format", "json"], 20_000);
    expect(st.code).toBe(0);
    const report = JSON.parse(st.stdout) as { version: number; proxies: { id: string; ackedVersion?: number }[] };
    expect(report.proxies.map((x) => [x.id, x.ackedVersion])).toEqual([[`ztunnel/${NODE}`, report.version]]);
    expect(await stop(p)).toBe(0);
    expect(await accepts("127.0.0.1", cp)).toBe(false);
  }, 45_000);
});
