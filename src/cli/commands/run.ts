/**
 * `mesh run --role ...`: starts one or more roles in this process, with the shared metrics (15020),
 * readiness (15021) and admin (15000) servers, and drains them on SIGTERM/SIGINT.
 *
 * With the control role in the same process, the proxies need none of --control-plane, --ca-cert and
 * --token-file: they dial it on loopback, trust DATA_DIR/root-cert.pem and get tokens minted here (see
 * ./_run_local.ts). `--role all` is the single-host mesh: control, this node's ztunnel and a waypoint for
 * every istio-waypoint Gateway whose address is on this host.
 */
import { join } from "node:path";
import { Hono } from "hono";
import type { Command } from "../command.ts";
import type { Parsed } from "../args.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { logger, setLevel, splitAddr, type Level } from "../../core/mod.ts";
import { type RoleContext, type RoleHandle, startAdminServers } from "../../admin/mod.ts";
import { Registry } from "../../telemetry/mod.ts";
import type * as Control from "../../control/mod.ts";
import type { ControlHandle } from "../../control/mod.ts";
import { verifyBootstrapToken } from "../../identity/mod.ts";
import { defaultDataDir, defaultNode, type LocalControl, type LocalProxy, localControlPlane, planWaypoints, prepareLocalProxy, ztunnelRunDir } from "./_run_local.ts";

const log = logger("run");

// Each role's module graph is loaded when that role starts: a ztunnel process does not hold the control
// plane's (configuration parsing, the CA's X.509 library, the xDS server) nor the waypoint's in memory.
const startControl: typeof Control.startControl = async (...a) => (await import("../../control/mod.ts")).startControl(...a);
const startZtunnel = async (...a: Parameters<typeof import("../../ztunnel/mod.ts").startZtunnel>) => (await import("../../ztunnel/mod.ts")).startZtunnel(...a);
const startWaypoint = async (...a: Parameters<typeof import("../../waypoint/mod.ts").startWaypoint>) => (await import("../../waypoint/mod.ts")).startWaypoint(...a);
const ROLES = ["control", "ztunnel", "waypoint"] as const;
type RoleName = (typeof ROLES)[number];

