/**
 * A VM in the mesh, in network namespaces (root): the lab (`mesh lab up`) gives the cluster side (nodes,
 * pods, control role, node ztunnels); a "VM" namespace joins its fabric with the address of a WorkloadEntry,
 * and runs the ztunnel the way systemd/mesh-ztunnel.service does (its ExecStart, its environment file, user
 * and group mesh = 1337, only CAP_NET_ADMIN and CAP_NET_RAW as ambient capabilities, a private /run/mesh),
 * with an application running there as another user. Then: the VM calls a pod's Service and a pod calls the
 * VM's Service, both over HBONE with their own identities (the destination ztunnels' metrics name both
 * principals), the ztunnel's own connections are not captured, and an L4 DENY for the VM's identity holds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBuilt, forceDown, isRoot, MESH, mesh, ROOT, uniquePrefix, waitFor } from "./support/mod.ts";

const VM_IP = "192.168.77.10";
const APP_UID = 2000;
const MESH_UID = 1337; // systemd/mesh.sysusers.conf
const VM_PRINCIPAL = "spiffe://cluster.local/ns/shop/sa/vm-app";

function meshYaml(): string {
  const pod = (name: string, node: string, ip: string, cmd: string[]) =>
    `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}\nspec:\n  nodeName: ${node}\n  serviceAccountName: ${name}\n` +
    `  containers:\n  - name: main\n    command: ${JSON.stringify(cmd)}\n${cmd[0] === MESH ? "    ports: [{containerPort: 8080}]\n" : ""}status: {podIP: ${ip}}\n`;
  const svc = (name: string, ip: string, app: string, target: number) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  clusterIP: ${ip}\n  selector: {app: ${app}}\n  ports: [{name: http, port: 80, targetPort: ${target}}]\n`;
  return [
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio.io/dataplane-mode: ambient}\n`,
    ...["web", "secret", "client", "vm-app"].map((sa) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${sa}, namespace: shop}\n`),
    pod("web", "node-a", "10.244.1.10", [MESH, "httpbin", "--port", "8080", "--quiet"]),
    pod("secret", "node-a", "10.244.1.11", [MESH, "httpbin", "--port", "8080", "--quiet"]),
    pod("client", "node-b", "10.244.2.10", ["sleep", "infinity"]),
    svc("web", "10.96.0.10", "web", 8080),
    svc("secret", "10.96.0.40", "secret", 8080),
    // The VM: its WorkloadEntry (the ztunnel of node "vm-1", its own name, owns it) and a Service selecting it.
    `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-1, namespace: shop, labels: {app: vm-app}}\nspec:\n  address: ${VM_IP}\n  serviceAccount: vm-app\n  ports: {http: 9090}\n`,
    svc("vm-svc", "10.96.0.30", "vm-app", 9090),
    // L4: the VM's identity may not reach `secret`; everyone else may.
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: no-vm-to-secret, namespace: shop}\nspec:\n  selector: {matchLabels: {app: secret}}\n  action: DENY\n  rules:\n  - from:\n    - source: {principals: ["cluster.local/ns/shop/sa/vm-app"]}\n`,
  ].join("---\n");
}

/** KEY=VALUE lines of an environment file. */
function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split("\n").map((x) => x.trim())) if (l && !l.startsWith("#")) out[l.slice(0, l.indexOf("="))] = l.slice(l.indexOf("=") + 1);
  return out;
}

function sh(argv: string[], timeoutMs = 15_000): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

