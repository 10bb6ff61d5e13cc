import { readFile } from "node:fs/promises";
import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { formatDiagnostic, hasErrors, parseConfig, blockingErrors } from "../../config/mod.ts";
import { readConfigFiles } from "../../platform/mod.ts";
import { explainRequest, formatExplanation, parseHeaders, parseSource, parseTarget } from "../../explain/mod.ts";

/** `mesh explain`: what the mesh would do with one request, and why (src/explain does the work). */
export const explain: Command = {
  name: "explain",
  summary: "what the mesh would do with one request, and why",
  usage:
    "mesh explain --config FILE --from NS/SA|ip:ADDR --to SERVICE.NS:PORT|ADDR:PORT|HOST:PORT [--method M --path P --header K=V... --jwt TOKEN] [--format text|json]",
  flags: [
    { name: "config", kind: "string", help: "mesh.yaml file or directory of *.yaml" },
    { name: "from", kind: "string", help: "the client: NAMESPACE/SERVICEACCOUNT, or ip:ADDRESS" },
    { name: "to", kind: "string", help: "the destination: SERVICE.NAMESPACE:PORT, or ADDRESS:PORT" },
    { name: "method", kind: "string", help: "HTTP method", default: "GET" },
    { name: "path", kind: "string", help: "HTTP path, with query", default: "/" },
    { name: "header", kind: "list", help: "request header NAME=VALUE (repeatable; host=... sets the Host)" },
    { name: "jwt", kind: "string", help: "a JWT sent as Authorization: Bearer (@FILE reads it from a file)", noEnv: true },
    { name: "format", kind: "string", help: "text or json", default: "text" },
  ],
  details: [
    "Nothing is sent: the request is evaluated with the engines the proxies run (policy placement, JWT",
    "authentication with the configuration's inline JWKS, authorization, HTTPRoute routing). It prints the",
    "proxies on the path, the decision (allow, deny, unauthenticated), the status the client gets, the policy",
    "and rule that decided, and for HTTP the route, filters, redirect and backend.",
    'JSON: {"decision","status","enforcedBy","waypoint","policy","rule","route","backend","filters",',
    '"redirect","authentication","reason","source","destination","request","hops","warnings"}',
    "Exit status: 0 when the request was explained (whatever the decision), 1 for a configuration problem,",
    "2 for a usage error.",
  ].join("\n"),
  async run(args, io) {
    const f = args.flags;
    const format = f.format;
    if (format !== "text" && format !== "json") {
      throw new MeshError(ErrorCode.Usage, `Unknown format "${String(format)}": use --format text or --format json`);
    }
    for (const name of ["config", "from", "to"] as const) {
      if (typeof f[name] !== "string" || f[name] === "") {
        throw new MeshError(ErrorCode.Usage, `Missing --${name} (see mesh explain --help)`);
      }
    }
    const query = {
      from: parseSource(f.from as string),
      to: parseTarget(f.to as string),
      method: f.method as string,
      path: f.path as string,
      headers: parseHeaders((f.header as string[] | undefined) ?? []),
      ...(typeof f.jwt === "string" ? { jwt: await tokenArg(f.jwt) } : {}),
    };
    const { model, diagnostics } = parseConfig(await readConfigFiles([f.config as string]));
    const explanation = await explainRequest(model, query);
    if (hasErrors(diagnostics)) {
      const errors = diagnostics.filter((d) => d.severity === "error");
      const blocking = blockingErrors(diagnostics).length;
      // Explain still answers for the valid objects; say what the control role would do with the file.
      explanation.warnings.unshift(
        `the configuration has ${errors.length} error${errors.length === 1 ? "" : "s"} (mesh check): ` +
          (blocking
            ? "the control role would keep its last good configuration instead"
            : "the control role serves it, and the data plane enforces these fail-closed"),
        ...errors.map((d) => formatDiagnostic(d)),
      );
    }
    io.stdout(format === "json" ? JSON.stringify(explanation, null, 2) + "\n" : formatExplanation(explanation));
    return 0;
  },
};

/** A token given inline, or "@FILE" (JWTs never start with "@"). */
async function tokenArg(value: string): Promise<string> {
  if (!value.startsWith("@")) return value.trim();
  try {
    return (await readFile(value.slice(1), "utf8")).trim();
  } catch (e) {
    throw new MeshError(ErrorCode.Usage, `Cannot read the token file "${value.slice(1)}" given to --jwt: ${(e as Error).message}`);
  }
}