export const run: Command = {
  name: "run",
  summary: "run one or more roles: control, ztunnel, waypoint, or all of them on one host",
  usage: "mesh run --role control|ztunnel|waypoint[,ROLE...] [flags]  |  mesh run --role all --config FILE [--data-dir DIR] [--node NAME]",
  details: `Examples:
  mesh run --role control --config mesh.yaml --data-dir /var/lib/mesh --listen 10.0.0.10:15012
  mesh run --role ztunnel --node worker-a --control-plane 10.0.0.10:15012 --ca-cert root-cert.pem \\
      --token-file worker-a.token --redirect node
  mesh run --role waypoint --gateway shop/inventory-waypoint --control-plane 10.0.0.10:15012 \\
      --ca-cert root-cert.pem --token-file wp.token
  mesh run --role all --config mesh.yaml                       # the whole mesh on this host
  mesh run --role control,ztunnel --config mesh.yaml --data-dir /var/lib/mesh --node worker-a
SIGTERM drains: listeners stop accepting, open connections get --drain-timeout to finish. A ztunnel then
exits leaving its capture rules (fail closed: captured traffic is refused until a ztunnel is back);
--cleanup-on-exit (uninstall) or \`mesh iptables cleanup\` removes them.

Control and proxies in one process (--role control,ztunnel, control,waypoint, all):
  The proxies dial the control role on loopback (127.0.0.1, or ::1, when --listen is a wildcard; else the
  --listen address) at its bound port, trust DATA_DIR/root-cert.pem, and use bootstrap tokens minted at
  start into DATA_DIR/proxies/<ztunnel-NODE|waypoint-NS-NAME>/token (mode 0600); each proxy keeps its
  last-known-good configuration and certificates in that directory. --control-plane and --ca-cert, when
  given, still win; --token-file too, with a single proxy (a token names one node or Gateway).

--role all (the single-host default):
  control, then one ztunnel, then one waypoint per istio-waypoint Gateway whose address is on this host.
  --data-dir  default /var/lib/mesh as root, else $XDG_STATE_HOME/mesh (~/.local/state/mesh)
  --node      default: the only node the configuration's workloads name (spec.nodeName, or a
              WorkloadEntry's node); if they name none or several, this machine's hostname
  --redirect  default none (no capture rules); give --redirect host to capture this host's traffic
  --hbone-addr, --outbound-addr, --inbound-addr apply to the ztunnel (HBONE default 0.0.0.0:15008).
  Waypoints: each listens on its Gateway's first address that is local to this host (an interface
  address, or anything in 127.0.0.0/8, which Linux serves on lo), at its HBONE listener's port (15008).
  The ztunnel's 0.0.0.0:15008 and a waypoint's ADDRESS:15008 coexist (SO_REUSEPORT; connections to the
  Gateway's address reach the waypoint, every other address the ztunnel), so a single host gives each
  Gateway an address of its own, e.g. spec.addresses: [{type: IPAddress, value: 127.0.0.2}]. Skipped,
  with a log line saying why: a Gateway without spec.addresses (ztunnels cannot reach it: traffic bound
  to it is denied, so there is nothing to run), one whose addresses are not on this host (another host
  runs it), and one at exactly the ztunnel's --hbone-addr. Gateways are chosen at start: restart to pick
  up a new one. In the admin API (--admin-addr), /config_dump and /certs are the ztunnel's; a
  waypoint's are under /waypoint/NAMESPACE/NAME/config_dump and /waypoint/NAMESPACE/NAME/certs.
  The process is ready (/healthz/ready) when every role is.`,
  flags: [
    { name: "role", kind: "string", help: "control, ztunnel, waypoint, several separated by commas, or all" },
    { name: "config", kind: "string", help: "control: mesh.yaml file or directory (watched)" },
    { name: "kubernetes", kind: "boolean", help: "control: read the Kubernetes API instead of --config" },
    { name: "kubeconfig", kind: "string", help: "control: kubeconfig file (default: in-cluster, then KUBECONFIG)" },
    { name: "data-dir", kind: "string", help: "where the CA (control) or last-known-good state (proxies) lives (all: default /var/lib/mesh as root, else ~/.local/state/mesh)" },
    { name: "listen", kind: "string", help: "control: CSR and config address", default: "0.0.0.0:15012" },
    { name: "ui-listen", kind: "string", help: "control: traffic map page (admin token sign-in); HOST:PORT, unix:PATH, or off", default: "127.0.0.1:15014" },
    { name: "node", kind: "string", help: "ztunnel: this node's name (all: default the configuration's only node, else the hostname)" },
    { name: "gateway", kind: "string", help: "waypoint: NAMESPACE/NAME of its istio-waypoint Gateway" },
    { name: "control-plane", kind: "string", help: "ztunnel, waypoint: HOST:15012 of the control role (default: the one in this process)" },
    { name: "ca-cert", kind: "string", help: "ztunnel, waypoint: the control role's root-cert.pem (default: the one in this process)" },
    { name: "token-file", kind: "string", help: "ztunnel, waypoint: bootstrap token from `mesh token create` (default: minted by the control role in this process)" },
    { name: "redirect", kind: "string", help: "ztunnel: capture mode node, host or none", default: "none" },
    { name: "hbone-addr", kind: "string", help: "ztunnel, waypoint: HBONE listen address (default *:15008)" },
    { name: "access-log", kind: "boolean", help: "waypoint: an access log line per request (--access-log=false: none)", default: true },
    { name: "outbound-addr", kind: "string", help: "ztunnel: outbound capture listen address (default *:15001)" },
    { name: "inbound-addr", kind: "string", help: "ztunnel: inbound plaintext listen address (default *:15006)" },
    { name: "capture-gid", kind: "string", help: "ztunnel --redirect host: group whose sockets are never captured (the ztunnel runs with it)", default: "1337" },
    { name: "capture-check", kind: "string", help: "ztunnel: how often the capture rules are checked and repaired", default: "10s" },
    { name: "cleanup-on-exit", kind: "boolean", help: "ztunnel: remove the capture rules on a clean stop (uninstall); without it they stay and captured traffic is refused until a ztunnel is back" },
    { name: "pool-idle-timeout", kind: "string", help: "ztunnel: close pooled HBONE connections idle this long", default: "10s" },
    { name: "dns-addr", kind: "string", help: "ztunnel: DNS proxy listen address, UDP and TCP (default *:15053 with --redirect node; none: no DNS proxy)" },
    { name: "dns-upstream", kind: "string", help: "ztunnel: upstream resolvers IP[:PORT],... (default: the nameservers of /etc/resolv.conf)" },
    { name: "metrics-addr", kind: "string", help: "Prometheus /metrics listen address", default: "0.0.0.0:15020" },
    { name: "ready-addr", kind: "string", help: "/healthz/ready listen address", default: "0.0.0.0:15021" },
    { name: "admin-addr", kind: "string", help: "admin API listen address (localhost only)", default: "127.0.0.1:15000" },
    { name: "drain-timeout", kind: "string", help: "how long SIGTERM waits for open connections", default: "20s" },
    { name: "log-level", kind: "string", help: "debug, info, warn or error", default: "info" },
  ],
  async run(args) {
    const { roles, all } = parseRoles(args);
    if (all) checkAllFlags(args);
    // A token names one node or Gateway: with several proxies, only the in-process control role can give each its own.
    if (roles.includes("control") && str(args, "token-file") && (all || roles.length > 2)) {
      throw new MeshError(ErrorCode.Usage, "--token-file names one proxy, but this process runs several: leave it out, the control role in this process makes each one's token");
    }
    setLevel("default", String(args.flags["log-level"]) as Level);
    const dataDir = str(args, "data-dir") ?? (all ? defaultDataDir() : undefined);
    const metrics = new Registry();
    keepServingOnStrayErrors(metrics);
    // The admin API asks for its local secret (src/admin/auth.ts); the control role also takes admin tokens.
    const controlDataDir = roles.includes("control") ? dataDir : undefined;
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
    const ctx: RoleContext = { metrics, admin: servers.admin };
    const drainMs = parseDuration(str(args, "drain-timeout") ?? "20s");
    const started: RoleHandle[] = [];
    const add = (h: RoleHandle) => {
      started.push(h);
      servers.addRole(h);
    };
    try {
      // The control role first: proxies of this process take their address, root and tokens from it.
      let local: LocalControl | undefined;
      let control: ControlHandle | undefined;
      if (roles.includes("control")) {
        control = await startControl(controlOptions(args, dataDir), ctx);
        add(control);
        local = { controlPlane: localControlPlane(str(args, "listen") ?? "0.0.0.0:15012", control.port), caCert: join(control.ca.dataDir, "root-cert.pem"), dataDir: control.ca.dataDir };
      }
      if (all) {
        for (const h of await startAll(args, control!, local!, ctx, drainMs, servers.admin)) add(h);
      } else {
        for (const role of roles) {
          if (role === "ztunnel") {
            const node = need(args, "node", role);
            add(await startZtunnel({ ...ztunnelAddrs(args), node, ...(await proxyAccess(args, role, { node }, local)), drainMs }, ctx));
          } else if (role === "waypoint") {
            const gateway = need(args, "gateway", role);
            // Beside a ztunnel, the waypoint's admin routes go under a prefix: the root ones are the ztunnel's.
            const wctx = roles.includes("ztunnel") ? waypointContext(ctx, servers.admin, gateway) : ctx;
            add(await startWaypoint({ gateway, ...(await proxyAccess(args, role, { gateway }, local)), hboneAddr: str(args, "hbone-addr"), drainMs, accessLog: accessLog(args) }, wctx));
          }
        }
      }
    } catch (e) {
      for (const h of started.reverse()) await h.stop({ drainMs: 0 }).catch(() => {});
      await servers.close();
      throw e;
    }
    log.info("started", { roles: started.map((h) => h.name), ports: servers.ports });
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
    // Everything is stopped and flushed by now; a handle some library forgot to close must not keep a
    // drained proxy alive (a supervisor would wait for it), so exit shortly if the loop isn't empty.
    setTimeout(() => process.exit(0), 2000).unref();
    return 0;
  },
};

