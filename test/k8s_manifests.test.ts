/**
 * The manifests in k8s/: they parse; `mesh check k8s/` is clean but for warnings about kinds the mesh does
 * not read; the DaemonSet and the control Deployment run commands `mesh run --help` (dist/mesh) documents,
 * with every flag each role needs; the ztunnel has exactly NET_ADMIN and NET_RAW, no privilege, readiness on
 * 15021, requests and limits, a grace period longer than its drain, and a projected istio-ca token; the
 * waypoint Deployment the control role generates passes the same checks; the Kustomization lists every file.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "../src/cli/mod.ts";
import { run } from "../src/cli/mod.ts";
import { waypointObjects } from "../src/kube/mod.ts";
import { ensureBuilt, find, K8S_DIR, manifests, mesh } from "./support/mod.ts";

ensureBuilt();
const help = (await mesh(["run", "--help"])).stdout;
/** The flags `mesh run --help` lists: name -> takes a value. */
const HELP_FLAGS = new Map([...help.matchAll(/^\s+--([a-z][a-z-]*)( VALUE)?\s/gm)].map((m) => [m[1]!, m[2] !== undefined]));
const HELP_ENV = new Set([...help.matchAll(/\[(MESH_[A-Z_]+)\]/g)].map((m) => m[1]!));

const NEEDS: Record<string, string[]> = {
  control: ["data-dir"],
  ztunnel: ["node", "control-plane", "ca-cert", "token-file"],
  waypoint: ["gateway", "control-plane", "ca-cert", "token-file"],
};

// deno-lint-ignore no-explicit-any
type Container = any;

/** Checks one container's command against `mesh run --help` and the role's needs; returns the parsed flags. */
function checkCommand(c: Container, podSpec: { volumes?: { name: string }[] }): Record<string, unknown> {
  expect(c.command).toEqual(["/usr/local/bin/mesh"]);
  const args: string[] = c.args;
  expect(args[0]).toBe("run");
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) continue;
    const name = a.slice(2).split("=")[0]!;
    expect(HELP_FLAGS.has(name) ? name : `--${name} is not in mesh run --help`).toBe(name);
    if (HELP_FLAGS.get(name)) i++;
  }
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    expect(e.name === "MESH_LOG_LEVEL" || HELP_ENV.has(e.name) ? e.name : `${e.name} is not a MESH_* twin in mesh run --help`).toBe(e.name);
    env[e.name] = e.value ?? `<${e.valueFrom ? "from the downward API" : "unset"}>`;
  }
  const parsed = parseArgs(args.slice(1), run, env).flags;
  const role = String(parsed.role);
  for (const f of NEEDS[role]!) expect(parsed[f] ? f : `${role}: missing --${f}`).toBe(f);
  // Files named on the command line come from mounted volumes.
  const mounts: { mountPath: string; name: string }[] = c.volumeMounts ?? [];
  for (const f of ["ca-cert", "token-file", "data-dir"]) {
    const v = parsed[f];
    if (typeof v !== "string") continue;
    const m = mounts.find((x) => v === x.mountPath || v.startsWith(x.mountPath + "/"));
    expect(m ? f : `--${f} ${v} is on no volume mount`).toBe(f);
    expect(podSpec.volumes?.some((x) => x.name === m!.name)).toBe(true);
  }
  // Readiness and metrics as the README's "Ports" say: 15021 and 15020.
  expect(c.readinessProbe.httpGet).toEqual({ path: "/healthz/ready", port: 15021 });
  expect(c.resources.requests.cpu).toBeDefined();
  expect(c.resources.requests.memory).toBeDefined();
  expect(c.resources.limits.memory).toBeDefined();
  return parsed;
}

function drainSeconds(flags: Record<string, unknown>): number {
  const m = /^(\d+)s$/.exec(String(flags["drain-timeout"] ?? "20s"));
  return Number(m![1]);
}

