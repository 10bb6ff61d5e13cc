/**
 * `mesh proxy-config workloads|services|policies|certs|routes|log|dump`: what one proxy holds right now,
 * read from the proxy itself (its admin API on localhost:15000, with its local secret), and its log
 * levels, changed at run time per scope.
 */
import type { Command } from "../command.ts";
import type { Parsed } from "../args.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { adminCall } from "../../admin/mod.ts";
import { type ConfigDump, formatLogLevels, formatProxyConfig, PROXY_CONFIG_KINDS, type ProxyConfigKind, proxyConfig, proxyIdOfDump } from "../../describe/mod.ts";
import { parseGatewayRef } from "../../identity/mod.ts";
import { argvFrom, FORMAT_FLAG, formatOf, labFor, runInNetns, str } from "./_troubleshoot.ts";

const KINDS = [...PROXY_CONFIG_KINDS, "log", "dump"] as const;
const LEVELS = ["debug", "info", "warn", "error"];

export const proxyConfigCommand: Command = {
  name: "proxy-config",
  summary: "what one ztunnel or waypoint holds right now (workloads, services, policies, certs, routes) and its log levels",
  usage: "mesh proxy-config workloads|services|policies|certs|routes|log|dump (--node NAME | --gateway NAMESPACE/NAME) [--admin ADDR] [--format text|json]",
  flags: [
    { name: "node", kind: "string", help: "the ztunnel of this node" },
    { name: "gateway", kind: "string", help: "the waypoint of this Gateway (NAMESPACE/NAME)" },
    { name: "admin", kind: "string", help: "the proxy's admin API, e.g. 127.0.0.1:15000 (run where the proxy runs)" },
    { name: "admin-token-file", kind: "string", help: "the admin credential, when it is not the local secret (e.g. a remote address)", noEnv: true },
    { name: "all", kind: "boolean", help: "workloads, services: everything the proxy knows, not only its own" },
    { name: "level", kind: "string", help: "log: set this level (debug, info, warn, error)" },
    { name: "scope", kind: "string", help: "log: the scope to set (ztunnel, access, xds-client, admin ...)", default: "default" },
    { name: "lab", kind: "string", help: "the lab to ask: its --prefix, or \"default\" (found by itself without --admin)" },
    FORMAT_FLAG,
  ],
  details: `Kinds:
  workloads   a ztunnel: the workloads of its node (captured or not, certificate state); a waypoint: the
              workloads it serves. --all: every workload it knows.
  services    the Services it knows (a waypoint: those bound to it)
  policies    the AuthorizationPolicies, RequestAuthentications and PeerAuthentications placed on it
  certs       the certificates it holds, with expiry
  routes      the HTTPRoutes it applies (a waypoint)
  log         its log levels; with --level, sets one (per --scope) at once, without a restart
  dump        its whole /config_dump (JSON)
The proxy is asked directly: its admin API listens on localhost:15000 and needs the proxy's local secret
(/run/mesh/admin/<netns>-<port>.secret, readable by root), so run this on the proxy's host (in its
network namespace) with --admin 127.0.0.1:15000. In the lab it finds the node's or waypoint's namespace
by itself.
Examples:
  sudo mesh proxy-config workloads --node node-b
  sudo mesh proxy-config log --node node-b --scope access --level debug
  mesh proxy-config certs --admin 127.0.0.1:15000 --format json`,
  async run(args, io) {
    const [kind, ...extra] = args.positionals;
    if (!kind || !(KINDS as readonly string[]).includes(kind) || extra.length) {
      throw new MeshError(ErrorCode.Usage, `Expected: mesh proxy-config ${KINDS.join("|")} (--node NAME | --gateway NAMESPACE/NAME)${kind ? `, got "${[kind, ...extra].join(" ")}"` : ""}`);
    }
    const format = formatOf(args);
    const node = str(args, "node");
    const gateway = str(args, "gateway");
    if (node && gateway) throw new MeshError(ErrorCode.Usage, "Give --node or --gateway, not both");
    if (gateway) parseGatewayRef(gateway);
    const level = str(args, "level");
    if (level && !LEVELS.includes(level)) throw new MeshError(ErrorCode.Usage, `--level must be one of ${LEVELS.join(", ")}, not "${level}"`);
    if (level && kind !== "log") throw new MeshError(ErrorCode.Usage, "--level goes with mesh proxy-config log");

    const admin = str(args, "admin");
    if (!admin) {
      if (!node && !gateway) throw new MeshError(ErrorCode.Usage, "Say which proxy: --node NAME or --gateway NAMESPACE/NAME (and --admin ADDR where it runs)");
      const lab = labFor(args, ["admin", "admin-token-file"]);
      if (!lab) {
        throw new MeshError(
          ErrorCode.Usage,
          `No lab is up to find ${node ? `the ztunnel of ${node}` : `waypoint ${gateway}`} in: run this where the proxy runs, with --admin 127.0.0.1:15000 (its admin API is local to its host)`,
        );
      }
      const netns = node
        ? lab.nodes.find((n) => n.name === node)?.netns
        : lab.endpoints.find((e) => e.kind === "waypoint" && e.key === gateway)?.netns;
      if (!netns) {
        const known = node ? lab.nodes.map((n) => n.name) : lab.endpoints.filter((e) => e.kind === "waypoint").map((e) => e.key);
        throw new MeshError(ErrorCode.Usage, `The lab has no ${node ? `node "${node}"` : `waypoint "${gateway}"`}: it has ${known.join(", ") || "none"}`);
      }
      return await runInNetns(netns, argvFrom("proxy-config", args, ["lab"], { admin: "127.0.0.1:15000" }), io);
    }
    return await direct(kind as (typeof KINDS)[number], admin, args, format, io.stdout);
  },
};