function str(args: Parsed, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" ? v : undefined;
}

function accessLog(args: Parsed): boolean {
  return args.flags["access-log"] !== false;
}

function need(args: Parsed, name: string, role: string): string {
  const v = str(args, name);
  if (!v) throw new MeshError(ErrorCode.Usage, `--role ${role} needs --${name} (see mesh run --help)`);
  return v;
}

function parseRoles(args: Parsed): { roles: RoleName[]; all: boolean } {
  const raw = str(args, "role");
  if (!raw) throw new MeshError(ErrorCode.Usage, `Missing --role: one of ${ROLES.join(", ")}, or all (see mesh run --help)`);
  const roles = raw.split(",").map((r) => r.trim());
  if (roles.includes("all")) {
    if (roles.length > 1) throw new MeshError(ErrorCode.Usage, `--role all already runs control, ztunnel and waypoints: give it alone, not "${raw}"`);
    return { roles: ["control", "ztunnel", "waypoint"], all: true };
  }
  for (const r of roles) {
    if (!(ROLES as readonly string[]).includes(r)) {
      throw new MeshError(ErrorCode.Usage, `Unknown role "${r}": use ${ROLES.join(", ")}, or all`);
    }
  }
  if (new Set(roles).size !== roles.length) throw new MeshError(ErrorCode.Usage, `--role names a role twice: "${raw}"`);
  return { roles: roles as RoleName[], all: false };
}

