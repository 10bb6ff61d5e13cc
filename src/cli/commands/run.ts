/**
 * `mesh run --role ...`: starts one or more roles in this process, with the shared metrics (15020),
 * readiness (15021) and admin (15000) servers, and drains them on SIGTERM/SIGINT.
 */
import type { Command } from "../command.ts";
import type { Parsed } from "../args.ts";
import { ErrorCode, MeshError } from "../../core/errors.ts";
import { logger, setLevel, type Level } from "../../core/log.ts";
import { startAdminServers, type RoleHandle } from "../../admin/mod.ts";
import { Registry } from "../../telemetry/mod.ts";
import { startControl } from "../../control/mod.ts";
import { verifyBootstrapToken } from "../../identity/mod.ts";
import { startZtunnel } from "../../ztunnel/mod.ts";
import { startWaypoint } from "../../waypoint/mod.ts";

const log = logger("run");
const ROLES = ["control", "ztunnel", "waypoint"] as const;
type RoleName = (typeof ROLES)[number];

export const run: Command = {
  name: "run",
  summary: "run one or more roles: control, ztunnel, waypoint",
  usage: "mesh run --role control|ztunnel|waypoint[,ROLE...] [flags]",
  details: `Examples:
  mesh run --role control --config mesh.yaml --data-dir /var/lib/mesh --listen 10.0.0.10:15012
  mesh run --role ztunnel --node worker-a --control-plane 10.0.0.10:15012 --ca-cert root-cert.pem \\
      --token-file worker-a.token --redirect node
  mesh run --role waypoint --gateway shop/inventory-waypoint --control-plane 10.0.0.10:15012 \\
      --ca-cert root-cert.pem --token-file wp.token
SIGTERM drains: listeners stop accepting, open connections get --drain-timeout to finish.`,
  flags: [
    { name: "role", kind: "string", help: "control, ztunnel, waypoint, or several separated by commas" },
    { name: "config", kind: "string", help: "control: mesh.yaml file or directory (watched)" },
    { name: "kubernetes", kind: "boolean", help: "control: read the Kubernetes API instead of --config" },
    { name: "kubeconfig", kind: "string", help: "control: kubeconfig file (default: in-cluster, then KUBECONFIG)" },
    { name: "data-dir", kind: "string", help: "where the CA (control) or last-known-good state (proxies) lives" },
    { name: "listen", kind: "string", help: "control: CSR and config address", default: "0.0.0.0:15012" },
    { name: "node", kind: "string", help: "ztunnel: this node's name" },
    { name: "gateway", kind: "string", help: "waypoint: NAMESPACE/NAME of its istio-waypoint Gateway" },
    { name: "control-plane", kind: "string", help: "ztunnel, waypoint: HOST:15012 of the control role" },
    { name: "ca-cert", kind: "string", help: "ztunnel, waypoint: the control role's root-cert.pem" },
    { name: "token-file", kind: "string", help: "ztunnel, waypoint: bootstrap token from `mesh token create`" },
    { name: "redirect", kind: "string", help: "ztunnel: capture mode node, host or none", default: "none" },
    { name: "hbone-addr", kind: "string", help: "ztunnel, waypoint: HBONE listen address (default *:15008)" },
    { name: "access-log", kind: "boolean", help: "waypoint: an access log line per request (--access-log=false: none)", default: true },
    { name: "outbound-addr", kind: "string", help: "ztunnel: outbound capture listen address (default *:15001)" },
    { name: "inbound-addr", kind: "string", help: "ztunnel: inbound plaintext listen address (default *:15006)" },
    { name: "metrics-addr", kind: "string", help: "Prometheus /metrics listen address", default: "0.0.0.0:15020" },
    { name: "ready-addr", kind: "string", help: "/healthz/ready listen address", default: "0.0.0.0:15021" },
    { name: "admin-addr", kind: "string", help: "admin API listen address (localhost only)", default: "127.0.0.1:15000" },
    { name: "drain-timeout", kind: "string", help: "how long SIGTERM waits for open connections", default: "20s" },
    { name: "log-level", kind: "string", help: "debug, info, warn or error", default: "info" },
  ],
  async run(args) {
    const roles = parseRoles(args);
    setLevel("default", String(args.flags["log-level"]) as Level);
    const metrics = new Registry();
    // The admin API asks for its local secret (src/admin/auth.ts); the control role also takes admin tokens.
    const controlDataDir = roles.includes("control") ? str(args, "data-dir") : undefined;
    const servers = startAdminServers(
      {
        metrics: str(args, "metrics-addr"),
        ready: str(args, "ready-addr"),
        admin: str(args, "admin-addr"),
      },
      metrics,
      {
        auth: {
          verifyToken: controlDataDir ? async (t) => (await verifyBootstrapToken(controlDataDir, t)).kind === "admin" : undefined,
        },
      },
    );
    const ctx = { metrics, admin: servers.admin };
    const drainMs = parseDuration(str(args, "drain-timeout") ?? "20s");
    const started: RoleHandle[] = [];
    try {
      for (const role of roles) {
        const handle = await startRole(role, args, ctx, drainMs);
        started.push(handle);
        servers.addRole(handle);
      }
    } catch (e) {
      for (const h of started.reverse()) await h.stop({ drainMs: 0 }).catch(() => {});
      await servers.close();
      throw e;
    }
    log.info("started", { roles, ports: servers.ports });
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info("draining", { signal, drainMs });
        for (const h of [...started].reverse()) await h.stop({ drainMs }).catch((e) => log.error("stop failed", { role: h.name, error: String(e) }));
        await servers.close();
        resolve();
      };
      process.on("SIGTERM", () => void stop("SIGTERM"));
      process.on("SIGINT", () => void stop("SIGINT"));
    });
    return 0;
  },
};