describe("k8s/ manifests", () => {
  test("they parse, and mesh check k8s/ reports no error, only kinds it does not read", async () => {
    const objs = manifests();
    expect(objs.length).toBeGreaterThanOrEqual(10);
    const r = await mesh(["check", K8S_DIR, "--format", "json"]);
    expect(r.code).toBe(0);
    const diags = JSON.parse(r.stdout).diagnostics as { severity: string; rule: string }[];
    expect(diags.filter((d) => d.severity === "error")).toEqual([]);
    expect([...new Set(diags.map((d) => d.rule))]).toEqual(["ignored-kind"]);
  });

  test("the ztunnel DaemonSet: host network, NET_ADMIN and NET_RAW only, projected token, drain covered", () => {
    const ds = find("DaemonSet", "ztunnel");
    const spec = ds.spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.automountServiceAccountToken).toBe(false);
    const c = spec.containers[0];
    const flags = checkCommand(c, spec);
    expect(flags.role).toBe("ztunnel");
    expect(flags.redirect).toBe("node");
    expect(flags["control-plane"]).toBe("mesh-control.mesh-system.svc:15012");
    expect(c.env.find((e: { name: string }) => e.name === "MESH_NODE").valueFrom.fieldRef.fieldPath).toBe("spec.nodeName");
    const sc = c.securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    expect([...sc.capabilities.add].sort()).toEqual(["NET_ADMIN", "NET_RAW"]);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(drainSeconds(flags));
    const tok = spec.volumes.find((v: { projected?: unknown }) => v.projected).projected.sources[0].serviceAccountToken;
    expect(tok.audience).toBe("istio-ca");
    expect(String(flags["token-file"])).toBe(`/var/run/secrets/tokens/${tok.path}`);
    const ca = spec.volumes.find((v: { configMap?: { name: string } }) => v.configMap);
    expect(ca.configMap.name).toBe("mesh-ca-root-cert");
  });

  test("the ztunnel DaemonSet upgrades by overlapping: the new pod starts before the old one stops, on ports it can share", () => {
    const ds = find("DaemonSet", "ztunnel");
    expect(ds.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const spec = ds.spec.template.spec;
    // On a hostNetwork pod a declared containerPort becomes a hostPort: the surge pod could then never be
    // scheduled next to the old one, and the rollout would stop at the first node.
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      expect(c.ports ?? []).toEqual([]);
    }
    expect(spec.containers[0].readinessProbe.httpGet.port).toBe(15021);
    // The two instances find each other (and keep the capture rules) through /run/mesh on the host.
    const run = spec.volumes.find((v: { name: string }) => v.name === "run");
    expect(run.hostPath.path).toBe("/run/mesh");
    expect(spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "run").mountPath).toBe("/run/mesh");
    expect(ds.spec.template.metadata.annotations["prometheus.io/port"]).toBe("15020");
  });

  test("the control Deployment and its Service on 15012", () => {
    const d = find("Deployment", "mesh-control");
    const spec = d.spec.template.spec;
    const flags = checkCommand(spec.containers[0], spec);
    expect(flags.role).toBe("control");
    expect(flags.kubernetes).toBe(true);
    expect(spec.serviceAccountName).toBe("mesh-control");
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(drainSeconds(flags));
    expect(spec.containers[0].securityContext.capabilities.drop).toEqual(["ALL"]);
    const svc = find("Service", "mesh-control");
    expect(svc.spec.ports.map((p: { port: number }) => p.port)).toEqual([15012]);
    expect(svc.spec.selector).toEqual(d.spec.template.metadata.labels);
  });

  test("the waypoint Deployment the control role creates passes the same checks", () => {
    const gw = { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: { name: "wp", namespace: "shop", uid: "u1" }, spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }] } };
    const { deployment } = waypointObjects(gw, { image: "mesh:0.1.0", controlPlane: "mesh-control.mesh-system.svc:15012" });
    const spec = (deployment.spec as { template: { spec: Container } }).template.spec;
    const flags = checkCommand(spec.containers[0], spec);
    expect(flags.role).toBe("waypoint");
    expect(flags.gateway).toBe("shop/wp");
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(drainSeconds(flags));
  });

  test("the Kustomization lists every manifest (kubectl apply -k k8s/ = kubectl apply -f k8s/)", () => {
    const k = readFileSync(join(K8S_DIR, "Kustomization"), "utf8");
    const listed = [...k.matchAll(/^- (\S+\.yaml)$/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual(readdirSync(K8S_DIR).filter((f) => f.endsWith(".yaml")).sort());
  });

  test.skipIf(!Bun.which("kubectl"))("kubectl kustomize k8s/ builds every object offline (kubectl present)", () => {
    const r = Bun.spawnSync(["kubectl", "kustomize", K8S_DIR], { stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const kinds = [...r.stdout.toString().matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    expect(kinds.length).toBe(manifests().length);
  });
});