function checkAllFlags(args: Parsed): void {
  if (args.flags.kubernetes === true) {
    throw new MeshError(ErrorCode.Usage, "--role all runs one host from --config FILE; on Kubernetes run --role control --kubernetes, and the ztunnel DaemonSet apart");
  }
  if (!str(args, "config")) throw new MeshError(ErrorCode.Usage, "--role all needs --config FILE|DIR (see mesh run --help)");
  if (str(args, "gateway")) {
    throw new MeshError(ErrorCode.Usage, "--role all starts a waypoint for every Gateway on this host by itself: leave out --gateway (or run --role control,ztunnel,waypoint --gateway NS/NAME)");
  }
}

function controlOptions(args: Parsed, dataDir: string | undefined): Parameters<typeof Control.startControl>[0] {
  const kubernetes = args.flags.kubernetes === true;
  if (!kubernetes && !str(args, "config")) {
    throw new MeshError(ErrorCode.Usage, "--role control needs --config FILE|DIR or --kubernetes");
  }
  if (!dataDir) throw new MeshError(ErrorCode.Usage, "--role control needs --data-dir (see mesh run --help)");
  return {
    config: str(args, "config"),
    kubernetes,
    kubeconfig: str(args, "kubeconfig"),
    dataDir,
    listen: str(args, "listen") ?? "0.0.0.0:15012",
    uiListen: str(args, "ui-listen") === "off" ? undefined : str(args, "ui-listen") ?? "127.0.0.1:15014",
  };
}

/** How a proxy reaches the control role: the flags, else (for what they leave out) the one in this process. */
async function proxyAccess(args: Parsed, role: RoleName, who: LocalProxy, local: LocalControl | undefined) {
  if (!local) {
    return {
      controlPlane: need(args, "control-plane", role),
      caCert: need(args, "ca-cert", role),
      tokenFile: need(args, "token-file", role),
      dataDir: str(args, "data-dir"),
    };
  }
  const own = await prepareLocalProxy(local, who);
  return {
    controlPlane: str(args, "control-plane") || local.controlPlane,
    caCert: str(args, "ca-cert") || local.caCert,
    tokenFile: str(args, "token-file") || own.tokenFile,
    dataDir: own.stateDir,
  };
}

function captureGid(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new MeshError(ErrorCode.Usage, `--capture-gid must be a group id (a number), not "${v}"`);
  return n;
}

function ztunnelAddrs(args: Parsed) {
  const redirect = str(args, "redirect") ?? "none";
  if (redirect !== "node" && redirect !== "host" && redirect !== "none") {
    throw new MeshError(ErrorCode.Usage, `--redirect must be node, host or none, not "${redirect}"`);
  }
  return {
    redirect: redirect as "node" | "host" | "none",
    hboneAddr: str(args, "hbone-addr") ?? "0.0.0.0:15008",
    outboundAddr: str(args, "outbound-addr") ?? (redirect === "host" ? "127.0.0.1:15001" : "0.0.0.0:15001"),
    inboundPlaintextAddr: str(args, "inbound-addr") ?? "0.0.0.0:15006",
    runDir: ztunnelRunDir(),
    captureGid: captureGid(str(args, "capture-gid") ?? "1337"),
    ruleCheckMs: parseDuration(str(args, "capture-check") ?? "10s"),
    cleanupOnExit: args.flags["cleanup-on-exit"] === true,
    poolIdleMs: parseDuration(str(args, "pool-idle-timeout") ?? "10s"),
    dnsAddr: str(args, "dns-addr"),
    dnsUpstream: str(args, "dns-upstream"),
  };
}