function str(args: Parsed, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" ? v : undefined;
}

function need(args: Parsed, name: string, role: string): string {
  const v = str(args, name);
  if (!v) throw new MeshError(ErrorCode.Usage, `--role ${role} needs --${name} (see mesh run --help)`);
  return v;
}

function parseRoles(args: Parsed): RoleName[] {
  const raw = str(args, "role");
  if (!raw) throw new MeshError(ErrorCode.Usage, `Missing --role: one of ${ROLES.join(", ")} (see mesh run --help)`);
  const roles = raw.split(",").map((r) => r.trim());
  for (const r of roles) {
    if (!(ROLES as readonly string[]).includes(r)) {
      throw new MeshError(ErrorCode.Usage, `Unknown role "${r}": use ${ROLES.join(", ")}`);
    }
  }
  return roles as RoleName[];
}

async function startRole(role: RoleName, args: Parsed, ctx: Parameters<typeof startControl>[1], drainMs: number) {
  switch (role) {
    case "control": {
      const kubernetes = args.flags.kubernetes === true;
      if (!kubernetes && !str(args, "config")) {
        throw new MeshError(ErrorCode.Usage, "--role control needs --config FILE|DIR or --kubernetes");
      }
      return startControl({
        config: str(args, "config"),
        kubernetes,
        kubeconfig: str(args, "kubeconfig"),
        dataDir: need(args, "data-dir", role),
        listen: str(args, "listen") ?? "0.0.0.0:15012",
      }, ctx);
    }
    case "ztunnel": {
      const redirect = str(args, "redirect") ?? "none";
      if (redirect !== "node" && redirect !== "host" && redirect !== "none") {
        throw new MeshError(ErrorCode.Usage, `--redirect must be node, host or none, not "${redirect}"`);
      }
      return startZtunnel({
        node: need(args, "node", role),
        controlPlane: need(args, "control-plane", role),
        caCert: need(args, "ca-cert", role),
        tokenFile: need(args, "token-file", role),
        redirect,
        dataDir: str(args, "data-dir"),
        hboneAddr: str(args, "hbone-addr") ?? "0.0.0.0:15008",
        outboundAddr: str(args, "outbound-addr") ?? (redirect === "host" ? "127.0.0.1:15001" : "0.0.0.0:15001"),
        inboundPlaintextAddr: str(args, "inbound-addr") ?? "0.0.0.0:15006",
        drainMs,
      }, ctx);
    }
    case "waypoint":
      return startWaypoint({
        gateway: need(args, "gateway", role),
        controlPlane: need(args, "control-plane", role),
        caCert: need(args, "ca-cert", role),
        tokenFile: need(args, "token-file", role),
        dataDir: str(args, "data-dir"),
        hboneAddr: str(args, "hbone-addr"),
        drainMs,
        accessLog: args.flags["access-log"] !== false,
      }, ctx);
  }
}

/** "90s", "15m", "24h", "7d", "500ms", or plain seconds -> milliseconds. */
export function parseDuration(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/);
  if (!m) throw new MeshError(ErrorCode.Usage, `Bad duration "${s}": use e.g. 500ms, 20s, 15m, 24h or 7d`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "s"];
  return Number(m[1]) * mult;
}