async function direct(kind: (typeof KINDS)[number], admin: string, args: Parsed, format: "text" | "json", out: (t: string) => void): Promise<number> {
  const call = (path: string, method: "GET" | "POST" = "GET") => adminCall(admin, path, { method, tokenFile: str(args, "admin-token-file") });
  const dumpResp = await call("/config_dump");
  if (dumpResp.status !== 200) throw new MeshError(ErrorCode.Unreachable, `The admin API at ${admin} answered ${dumpResp.status} to /config_dump`);
  let dump = dumpResp.body as ConfigDump;
  const node = str(args, "node");
  const gateway = str(args, "gateway");
  // A process running a ztunnel and waypoints (`mesh run --role all`) serves each waypoint's routes under
  // /waypoint/NAMESPACE/NAME; the root ones are its ztunnel's.
  let prefix = "";
  if (gateway && dump.gateway !== gateway) {
    const r = await call(`/waypoint/${gateway}/config_dump`);
    if (r.status === 200 && (r.body as ConfigDump | undefined)?.gateway === gateway) {
      prefix = `/waypoint/${gateway}`;
      dump = r.body as ConfigDump;
    }
  }
  const proxy = proxyIdOfDump(dump);
  // Make sure the proxy that answered is the one asked for.
  if ((node && dump.node !== node) || (gateway && dump.gateway !== gateway)) {
    throw new MeshError(ErrorCode.Usage, `The admin API at ${admin} is ${proxy}, not ${node ? `ztunnel/${node}` : `waypoint/${gateway}`}`);
  }
  if (kind === "dump") {
    out(JSON.stringify(dump, null, 2) + "\n");
    return 0;
  }
  if (kind === "log") {
    const level = str(args, "level");
    const scope = str(args, "scope") ?? "default";
    const r = level ? await call(`/logging?scope=${encodeURIComponent(scope)}&level=${encodeURIComponent(level)}`, "POST") : await call("/logging");
    if (r.status !== 200) throw new MeshError(ErrorCode.Usage, `The admin API at ${admin} refused: ${(r.body as { error?: string })?.error ?? r.status}`);
    const levels = r.body as Record<string, string>;
    out(format === "json" ? JSON.stringify({ proxy, levels }, null, 2) + "\n" : (level ? `${proxy}: ${scope} set to ${level}\n` : "") + formatLogLevels(proxy, levels));
    return 0;
  }
  const needsCerts = kind === "certs" || kind === "workloads";
  const certs = needsCerts ? (await call(`${prefix}/certs`)).body : undefined;
  const view = proxyConfig(kind as ProxyConfigKind, dump, certs, { all: args.flags.all === true });
  out(format === "json" ? JSON.stringify(view, null, 2) + "\n" : formatProxyConfig(view));
  return 0;
}