function must(argv: string[]): string {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.err}`);
  return r.out;
}

if (!isRoot) console.log("test/vm.test.ts: VM end-to-end SKIPPED: needs root (network namespaces, iptables)");

describe.skipIf(!isRoot)("a VM (WorkloadEntry + ztunnel --redirect host) and pods in one mesh", () => {
  const prefix = uniquePrefix("vm");
  const vmNs = `mvm-${prefix}`;
  const fabric = `mlab.${prefix}-fabric`;
  const stateDir = `/run/mesh-lab/${prefix}`;
  let tmp = "";
  let ztPid = 0;
  const inVm = (argv: string[]) => ["ip", "netns", "exec", vmNs, ...argv];
  /** A command as the VM's application user (not the mesh user). */
  const asApp = (argv: string[]) => inVm(["setpriv", `--reuid=${APP_UID}`, `--regid=${APP_UID}`, "--clear-groups", ...argv]);
  const metrics = (ns: string) => sh(["ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "http://127.0.0.1:15020/metrics"]).out;

  beforeAll(async () => {
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), "mesh-vm-"));
    writeFileSync(join(tmp, "mesh.yaml"), meshYaml());
    const up = await mesh(["lab", "up", join(tmp, "mesh.yaml"), "--prefix", prefix, "--timeout", "45"], 120_000);
    if (up.code !== 0) throw new Error(`lab up failed:\n${up.stdout}${up.stderr}`);

    // The VM on the lab's fabric: its own namespace and address, default route through the fabric.
    must(["ip", "netns", "add", vmNs]);
    must(["ip", "-n", vmNs, "link", "set", "lo", "up"]);
    must(["ip", "link", "add", "vm0", "netns", fabric, "type", "veth", "peer", "name", "eth0", "netns", vmNs]);
    must(["ip", "-n", fabric, "addr", "add", "10.99.0.1/32", "dev", "vm0"]);
    must(["ip", "-n", fabric, "link", "set", "vm0", "up"]);
    must(["ip", "-n", fabric, "route", "add", `${VM_IP}/32`, "dev", "vm0"]);
    must(["ip", "-n", vmNs, "addr", "add", `${VM_IP}/32`, "dev", "eth0"]);
    must(["ip", "-n", vmNs, "link", "set", "eth0", "up"]);
    must(["ip", "-n", vmNs, "route", "add", "10.99.0.1", "dev", "eth0", "scope", "link"]);
    must(["ip", "-n", vmNs, "route", "add", "default", "via", "10.99.0.1", "dev", "eth0"]);

    // What an operator does on the control host: a token for node vm-1, and the root certificate.
    const controlData = join(stateDir, "control");
    const etc = join(tmp, "etc-mesh");
    mkdirSync(etc);
    const token = await mesh(["token", "create", "--data-dir", controlData, "--node", "vm-1"]);
    if (token.code !== 0) throw new Error(token.stderr);
    writeFileSync(join(etc, "ztunnel.token"), token.stdout, { mode: 0o640 });
    chownSync(join(etc, "ztunnel.token"), 0, MESH_UID);
    writeFileSync(join(etc, "root-cert.pem"), readFileSync(join(controlData, "root-cert.pem")));
    const state = join(tmp, "state"); // StateDirectory=mesh-ztunnel: owned by the unit's user, 0700
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, MESH_UID, MESH_UID);
    for (const d of [tmp, etc]) sh(["chmod", "755", d]);

    // The unit's environment file: the example, with this test's values.
    const env = envFile(readFileSync(join(ROOT, "systemd", "ztunnel.env.example"), "utf8"));
    Object.assign(env, {
      MESH_NODE: "vm-1",
      MESH_CONTROL_PLANE: "10.99.0.2:15012",
      MESH_CA_CERT: join(etc, "root-cert.pem"),
      MESH_TOKEN_FILE: join(etc, "ztunnel.token"),
      MESH_DATA_DIR: state,
    });
    writeFileSync(join(etc, "ztunnel.env"), Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");

    // The unit's ExecStart, run as the unit runs it: User/Group mesh, AmbientCapabilities, RuntimeDirectory.
    const unit = readFileSync(join(ROOT, "systemd", "mesh-ztunnel.service"), "utf8");
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(/\s+/);
    const caps = /^AmbientCapabilities=(.+)$/m.exec(unit)![1]!.split(/\s+/).map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`).join(",");
    const argv = [MESH, ...exec.slice(1)];
    if (!existsSync("/run/mesh")) mkdirSync("/run/mesh", { mode: 0o755 });
    const script = [
      `mount -t tmpfs -o uid=${MESH_UID},gid=${MESH_UID},mode=0755 tmpfs /run/mesh`,
      `exec setpriv --reuid=${MESH_UID} --regid=${MESH_UID} --clear-groups --inh-caps=${caps} --ambient-caps=${caps} --bounding-set=-all,${caps} ` +
      `env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")} ${argv.join(" ")}`,
    ].join("\n");
    const log = Bun.file(join(tmp, "ztunnel.log"));
    const zt = Bun.spawn(inVm(["unshare", "-m", "--propagation", "private", "sh", "-c", script]), { stdout: log, stderr: log });
    ztPid = zt.pid;
    await waitFor("the VM ztunnel ready", () => sh(inVm(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", "http://127.0.0.1:15021/healthz/ready"])).out === "200", 30_000)
      .catch((e) => {
        throw new Error(`${(e as Error).message}\n${readFileSync(join(tmp, "ztunnel.log"), "utf8")}`);
      });
    // The application, as another user.
    Bun.spawn(asApp([MESH, "httpbin", "--port", "9090", "--quiet"]), { stdout: "ignore", stderr: "ignore" });
    await waitFor("the VM app", () => sh(inVm(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", `http://127.0.0.1:9090/get`])).out === "200", 20_000);
  }, 180_000);

  afterAll(async () => {
    // Our processes in the VM namespace, by PID; then the namespace (its veth goes with it), then the lab.
    for (const pid of sh(["ip", "netns", "pids", vmNs]).out.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGTERM");
      } catch { /* gone */ }
    }
    const end = Date.now() + 5000;
    while (sh(["ip", "netns", "pids", vmNs]).out.trim() && Date.now() < end) await Bun.sleep(50);
    for (const pid of sh(["ip", "netns", "pids", vmNs]).out.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    sh(["ip", "netns", "delete", vmNs]);
    await forceDown(prefix);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  test("the ztunnel runs as mesh (1337) with only NET_ADMIN and NET_RAW, and captures by owner match", () => {
    const pids = sh(["ip", "netns", "pids", vmNs]).out.split("\n").filter(Boolean);
    const zt = pids.map((p) => ({ p, status: readFileSync(`/proc/${p}/status`, "utf8"), cmd: readFileSync(`/proc/${p}/cmdline`, "utf8") }))
      .find((x) => x.cmd.includes("ztunnel"));
    expect(zt).toBeDefined();
    expect(/^Uid:\s+(\d+)/m.exec(zt!.status)![1]).toBe(String(MESH_UID));
    expect(/^Gid:\s+(\d+)/m.exec(zt!.status)![1]).toBe(String(MESH_UID));
    // CAP_NET_ADMIN (12) and CAP_NET_RAW (13): 0x3000, nothing else, and NoNewPrivs-style bounding set.
    expect(/^CapEff:\s+(\w+)/m.exec(zt!.status)![1]).toBe("0000000000003000");
    expect(/^CapBnd:\s+(\w+)/m.exec(zt!.status)![1]).toBe("0000000000003000");
    const rules = must(inVm(["iptables", "-t", "nat", "-S"]));
    expect(rules).toContain(`-A MESH-OUTPUT -p tcp -m owner --gid-owner ${MESH_UID} -j RETURN`);
    expect(rules).toContain("-A MESH-OUTPUT -p tcp -j REDIRECT --to-ports 15001");
    expect(rules).toContain(`-A MESH-PREROUTING -d ${VM_IP}/32 -p tcp -m multiport --dports 9090 -j REDIRECT --to-ports 15006`);
    expect(ztPid).toBeGreaterThan(0);
  });

  test("the VM calls a pod's Service over HBONE with its own identity", () => {
    const r = sh(asApp(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.96.0.10/get"]));
    expect(r.out).toBe("200");
    // The destination (node-a's ztunnel) saw the VM's principal, over mutual TLS.
    const m = metrics(`mlab.${prefix}-node-node-a`);
    const line = m.split("\n").find((l) =>
      l.startsWith("istio_tcp_connections_opened_total{") && l.includes('reporter="destination"') &&
      l.includes(`source_principal="${VM_PRINCIPAL}"`) && l.includes('destination_principal="spiffe://cluster.local/ns/shop/sa/web"')
    );
    expect(line).toContain('connection_security_policy="mutual_tls"');
    // And the VM's ztunnel reported it as the source.
    expect(metrics(vmNs)).toMatch(new RegExp(`reporter="source",[^}]*source_principal="${VM_PRINCIPAL}"[^}]*destination_principal="spiffe://cluster.local/ns/shop/sa/web"`));
  });

  test("a pod calls the VM's Service over HBONE; the VM's ztunnel names the pod's principal", async () => {
    const r = await mesh(["lab", "exec", "--prefix", prefix, "shop/client", "--", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.96.0.30/get"], 30_000);
    expect(r.stdout).toBe("200");
    const line = metrics(vmNs).split("\n").find((l) =>
      l.startsWith("istio_tcp_connections_opened_total{") && l.includes('reporter="destination"') &&
      l.includes('source_principal="spiffe://cluster.local/ns/shop/sa/client"') && l.includes(`destination_principal="${VM_PRINCIPAL}"`)
    );
    expect(line).toContain('connection_security_policy="mutual_tls"');
    expect(line).toContain('destination_service="vm-svc.shop.svc.cluster.local"');
  });

  test("an L4 DENY for the VM's identity holds (and only for it)", async () => {
    const denied = sh(asApp(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.96.0.40/get"]));
    expect(denied.out).not.toBe("200");
    const allowed = await mesh(["lab", "exec", "--prefix", prefix, "shop/client", "--", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.96.0.40/get"], 30_000);
    expect(allowed.stdout).toBe("200");
    // The refusal happened at the destination ztunnel, by policy, against the VM's authenticated principal.
    const seen = metrics(`mlab.${prefix}-node-node-a`).split("\n").filter((l) =>
      l.startsWith("istio_tcp_connections_opened_total{") && l.includes(`source_principal="${VM_PRINCIPAL}"`) && l.includes("sa/secret")
    );
    expect(seen.length).toBeGreaterThan(0);
    for (const l of seen) expect(l).toContain('response_flags="DENY"');
  });

  test("nothing leaves the VM in plaintext: its app's TCP straight to a pod address goes through the ztunnel too", () => {
    const toWeb = () =>
      metrics(vmNs).split("\n")
        .filter((l) => l.startsWith("istio_tcp_connections_opened_total{") && l.includes('reporter="source"') && l.includes('destination_principal="spiffe://cluster.local/ns/shop/sa/web"') && l.includes('connection_security_policy="mutual_tls"'))
        .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
    const before = toWeb();
    expect(sh(asApp(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.244.1.10:8080/get"])).out).toBe("200");
    expect(toWeb()).toBe(before + 1);
  });
});
