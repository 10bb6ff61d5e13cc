import type { Command } from "../command.ts";
import { cleanupCaptureRules, OWNED_CHAINS } from "../../ztunnel/mod.ts";

/**
 * `mesh iptables cleanup`: removes the capture rules a ztunnel installed in this network namespace
 * (after a crash, or before uninstalling). Only the mesh's own jumps and chains are touched.
 */
export const iptables: Command = {
  name: "iptables",
  summary: "remove the capture rules this mesh installed (after a crash or before uninstalling)",
  usage: "mesh iptables cleanup",
  details: `Removes the jumps from nat PREROUTING/OUTPUT into ${OWNED_CHAINS.join(", ")} and those chains,
for IPv4 and IPv6, in the network namespace it runs in (use \`ip netns exec NS mesh iptables cleanup\`
for another one). Rules that belong to anything else are never touched. Safe to run when nothing is
installed. A running ztunnel reinstalls its rules on its next configuration change: stop it first.`,
  flags: [],
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if (sub !== "cleanup" || extra.length) {
      io.stderr("Usage: mesh iptables cleanup (see mesh iptables --help)\n");
      return 2;
    }
    if (process.getuid?.() !== 0) {
      io.stderr("mesh iptables cleanup: needs root (CAP_NET_ADMIN) to change iptables\n");
      return 1;
    }
    const removed = cleanupCaptureRules();
    io.stdout(removed.length ? removed.map((r) => `removed ${r}\n`).join("") : "nothing to remove\n");
    return 0;
  },
};
