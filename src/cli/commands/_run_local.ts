/**
 * What `mesh run` works out when the control role runs in the same process as proxies: where the proxies
 * reach it, their bootstrap tokens (minted here, with the token-signing key in the data dir), and for
 * `--role all` which node this host is and which waypoints belong on it. Private to src/cli/commands.
 */
import { mkdirSync } from "node:fs";
import { homedir, hostname as osHostname, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { formatHostPort, splitAddr, writeFileAtomic } from "../../core/mod.ts";
import { createBootstrapToken } from "../../identity/mod.ts";
import type { MeshModel } from "../../model/mod.ts";

/** A proxy of this process, as the control role knows it. */
export type LocalProxy = { node: string } | { gateway: string };

/** The in-process control role, as its proxies use it. */
export interface LocalControl {
  /** HOST:PORT the proxies dial (a wildcard listen address becomes loopback). */
  controlPlane: string;
  /** DATA_DIR/root-cert.pem */
  caCert: string;
  dataDir: string;
}

/**
 * In-process tokens are made again at every start and sit next to the token-signing key (same directory,
 * same protection), so a long lifetime gives nothing away; a short one would break a proxy that has to
 * bootstrap again (its client certificate lapsed) in a process that has run for longer than that.
 */
const LOCAL_TOKEN_TTL_SECONDS = 365 * 86400;

/** `--data-dir` of `--role all` when none is given: /var/lib/mesh for root, else the user's state dir. */
export function defaultDataDir(env: Record<string, string | undefined> = process.env, uid = process.getuid?.()): string {
  if (uid === 0) return "/var/lib/mesh";
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(state, "mesh");
}

/**
 * Where a ztunnel records its running instance: /run/mesh as root (its default); for other users, who
 * cannot write there, their runtime dir (so a non-root `--role all` or `--redirect none` ztunnel starts).
 */
export function ztunnelRunDir(env: Record<string, string | undefined> = process.env, uid = process.getuid?.()): string | undefined {
  if (uid === 0 || uid === undefined) return undefined;
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "mesh") : join(tmpdir(), `mesh-run-${uid}`);
}

/** Where proxies of this process dial the control role listening at `listen` (bound to `port`). */
export function localControlPlane(listen: string, port: number): string {
  const { hostname } = splitAddr(listen, 15012);
  const host = hostname === "0.0.0.0" || hostname === "" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
  return formatHostPort(host, port);
}

/** File-name-safe id of a proxy: "ztunnel-worker-a", "waypoint-shop-inventory-waypoint". */
export function proxyDirName(p: LocalProxy): string {
  const raw = "node" in p ? `ztunnel-${p.node}` : `waypoint-${p.gateway.replace("/", "-")}`;
  return raw.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * A proxy's own directory under DATA_DIR/proxies (its last-known-good configuration and certificates, so
 * they never mix with the CA's files or another proxy's) with a fresh bootstrap token in `token` (0600).
 */
export async function prepareLocalProxy(control: LocalControl, p: LocalProxy): Promise<{ stateDir: string; tokenFile: string }> {
  const stateDir = join(control.dataDir, "proxies", proxyDirName(p));
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const token = await createBootstrapToken(control.dataDir, { ...p, ttlSeconds: LOCAL_TOKEN_TTL_SECONDS });
  const tokenFile = join(stateDir, "token");
  writeFileAtomic(tokenFile, token + "\n");
  return { stateDir, tokenFile };
}

/** Addresses of this host: its interfaces, plus all of 127.0.0.0/8 (Linux answers the whole block on lo). */
export function isLocalAddress(addr: string, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): boolean {
  const a = addr.replace(/^\[|\]$/g, "").toLowerCase();
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === "::1") return true;
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) if (i.address.replace(/%.*$/, "").toLowerCase() === a) return true;
  }
  return false;
}

/**
 * The node `--role all` runs the ztunnel of: the only node the configuration's workloads name, else this
 * machine's hostname.
 */
export function defaultNode(model: MeshModel | undefined, host = osHostname()): { node: string; why: string } {
  const nodes = [...new Set((model?.workloads ?? []).map((w) => w.node).filter(Boolean))].sort();
  if (nodes.length === 1) return { node: nodes[0]!, why: "the only node the configuration's workloads name" };
  const why = !model
    ? "no valid configuration yet: the host name"
    : nodes.length
    ? `the host name (the configuration names ${nodes.length} nodes: ${nodes.join(", ")}; give --node to pick one)`
    : "the host name (no workload names a node)";
  return { node: host, why };
}

export interface WaypointPlan {
  /** Gateway "namespace/name" */
  gateway: string;
  /** where its HBONE listener goes: a local Gateway address, the Gateway's HBONE port */
  hboneAddr: string;
  /** something the operator should know, though it runs */
  note?: string;
}

export interface WaypointSkip {
  gateway: string;
  reason: string;
}

/**
 * Which istio-waypoint Gateways get a waypoint in this process. A waypoint listens on its Gateway's own
 * address (ztunnels dial the first one, port 15008 or its HBONE listener's port); the ztunnel's wildcard
 * HBONE listener coexists with it (both set SO_REUSEPORT; the kernel prefers the exact address). So:
 * - a Gateway with a local address runs here, on the first local one;
 * - one whose addresses are all elsewhere is another host's business;
 * - one without addresses is unreachable (a ztunnel denies traffic bound to it): nothing to run;
 * - one whose address and port are exactly the ztunnel's HBONE listener would split that port with it.
 */
export function planWaypoints(
  model: MeshModel,
  ztunnelHbone: { hostname: string; port: number } | undefined,
  isLocal: (addr: string) => boolean = (a) => isLocalAddress(a),
): { start: WaypointPlan[]; skip: WaypointSkip[] } {
  const start: WaypointPlan[] = [];
  const skip: WaypointSkip[] = [];
  const waypoints = [...model.waypoints].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  for (const wp of waypoints) {
    const gateway = `${wp.namespace}/${wp.name}`;
    const port = wp.port || 15008;
    if (!wp.addresses.length) {
      skip.push({
        gateway,
        reason: "the Gateway has no spec.addresses, so no ztunnel can reach a waypoint for it (traffic bound to it is denied); " +
          "add spec.addresses: [{type: IPAddress, value: 127.0.0.N}] to run it on this host",
      });
      continue;
    }
    const at = wp.addresses.find(isLocal);
    if (!at) {
      skip.push({ gateway, reason: `its addresses (${wp.addresses.join(", ")}) are not on this host` });
      continue;
    }
    if (ztunnelHbone && ztunnelHbone.port === port && sameHost(ztunnelHbone.hostname, at)) {
      skip.push({ gateway, reason: `its address ${formatHostPort(at, port)} is the ztunnel's HBONE listener: give the ztunnel another --hbone-addr (default 0.0.0.0:15008)` });
      continue;
    }
    const plan: WaypointPlan = { gateway, hboneAddr: formatHostPort(at, port) };
    if (at !== wp.addresses[0]) plan.note = `ztunnels dial its first address, ${wp.addresses[0]}, which is not on this host`;
    start.push(plan);
  }
  return { start, skip };
}

function sameHost(a: string, b: string): boolean {
  const n = (h: string) => h.replace(/^\[|\]$/g, "").toLowerCase();
  return n(a) === n(b);
}
