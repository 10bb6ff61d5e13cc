/**
 * The backend the waypoint's lab tests run in pods (`bun test/waypoint_echo.ts --port 3000 ...`): an echo
 * server shaped like the Gateway API conformance echo (it says which pod answered and what it received),
 * plus what the JWT and protocol tests need. Not a test file itself.
 *
 *   any path           JSON {pod, namespace, method, path, host, headers{lower-case: [values]}, body}
 *   ?delay=1s|500ms    answers after that long (conformance timeout tests)
 *   /status/N          answers N
 *   /ws                WebSocket echo ("echo:" + message)
 *   /jwks.json         the file given with --jwks (an issuer's key set); /__jwks-count: fetches so far
 *   /__seen            what this pod received so far (mirror tests read it from inside the pod)
 *   --h2-port P        h2c (prior knowledge) gRPC-style echo: body "reply:" + request, grpc-status 0
 */
import http2 from "node:http2";
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const pod = process.env.POD_NAME ?? "unknown";
const namespace = process.env.POD_NAMESPACE ?? "unknown";
const port = Number(opt("port") ?? "3000");
const jwksFile = opt("jwks");
const h2Port = opt("h2-port");
let jwksFetches = 0;
const seen: { method: string; path: string; host: string; headers: Record<string, string[]> }[] = [];

function duration(v: string | null): number {
  const m = v?.match(/^(\d+(?:\.\d+)?)(ms|s)$/);
  return m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : 0;
}

Bun.serve({
  hostname: "0.0.0.0",
  port,
  idleTimeout: 60,
  async fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname === "/ws" && server.upgrade(req)) return undefined;
    if (url.pathname === "/jwks.json" && jwksFile) {
      jwksFetches++;
      return new Response(readFileSync(jwksFile, "utf8"), { headers: { "content-type": "application/json" } });
    }
    if (url.pathname === "/__jwks-count") return Response.json({ fetches: jwksFetches });
    if (url.pathname === "/__seen") return Response.json(seen);
    const headers: Record<string, string[]> = {};
    req.headers.forEach((v, k) => (headers[k] = [...(headers[k] ?? []), v]));
    const body = await req.text();
    const host = req.headers.get("host") ?? "";
    seen.push({ method: req.method, path: url.pathname + url.search, host, headers });
    if (seen.length > 1000) seen.shift();
    const delay = duration(url.searchParams.get("delay"));
    if (delay) await Bun.sleep(delay);
    const status = url.pathname.match(/^\/status\/(\d{3})$/);
    if (status) return new Response(`status ${status[1]}\n`, { status: Number(status[1]) });
    // X-Echo-Set-Header: "Name: value,Other: value" asks for response headers (conformance echo).
    const extra: Record<string, string> = { "content-type": "application/json" };
    for (const kv of (req.headers.get("x-echo-set-header") ?? "").split(",")) {
      const i = kv.indexOf(":");
      if (i > 0) extra[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    return new Response(JSON.stringify({ pod, namespace, method: req.method, path: url.pathname + url.search, host, headers, body }), {
      headers: extra,
    });
  },
  websocket: {
    message(ws, msg) {
      ws.send(`echo:${msg}`);
    },
  },
});

if (h2Port) {
  const server = http2.createServer();
  server.on("stream", (s, headers) => {
    const stream = s as http2.ServerHttp2Stream;
    const parts: Buffer[] = [];
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "x-pod": pod }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "ok" }));
      stream.end(Buffer.concat([Buffer.from(`reply(${pod}) ${String(headers[":path"])}:`), ...parts]));
    });
  });
  server.listen(Number(h2Port), "0.0.0.0");
}
console.error(JSON.stringify({ msg: "echo listening", pod, port, h2Port: h2Port ?? null }));
