/**
 * `mesh proxy-status`: every connected ztunnel and waypoint (and every one the configuration expects),
 * its node or gateway, the version it acknowledged against the latest, NACKs with their reason, and
 * certificate expiry; stale, refused and missing ones flagged (src/describe proxy_status.ts). It asks the
 * control plane, like `mesh status`, and adds what the configuration expects to be connected.
 */
import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { formatProxyStatus, proxyStatus } from "../../describe/mod.ts";
import { argvFrom, askControl, CONTROL_FLAGS, controlAccess, FORMAT_FLAG, formatOf, labControl, labFor, runInNetns, str } from "./_troubleshoot.ts";

export const proxyStatusCommand: Command = {
  name: "proxy-status",
  summary: "connected ztunnels and waypoints: acknowledged versions, NACKs, certificate expiry, stale or missing ones",
  usage: "mesh proxy-status [--data-dir DIR | --token-file FILE --ca-cert FILE] [--control-plane HOST:15012] [--stale-after 10s] [--format text|json]",
  flags: [
    ...CONTROL_FLAGS,
    { name: "stale-after", kind: "string", help: "how long a proxy may stay behind the latest version without a NACK", default: "10s" },
    FORMAT_FLAG,
  ],
  details: `States: SYNCED (acknowledged the latest version), PENDING (behind for less than --stale-after),
STALE (behind for longer, without a NACK: not answering), NACK (refused the version: the reason it gave),
NOT CONNECTED (the configuration has ambient workloads on its node, or its waypoint Gateway, but no such
proxy is connected: killed, crashed, or cannot reach the control plane).
Where the answer comes from: --data-dir DIR on the control host; --token-file (mesh token create --admin)
with --ca-cert from anywhere; in the lab, by itself (or --lab PREFIX).
Exit status: 0 when every expected proxy is connected and synced, 3 when something needs attention,
1 when the control plane cannot be asked.`,
  async run(args, io) {
    const format = formatOf(args);
    const staleText = str(args, "stale-after") ?? "10s";
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(staleText);
    if (!m) throw new MeshError(ErrorCode.Usage, `--stale-after must be a duration like 10s or 500ms, not "${staleText}"`);
    const staleAfterMs = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[(m[2] ?? "s") as "s"]);
    if (args.positionals.length) throw new MeshError(ErrorCode.Usage, `mesh proxy-status takes no arguments (got "${args.positionals.join(" ")}")`);

    const lab = labFor(args, ["control-plane", "data-dir", "token-file", "ca-cert"]);
    if (lab) {
      const c = labControl(lab);
      return await runInNetns(c.netns, argvFrom("proxy-status", args, ["lab"], { "control-plane": c.controlPlane, "data-dir": c.dataDir }), io);
    }
    const access = controlAccess(args, "proxy-status");
    const { status, model } = await askControl(access);
    const report = proxyStatus(access.controlPlane, status, model, { staleAfterMs });
    io.stdout(format === "json" ? JSON.stringify(report, null, 2) + "\n" : formatProxyStatus(report));
    return report.ok ? 0 : 3;
  },
};
