import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { createBootstrapToken } from "../../identity/mod.ts";

const UNIT_SECONDS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };

/** "90s", "15m", "24h", "7d", or combinations ("1h30m"), in seconds; undefined when not a duration. */
export function parseTtl(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?[dhms])+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([dhms])/g)) total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return total > 0 ? total : undefined;
}

/** `mesh token create`: a bootstrap token for one ztunnel (node), one waypoint (gateway) or an operator. */
export const token: Command = {
  name: "token",
  summary: "create bootstrap tokens for ztunnels, waypoints and admins",
  usage: "mesh token create --data-dir DIR (--node NAME | --gateway NAMESPACE/NAME | --admin) [--ttl DURATION]",
  flags: [
    { name: "data-dir", kind: "string", help: "the control plane's data directory (holds the token-signing key)" },
    { name: "node", kind: "string", help: "the node whose ztunnel will use the token" },
    { name: "gateway", kind: "string", help: "the waypoint Gateway (NAMESPACE/NAME) that will use the token" },
    { name: "admin", kind: "boolean", help: "a token for operators (status, proxy-config); it gets no workload certificates" },
    { name: "ttl", kind: "string", help: "lifetime: 90s, 15m, 24h, 7d", default: "24h" },
  ],
  details: [
    "Prints the token alone on stdout, so it can be redirected into the file a --token-file flag reads:",
    "  mesh token create --data-dir /var/lib/mesh --node worker-a > worker-a.token",
    "The token is a JWT signed with DIR/token-signing-key.pem (created on first use, mode 0600). It names",
    "exactly one node, gateway or admin, and can be used until it expires.",
  ].join("\n"),
  async run(args, io) {
    const [verb, ...extra] = args.positionals;
    if (verb !== "create" || extra.length) {
      throw new MeshError(ErrorCode.Usage, `Expected "mesh token create ..."${verb ? `, got "${[verb, ...extra].join(" ")}"` : ""} (see mesh token --help)`);
    }
    const dataDir = args.flags["data-dir"];
    if (typeof dataDir !== "string" || dataDir === "") {
      throw new MeshError(ErrorCode.Usage, "Missing --data-dir: the control plane's data directory, e.g. --data-dir /var/lib/mesh");
    }
    const node = args.flags.node as string | undefined;
    const gateway = args.flags.gateway as string | undefined;
    const admin = args.flags.admin === true;
    if ([node !== undefined, gateway !== undefined, admin].filter(Boolean).length !== 1) {
      throw new MeshError(ErrorCode.Usage, "Give exactly one of --node NAME, --gateway NAMESPACE/NAME or --admin");
    }
    const ttlText = String(args.flags.ttl ?? "24h");
    const ttlSeconds = parseTtl(ttlText);
    if (ttlSeconds === undefined) {
      throw new MeshError(ErrorCode.Usage, `Invalid --ttl "${ttlText}": use a duration like 90s, 15m, 24h or 7d`);
    }
    const jwt = await createBootstrapToken(dataDir, { node, gateway, admin: admin || undefined, ttlSeconds });
    io.stdout(jwt + "\n");
    return 0;
  },
};
