/**
 * Test helper run inside network namespaces (`ip netns exec NS bun _probe.ts ...`):
 *   serve PORT[,PORT...]   answer every connection with one JSON line {port, remote, orig} and close
 * (Clients are python3 one-liners: they start fast and can run under another uid/gid with setpriv.)
 */
import { getOriginalDestination } from "../../platform/mod.ts";

const [mode, a] = process.argv.slice(2);
if (mode === "serve") {
  for (const port of a!.split(",").map(Number)) {
    Bun.listen({
      hostname: "0.0.0.0",
      port,
      socket: {
        open(s) {
          let orig: string | null = null;
          try {
            const o = getOriginalDestination((s as unknown as { fd: number }).fd);
            // conntrack answers for every tracked connection; one that was not rewritten names us.
            const rewritten = o.address !== s.localAddress || o.port !== s.localPort;
            orig = rewritten ? `${o.address}:${o.port}` : null;
          } catch {
            orig = null;
          }
          s.end(JSON.stringify({ port, remote: s.remoteAddress, orig }) + "\n");
        },
        data() {},
      },
    });
  }
  console.log("ready");
}
