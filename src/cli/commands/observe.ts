/**
 * `mesh observe`: flows as the control role saw them (each proxy reports its connections and requests),
 * like `hubble observe`: who talked to whom, L4 or L7, allowed or denied and by which policy, mTLS or
 * plaintext, and the trace id that finds the same flow in every proxy's access log.
 */
import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import {
  callJson,
  errorOf,
  type FlowFilter,
  flowQuery,
  type FlowRecord,
  FLOWS_PATH,
  FrameReader,
  openSession,
  parseSince,
} from "../../xds/mod.ts";
import { argvFrom, CONTROL_FLAGS, controlAccess, labControl, labFor, runInNetns, str } from "./_troubleshoot.ts";

export const observe: Command = {
  name: "observe",
  summary: "flows the proxies reported: who talks to whom, allowed or denied (and by which policy), mTLS, trace ids",
  usage: "mesh observe [--follow] [--denied] [--from W] [--to W] [--namespace NS] [--since 5m] [--format table|json] [--data-dir DIR | --token-file FILE --ca-cert FILE --control-plane HOST:15012 | --lab PREFIX]",
  flags: [
    ...CONTROL_FLAGS,
    { name: "follow", kind: "boolean", help: "keep printing flows as they arrive (until interrupted)" },
    { name: "denied", kind: "boolean", help: "only denied flows" },
    { name: "from", kind: "string", help: "source: NAMESPACE/WORKLOAD, NAMESPACE/ (a namespace), a workload name, an identity or address" },
    { name: "to", kind: "string", help: "destination: as --from, or a Service (NAMESPACE/NAME or its name)" },
    { name: "namespace", kind: "string", help: "flows with either end in this namespace" },
    { name: "since", kind: "string", help: "only flows that ended this long ago or later (90s, 5m, 1h)" },
    { name: "limit", kind: "string", help: "at most this many flows, the newest (default 200; with --follow, 20 before the live ones)" },
    { name: "format", kind: "string", help: "table, or json (one flow per line)", default: "table" },
  ],
  details: `Every ztunnel and waypoint reports its flows to the control role, which keeps the recent ones
(a connection at a ztunnel, a request at a waypoint; a flow through a waypoint appears once per proxy that
saw it, each line naming its proxy). A denied flow names the policy that denied it and its trace id:
grep the proxies' access logs for it, or open the traffic map (--ui-listen, 15014) and click the flow.
Where the flows come from (as mesh status):
  --data-dir DIR      on the control host (its root certificate and a locally made admin token)
  --token-file FILE --ca-cert FILE --control-plane HOST:15012
                      from anywhere, with an admin token (mesh token create --admin)
  (nothing)           the lab if one is up (or --lab PREFIX)
Examples:
  sudo mesh observe --denied                                   # in the lab
  mesh observe --data-dir /var/lib/mesh --follow --namespace shop
  mesh observe --from ambient-ns/product-viewer --since 5m --format json | jq .traceId
Exit status: 0, 1 when the control plane cannot be asked, 2 for usage errors.`,
  async run(args, io) {
    const format = str(args, "format") ?? "table";
    if (format !== "table" && format !== "json") throw new MeshError(ErrorCode.Usage, `--format must be table or json, not "${format}"`);
    const sinceText = str(args, "since");
    const sinceMs = sinceText !== undefined ? parseSince(sinceText) : undefined;
    if (sinceText !== undefined && sinceMs === undefined) throw new MeshError(ErrorCode.Usage, `--since must be a duration like 90s, 5m or 1h, not "${sinceText}"`);
    const limitText = str(args, "limit");
    const limit = Number(limitText ?? "200");
    if (!Number.isInteger(limit) || limit < 1) throw new MeshError(ErrorCode.Usage, `--limit must be a positive number, not "${limitText}"`);
    const follow = args.flags.follow === true;

    const lab = labFor(args, ["control-plane", "data-dir", "token-file", "ca-cert"]);
    if (lab) {
      const c = labControl(lab);
      return await runInNetns(c.netns, argvFrom("observe", args, ["lab"], { "control-plane": c.controlPlane, "data-dir": c.dataDir }), io, follow ? 0 : 60_000);
    }
    const access = controlAccess(args, "observe");
    const filter: FlowFilter & { sinceMs?: number; follow?: boolean; limit?: number } = {
      denied: args.flags.denied === true,
      from: str(args, "from"),
      to: str(args, "to"),
      namespace: str(args, "namespace"),
      sinceMs,
      follow,
      // Following: the control role sends the last 20 (or all since --since) unless told how many.
      limit: follow && limitText === undefined ? undefined : limit,
    };
    const token = typeof access.token === "string" ? access.token : await access.token();
    const session = await openSession(access.controlPlane, { ca: access.ca }, 5000);
    const print = (f: FlowRecord) => io.stdout(format === "json" ? JSON.stringify(f) + "\n" : formatFlowLine(f) + "\n");
    try {
      const path = FLOWS_PATH + flowQuery(filter);
      if (!follow) {
        const r = await callJson(session, "GET", path, undefined, { authorization: `Bearer ${token}` });
        if (r.status !== 200) throw errorOf(r.status, r.body, "Flows refused");
        const flows = (r.body as { flows?: FlowRecord[] }).flows ?? [];
        if (format === "table") io.stdout(FLOW_HEADER + "\n");
        for (const f of flows) print(f);
        if (!flows.length && format === "table") io.stderr("No flows matched (the control role keeps the most recent ones).\n");
        return 0;
      }
      if (format === "table") io.stdout(FLOW_HEADER + "\n");
      await followFlows(session, path, token, print);
      return 0;
    } finally {
      session.destroy();
    }
  },
};

