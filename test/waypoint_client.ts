/**
 * The client the waypoint's lab tests run in a pod (`bun test/waypoint_client.ts CASES.json`): makes each
 * request in the file with node:http (no redirect following, Host as given) or, for `ws: true`, a
 * WebSocket handshake and one message over node:net; prints one JSON array of results. Every request has
 * a timeout, so a hang shows as an error instead of stalling the test. Not a test file itself.
 */
import http from "node:http";
import { connect } from "node:net";
import { readFileSync } from "node:fs";

interface Case {
  address: string;
  port: number;
  method?: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
  ws?: boolean;
}

interface Result {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: string;
  error?: string;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(c: Case): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: c.address,
        port: c.port,
        method: c.method ?? "GET",
        path: c.path,
        headers: { ...(c.host ? { host: c.host } : {}), ...(c.headers ?? {}) },
        agent,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString(), ms: performance.now() - started }));
      },
    );
    req.setTimeout(8000, () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ error: e.message, ms: performance.now() - started }));
    req.end(c.body);
  });
}

function websocket(c: Case): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve) => {
    const s = connect(c.port, c.address);
    let text = "";
    let upgraded = false;
    const t = setTimeout(() => {
      s.destroy();
      resolve({ error: `timeout; got ${JSON.stringify(text)}`, ms: performance.now() - started });
    }, 8000);
    s.on("connect", () =>
      s.write(
        `GET ${c.path} HTTP/1.1\r\nhost: ${c.host ?? c.address}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
          "sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      ));
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (!upgraded && text.includes("\r\n\r\n")) {
        upgraded = true;
        const status = Number(text.slice(9, 12));
        if (status !== 101) {
          clearTimeout(t);
          s.destroy();
          return resolve({ status, body: text, ms: performance.now() - started });
        }
        const payload = Buffer.from(c.body ?? "hello");
        const mask = [7, 8, 9, 10];
        s.write(Buffer.from([0x81, 0x80 | payload.length, ...mask, ...payload.map((b, i) => b ^ mask[i % 4]!)]));
        text = text.slice(text.indexOf("\r\n\r\n") + 4);
      }
      if (upgraded && text.length >= 2 && text.length >= 2 + (text.charCodeAt(1) & 0x7f)) {
        clearTimeout(t);
        s.destroy();
        resolve({ status: 101, body: text.slice(2, 2 + (text.charCodeAt(1) & 0x7f)), ms: performance.now() - started });
      }
    });
    s.on("error", (e) => {
      clearTimeout(t);
      resolve({ error: e.message, ms: performance.now() - started });
    });
  });
}

const cases = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as Case[];
const results: Result[] = [];
for (const c of cases) results.push(c.ws ? await websocket(c) : await request(c));
process.stdout.write(JSON.stringify(results) + "\n");
process.exit(0);
