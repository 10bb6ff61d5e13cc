/**
 * `mesh describe pod NS/NAME | service NAME.NS | workloadentry NS/NAME`: one answer to "what does the
 * mesh do with this, and is it working": captured or not and why, the ztunnel that manages it, identity
 * and certificate expiry, its Services, the waypoint that serves it (and through which label), every
 * policy and where it is enforced, PeerAuthentication, and its recent connections (src/describe).
 */
import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { blockingErrors, formatDiagnostic, hasErrors, parseConfig } from "../../config/mod.ts";
import { readConfigFiles } from "../../platform/mod.ts";
import { configErrors, describe as describeTarget, type DescribeTarget, formatDescription, type LiveFacts, parseTarget } from "../../describe/mod.ts";
import type { MeshModel, Workload } from "../../model/mod.ts";
import {
  argvFrom,
  askControl,
  CONTROL_FLAGS,
  controlAccess,
  FORMAT_FLAG,
  formatOf,
  labControl,
  labFor,
  labProxyLogs,
  probeReadiness,
  readAccessLogs,
  runInNetns,
  str,
} from "./_troubleshoot.ts";

export const describe: Command = {
  name: "describe",
  summary: "everything about one pod, service or workloadentry: captured? ztunnel, waypoint, policies, connections",
  usage: "mesh describe pod NAMESPACE/NAME | service NAME.NAMESPACE | workloadentry NAMESPACE/NAME | serviceentry NAMESPACE/NAME [--config FILE | --data-dir DIR | --token-file FILE --ca-cert FILE] [--format text|json]",
  flags: [
    { name: "config", kind: "string", help: "offline: mesh.yaml file or directory (nothing running is asked)" },
    ...CONTROL_FLAGS,
    { name: "access-log", kind: "list", help: "a proxy's log file to read recent connections from ([PROXY=]FILE, repeatable)" },
    { name: "connections", kind: "string", help: "how many recent connections to show", default: "20" },
    FORMAT_FLAG,
  ],
  details: `Answers, for a pod or WorkloadEntry:
  captured or not and why (namespace label, node, that node's ztunnel connected and ready), identity and
  certificate expiry, the ztunnel that manages it, the Services it backs, the waypoint that serves it and
  through which label, the policies that apply and where each is enforced (L4 at the ztunnel, L7 at the
  waypoint, or "denies everything: no waypoint"), PeerAuthentication mode, and its recent connections
  from the access logs (accepted, denied and why). For a Service: its waypoint, endpoints, policies, routes.
Where the answer comes from:
  --config FILE       offline, from the configuration alone
  --data-dir DIR      live, on the control host (its root certificate and a locally made admin token)
  --token-file FILE --ca-cert FILE --control-plane HOST:15012
                      live, from anywhere, with an admin token (mesh token create --admin)
  (nothing)           live, from the lab if one is up (or --lab PREFIX): the lab's control plane, and
                      the logs of its ztunnels and waypoints
Examples:
  mesh describe pod ambient-ns/product-api --config config/mesh.yaml
  sudo mesh describe pod ambient-ns/product-api                 # in the lab
  mesh describe service product-api.ambient-ns --data-dir /var/lib/mesh --format json
Exit status: 0 when described, 1 when the target or the control plane cannot be found, 2 for usage errors.`,
  async run(args, io) {
    const [kind, ref, ...extra] = args.positionals;
    if (!kind || !ref || extra.length) {
      throw new MeshError(ErrorCode.Usage, "Expected: mesh describe pod NAMESPACE/NAME | service NAME.NAMESPACE | workloadentry NAMESPACE/NAME | serviceentry NAMESPACE/NAME (see mesh describe --help)");
    }
    const target = parseTarget(kind, ref);
    const format = formatOf(args);
    const limit = Number(str(args, "connections") ?? "20");
    if (!Number.isInteger(limit) || limit < 0) throw new MeshError(ErrorCode.Usage, `--connections must be a number, not "${str(args, "connections")}"`);

    const config = str(args, "config");
    if (!config) {
      const lab = labFor(args, ["config", "control-plane", "data-dir", "token-file", "ca-cert"]);
      if (lab) {
        const c = labControl(lab);
        const logs = labProxyLogs(lab).map((l) => `${l.proxy}=${l.file}`);
        return await runInNetns(c.netns, argvFrom("describe", args, ["lab"], {
          "control-plane": c.controlPlane,
          "data-dir": c.dataDir,
          "access-log": [...logs, ...((args.flags["access-log"] as string[] | undefined) ?? [])],
        }), io);
      }
    }

    const warnings: string[] = [];
    let d;
    if (config) {
      const { model, diagnostics } = parseConfig(await readConfigFiles([config]));
      const blocking = blockingErrors(diagnostics);
      if (blocking.length) {
        warnings.push(`the configuration has ${blocking.length} error(s) (mesh check): a control plane would refuse it and keep its last good one`, ...blocking.slice(0, 5).map((x) => formatDiagnostic(x)));
      } else if (hasErrors(diagnostics)) {
        const enforced = diagnostics.filter((x) => x.severity === "error");
        warnings.push(`mesh check reports ${enforced.length} error(s) that the data plane enforces by failing closed:`, ...enforced.slice(0, 5).map((x) => formatDiagnostic(x)));
      }
      const logs = (args.flags["access-log"] as string[] | undefined) ?? [];
      // Offline, the access logs given are the only live facts (no proxy is asked).
      const live: LiveFacts | undefined = logs.length
        ? { now: Date.now(), source: `the configuration and ${logs.length} access log${logs.length === 1 ? "" : "s"} (no proxy was asked)`, accessLog: readAccessLogs(logs) }
        : undefined;
      d = describeTarget(model, target, { connections: limit, live });
    } else {
      const access = controlAccess(args, "describe");
      const { status, model } = await askControl(access);
      if (!model) throw new MeshError(ErrorCode.ConfigInvalid, `The control plane at ${access.controlPlane} has no valid configuration yet (see mesh status)`);
      // Readiness of the proxies this answer is about (its node's ztunnel, its waypoints), not the whole mesh's.
      const relevant = relevantProxies(model, target);
      const readiness: LiveFacts["readiness"] = {};
      await Promise.all(status.proxies.filter((p) => relevant.has(p.id)).map(async (p) => void (readiness[p.id] = await probeReadiness(p.remote))));
      const logs = (args.flags["access-log"] as string[] | undefined) ?? [];
      const live: LiveFacts = {
        now: Date.now(),
        source: `control plane ${access.controlPlane}`,
        latestVersion: status.version,
        latestAt: status.versionAt,
        proxies: status.proxies,
        readiness,
        accessLog: logs.length ? readAccessLogs(logs) : undefined,
      };
      if (status.config.lastError) {
        const errors = configErrors(status.config.lastError);
        warnings.push(
          `the control plane refuses its configuration file ${status.config.source} (since ${status.config.lastError.at}, ${errors.length} error${errors.length === 1 ? "" : "s"}): this describes version ${status.version}, the last good one it still serves`,
          ...errors.slice(0, 5),
        );
      }
      d = describeTarget(model, target, { live, connections: limit });
    }
    d.warnings.push(...warnings);
    io.stdout(format === "json" ? JSON.stringify(d, null, 2) + "\n" : formatDescription(d));
    return 0;
  },
};

/** Ids of the proxies that serve a target: the ztunnels of its workloads' nodes and the waypoints bound to them. */
function relevantProxies(model: MeshModel, target: DescribeTarget): Set<string> {
  const ids = new Set<string>();
  const addWorkload = (w: Workload | undefined) => {
    if (!w) return;
    if (w.node) ids.add(`ztunnel/${w.node}`);
    if (w.waypoint) ids.add(`waypoint/${w.waypoint.gateway}`);
  };
  const services = model.services.filter((s) => s.namespace === target.namespace && (target.kind !== "Service" || s.name === target.name));
  if (target.kind === "Service") {
    for (const s of services) {
      if (s.waypoint) ids.add(`waypoint/${s.waypoint.gateway}`);
      for (const e of s.endpoints) addWorkload(model.workloads.find((w) => w.uid === e.workloadUid));
    }
  } else {
    const uid = `${target.kind}/${target.namespace}/${target.name}`;
    addWorkload(model.workloads.find((w) => w.uid === uid));
    for (const s of model.services) if (s.waypoint && s.endpoints.some((e) => e.workloadUid === uid)) ids.add(`waypoint/${s.waypoint.gateway}`);
  }
  return ids;
}