async function followFlows(session: Awaited<ReturnType<typeof openSession>>, path: string, token: string, print: (f: FlowRecord) => void): Promise<void> {
  let interrupted: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    const req = session.request({ ":method": "GET", ":path": path, authorization: `Bearer ${token}` });
    // Ctrl-C ends the stream, not the process mid-line.
    interrupted = () => {
      req.close();
      resolve();
    };
    process.once("SIGINT", interrupted);
    const reader = new FrameReader(1024 * 1024);
    let status = 0;
    const body: Buffer[] = [];
    req.on("response", (h) => void (status = Number(h[":status"])));
    req.on("data", (d: Buffer) => {
      if (status !== 200) return void body.push(d);
      for (const line of reader.push(d)) {
        if (!line.trim()) continue;
        try {
          print(JSON.parse(line) as FlowRecord);
        } catch {
          // not a record: skip it
        }
      }
    });
    req.on("end", () => {
      if (status === 200) return resolve();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(body).toString("utf8"));
      } catch { /* not JSON */ }
      reject(errorOf(status, parsed, "Flows refused"));
    });
    req.on("error", (e) => reject(new MeshError(ErrorCode.Unreachable, `The flow stream broke: ${e.message}`, { cause: e })));
  }).finally(() => {
    if (interrupted) process.off("SIGINT", interrupted);
  });
}

const FLOW_HEADER = ["TIME".padEnd(12), "PROXY".padEnd(40), "SOURCE".padEnd(34), "DESTINATION".padEnd(34), "WHAT".padEnd(24), "VERDICT".padEnd(8), "SECURITY", "POLICY / REASON", "TRACE"].join(" ");

function peer(p: FlowRecord["src"] & { service?: string; port?: number }, dst = false): string {
  const who = (dst && p.service) || p.workload || p.identity?.replace(/^spiffe:\/\/[^/]+\//, "") || p.address || "unknown";
  return dst && p.port !== undefined && (p.service || !p.workload) ? `${who}:${p.port}` : who;
}

/** One flow as a line of `mesh observe`'s table. */
export function formatFlowLine(f: FlowRecord): string {
  const time = new Date(f.time).toISOString().slice(11, 23);
  const what = f.l7 ? `${f.method ?? ""} ${f.path ?? ""} ${f.status ?? ""}`.trim() : `tcp ${f.bytesIn}/${f.bytesOut}B`;
  const verdict = f.verdict === "allowed" ? "ALLOWED" : f.verdict === "denied" ? "DENIED" : "ERROR";
  const why = f.verdict === "allowed" ? (f.count && f.count > 1 ? `(${f.count} flows)` : "-") : f.policy ?? f.reason ?? "-";
  return [
    time.padEnd(12),
    f.proxy.padEnd(40),
    peer(f.src).padEnd(34),
    peer(f.dst, true).padEnd(34),
    (what.length > 24 ? what.slice(0, 23) + "…" : what).padEnd(24),
    verdict.padEnd(8),
    (f.mtls ? "mTLS" : "plaintext").padEnd(8),
    why,
    f.traceId ?? "-",
  ].join(" ");
}
