import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { formatDiagnostic, hasErrors, MESH_API_VERSION, parseConfig, RULES, summarize } from "../../config/mod.ts";
import { readConfigFiles } from "../../platform/mod.ts";

/** `mesh check`: lint configuration files and directories as one configuration. */
export const check: Command = {
  name: "check",
  summary: "lint mesh configuration (Istio and Gateway API YAML): file:line:col diagnostics",
  usage: "mesh check FILE|DIR... [--format text|json]",
  flags: [{ name: "format", kind: "string", help: "text or json", default: "text" }],
  details: [
    "Files and directories (every *.yaml and *.yml in it) are checked together, as one configuration.",
    "Exit status: 0 when there is no error (warnings allowed), 1 when there is, 2 for a usage error.",
    "JSON: {\"diagnostics\":[{file,line,col,severity,message,rule}],\"errors\":N,\"warnings\":M}",
    `Kinds: v1 Namespace, ServiceAccount, Service, Pod; networking.istio.io WorkloadEntry, ServiceEntry,`,
    `DestinationRule; security.istio.io AuthorizationPolicy, RequestAuthentication, PeerAuthentication;`,
    `gateway.networking.k8s.io Gateway, HTTPRoute, ReferenceGrant; ${MESH_API_VERSION} MeshConfig, ExternalHost (lab).`,
    "",
    "Rules:",
    ...Object.entries(RULES).map(([id, r]) => `  ${id.padEnd(24)} ${r.severity.padEnd(7)} ${r.summary}`),
  ].join("\n"),
  async run(args, io) {
    const format = args.flags.format;
    if (format !== "text" && format !== "json") {
      throw new MeshError(ErrorCode.Usage, `Unknown format "${String(format)}": use --format text or --format json`);
    }
    if (!args.positionals.length) {
      throw new MeshError(ErrorCode.Usage, "Nothing to check: give one or more files or directories (mesh check config/)");
    }
    const files = await readConfigFiles(args.positionals);
    const { diagnostics } = parseConfig(files);
    const sum = summarize(diagnostics);
    if (format === "json") {
      io.stdout(JSON.stringify({ diagnostics, errors: sum.errors, warnings: sum.warnings }) + "\n");
    } else {
      for (const d of diagnostics) io.stdout(formatDiagnostic(d) + "\n");
      io.stdout(`${sum.text}\n`);
    }
    return hasErrors(diagnostics) ? 1 : 0;
  },
};
