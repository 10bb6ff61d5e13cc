import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { DEFAULT_UI_LISTEN, formatStatus, labApply, labDown, labExec, type LabLocation, labStatus, labUp, runUiRelay } from "../../lab/mod.ts";

const SUBCOMMANDS = ["up", "apply", "exec", "status", "down"] as const;

/** `mesh lab`: a multi-node mesh on one Linux machine, in network namespaces. */
export const lab: Command = {
  name: "lab",
  summary: "a multi-node mesh on one Linux machine in network namespaces",
  usage: "mesh lab up FILE | apply FILE | exec [NAMESPACE/]POD|node/NAME -- CMD... | status | down",
  flags: [
    { name: "prefix", kind: "string", help: "run a separate lab: names become mlab.PREFIX-*, state in /run/mesh-lab/PREFIX" },
    { name: "state-dir", kind: "string", help: "where the lab records what it made (default /run/mesh-lab/default)" },
    { name: "no-mesh", kind: "boolean", help: "up: the same topology without control plane, ztunnels or waypoints (baselines)" },
    { name: "timeout", kind: "string", help: "up, apply: seconds to wait for each phase to be ready", default: "60" },
    { name: "format", kind: "string", help: "status: text or json", default: "text" },
    { name: "keep-logs", kind: "boolean", help: "down: keep the logs directory" },
    { name: "ui-listen", kind: "string", help: `up: where the host reaches the traffic map (a free port if taken)`, default: DEFAULT_UI_LISTEN },
    { name: "socket", kind: "string", help: "ui-relay (internal): the control role's unix socket" },
    { name: "address-file", kind: "string", help: "ui-relay (internal): where to write the address it listens at" },
    { name: "force", kind: "boolean", help: "down: without a recorded state, remove the namespaces named with this lab's prefix" },
  ],
  details: `Subcommands:
  up FILE         Build the lab from a mesh.yaml: a network namespace per node named by the Pods, one per
                  Pod (its /32 routed through its node, no bridge), a fabric namespace joining the nodes;
                  then a control plane (10.99.0.2:15012), a ztunnel per node (--redirect node), a waypoint
                  per istio-waypoint Gateway at its spec.addresses, and each Pod's command in its namespace
                  (output in a log file per pod). Returns when everything reports ready. The traffic
                  map is relayed to the host at --ui-listen (127.0.0.1:15014, or a free port if taken);
                  sign in with the admin token in STATE/tokens/admin.token.
  apply FILE      Push a new configuration to the running lab: the control plane's config file is
                  replaced (it reloads it) and pods, nodes and waypoints are added, changed or removed.
  exec TARGET -- CMD...
                  Run CMD in a namespace: [NAMESPACE/]POD, node/NAME, waypoint/NAMESPACE/NAME or control.
                  "mesh" in PATH is this executable; service names resolve to their ClusterIPs.
  status          What runs where, its health and log path (--format json for scripts). Exit 1 when
                  something is not healthy.
  down            Stop every process and remove every namespace (with its links and iptables rules) the
                  lab recorded, and its state; works after a crash. Nothing else is touched.

Needs root. Addresses: fabric 10.99.0.0/24 (control plane 10.99.0.2, nodes 10.99.0.10+), pods and
waypoints at their own addresses, ClusterIPs routed by nothing but the mesh.
Examples:
  sudo mesh lab up config/mesh.yaml
  sudo mesh lab exec ambient-ns/product-viewer -- curl -s http://product-api:8000/headers
  sudo mesh lab down`,
  async run(args, io) {
    const [sub, ...positionals] = args.positionals;
    const loc: LabLocation = {
      prefix: args.flags.prefix as string | undefined,
      stateDir: args.flags["state-dir"] as string | undefined,
    };
    const progress = (line: string) => io.stdout(line + "\n");
    const timeoutMs = Number(args.flags.timeout) * 1000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new MeshError(ErrorCode.Usage, `Invalid --timeout "${args.flags.timeout}": use a number of seconds`);
    }
    const needFile = () => {
      if (positionals.length !== 1) throw new MeshError(ErrorCode.Usage, `mesh lab ${sub} takes one FILE (see mesh lab --help)`);
      return positionals[0]!;
    };
    switch (sub) {
      case "up":
        await labUp({ ...loc, file: needFile(), noMesh: args.flags["no-mesh"] === true, timeoutMs, progress, uiListen: args.flags["ui-listen"] as string | undefined });
        io.stdout(nextSteps(loc));
        return 0;
      case "ui-relay": {
        const socket = args.flags.socket as string | undefined;
        const addressFile = args.flags["address-file"] as string | undefined;
        if (!socket || !addressFile) throw new MeshError(ErrorCode.Usage, "mesh lab ui-relay (started by mesh lab up) needs --socket and --address-file");
        await runUiRelay({ listen: (args.flags["ui-listen"] as string | undefined) ?? DEFAULT_UI_LISTEN, socket, addressFile });
        return 0;
      }
      case "apply":
        await labApply({ ...loc, file: needFile(), timeoutMs, progress });
        return 0;
      case "exec": {
        const target = positionals[0];
        if (!target || positionals.length > 1) {
          throw new MeshError(ErrorCode.Usage, "Usage: mesh lab exec [NAMESPACE/]POD|node/NAME -- CMD...");
        }
        return await labExec({ ...loc, target, command: args.rest });
      }
      case "status": {
        const s = labStatus(loc);
        const format = args.flags.format;
        if (format === "json") io.stdout(JSON.stringify(s, null, 2) + "\n");
        else if (format === "text") io.stdout(formatStatus(s));
        else throw new MeshError(ErrorCode.Usage, `Invalid --format "${format}": use text or json`);
        return s.healthy ? 0 : 1;
      }
      case "down":
        await labDown({ ...loc, keepLogs: args.flags["keep-logs"] === true, force: args.flags.force === true, progress });
        return 0;
      default:
        throw new MeshError(
          ErrorCode.Usage,
          sub ? `Unknown lab subcommand "${sub}": use ${SUBCOMMANDS.join(", ")}` : `Say what to do: mesh lab ${SUBCOMMANDS.join("|")} (see mesh lab --help)`,
        );
    }
  },
};

function nextSteps(loc: LabLocation): string {
  const f = `${loc.prefix ? ` --prefix ${loc.prefix}` : ""}${loc.stateDir ? ` --state-dir ${loc.stateDir}` : ""}`;
  return `Explore: mesh lab status${f}; mesh lab exec${f} [NAMESPACE/]POD -- CMD...; mesh observe${loc.prefix ? ` --lab ${loc.prefix}` : ""}; take it down: mesh lab down${f}\n`;
}