/** A waypoint's admin routes under /waypoint/NAMESPACE/NAME, so they do not shadow (or hide behind) a ztunnel's. */
function waypointContext(ctx: RoleContext, admin: Hono, gateway: string): RoleContext {
  const sub = new Hono();
  const prefix = `/waypoint/${gateway}`;
  admin.all(`${prefix}/*`, (c) => {
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(prefix.length) || "/";
    return sub.fetch(new Request(url, c.req.raw));
  });
  return { ...ctx, admin: sub };
}

/** A waypoint's handle named after its Gateway, so readiness reasons say which one is not ready. */
function named(h: RoleHandle, name: string): RoleHandle {
  return { name, readiness: () => h.readiness(), stop: (o) => h.stop(o) };
}

/** `--role all` after the control role: this node's ztunnel, then the waypoints of this host's Gateways. */
async function startAll(args: Parsed, control: ControlHandle, local: LocalControl, ctx: RoleContext, drainMs: number, admin: Hono): Promise<RoleHandle[]> {
  const handles: RoleHandle[] = [];
  try {
    const model = control.model();
    const chosen = str(args, "node");
    const { node, why } = chosen ? { node: chosen, why: "--node" } : defaultNode(model);
    const addrs = ztunnelAddrs(args);
    log.info("ztunnel node", { node, why });
    handles.push(await startZtunnel({ ...addrs, node, ...(await proxyAccess(args, "ztunnel", { node }, local)), drainMs }, ctx));
    if (!model) {
      log.warn("no valid configuration yet: no waypoint started (fix the configuration and restart to run this host's waypoints)");
      return handles;
    }
    const { start, skip } = planWaypoints(model, splitAddr(addrs.hboneAddr, 15008));
    for (const s of skip) log.info("waypoint not started here", { gateway: s.gateway, reason: s.reason });
    for (const w of start) {
      if (w.note) log.warn("waypoint started, but", { gateway: w.gateway, note: w.note });
      const access = await proxyAccess(args, "waypoint", { gateway: w.gateway }, local);
      const h = await startWaypoint({ gateway: w.gateway, ...access, hboneAddr: w.hboneAddr, drainMs, accessLog: accessLog(args) }, waypointContext(ctx, admin, w.gateway));
      handles.push(named(h, `waypoint ${w.gateway}`));
      log.info("waypoint starting", { gateway: w.gateway, hbone: w.hboneAddr });
    }
    return handles;
  } catch (e) {
    for (const h of handles.reverse()) await h.stop({ drainMs: 0 }).catch(() => {});
    throw e;
  }
}

/** "90s", "15m", "24h", "7d", "500ms", or plain seconds -> milliseconds. */
export function parseDuration(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/);
  if (!m) throw new MeshError(ErrorCode.Usage, `Bad duration "${s}": use e.g. 500ms, 20s, 15m, 24h or 7d`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "s"];
  return Number(m[1]) * mult;
}

/**
 * A proxy carries every connection of its node: one bug on one connection's path (a throwing listener,
 * a forgotten `.catch`) must cost that connection, not all of them. Bun, like Node, exits on an
 * uncaught exception or unhandled rejection unless someone listens; we log it with its stack and count
 * it, so it is visible and fixable, and keep serving.
 */
export function keepServingOnStrayErrors(metrics: Registry): void {
  const stray = metrics.counter("mesh_uncaught_errors_total", "Errors no handler caught (logged; the process kept serving)", ["kind"]);
  const report = (kind: string) => (e: unknown) => {
    stray.inc({ kind });
    log.error("uncaught error (kept serving)", { kind, error: String(e), stack: e instanceof Error ? e.stack : undefined });
  };
  process.on("uncaughtException", report("exception"));
  process.on("unhandledRejection", report("rejection"));
}
