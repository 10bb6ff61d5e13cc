import type { Command } from "../command.ts";
import { ErrorCode, MeshError } from "../../core/mod.ts";
import { startHttpbin } from "../../lab/mod.ts";

/** `mesh httpbin`: the built-in test server that lab pods run instead of a container image. */
export const httpbin: Command = {
  name: "httpbin",
  summary: "a built-in httpbin-style test server",
  usage: "mesh httpbin --port N [--host ADDR] [--quiet]",
  flags: [
    { name: "port", kind: "string", help: "TCP port to listen on", default: "80" },
    { name: "host", kind: "string", help: "address to listen on", default: "0.0.0.0" },
    { name: "quiet", kind: "boolean", help: "no access log line per request (for benchmarks)" },
  ],
  details: `Endpoints (JSON like httpbin.org): /get /headers /ip /user-agent /uuid /status/N[,M...]
/delay/N (at most 10 s) /anything[/...] /post /put /patch /delete (echo method, body, json, headers)
/bytes/N (at most 10 MiB). One JSON access-log line per request on stdout unless --quiet.`,
  async run(args, io) {
    const port = Number(args.flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new MeshError(ErrorCode.Usage, `Invalid --port "${args.flags.port}": use 0 to 65535`);
    }
    const host = String(args.flags.host);
    const server = startHttpbin({
      port,
      hostname: host,
      log: args.flags.quiet ? undefined : (line) => io.stdout(line + "\n"),
    });
    io.stdout(`mesh httpbin: listening on ${host}:${server.port}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    await server.stop();
    return 0;
  },
};
