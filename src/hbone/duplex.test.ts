/**
 * toDuplex (src/stream): node:http served on an HBONE stream (what the waypoint does), with keep-alive, a large
 * body through backpressure, and half-close.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import http from "node:http";
import { makeTestCa, spiffeId, type TestTls } from "./_test_certs.ts";
import { toDuplex } from "../stream/mod.ts";
import { HboneServer, HbonePool, type HboneStream } from "./mod.ts";

const SERVER_ID = spiffeId("dx", "waypoint");
let clientTls: TestTls;
let server: HboneServer;
const app = http.createServer((req, res) => {
  let n = 0;
  req.on("data", (b: Buffer) => (n += b.length));
  req.on("end", () => {
    const body = req.url === "/big" ? Buffer.alloc(8 * 1024 * 1024, 1) : Buffer.from(`${req.method} ${req.url} ${n} ${req.headers["x-hop"]}`);
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
});

beforeAll(async () => {
  const ca = await makeTestCa();
  const serverTls = await ca.issue(SERVER_ID);
  clientTls = await ca.issue(spiffeId("dx", "client"));
  server = HboneServer.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: serverTls,
    onStream(s) {
      s.respond(200);
      app.emit("connection", toDuplex(s));
    },
  });
});
afterAll(async () => {
  await server.close({ timeoutMs: 500 });
  app.close();
});

/** Reads HTTP/1.1 responses off a raw stream. */
function reader(s: HboneStream) {
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let closed = false;
  s.on("data", (b) => {
    buf = Buffer.concat([buf, b]);
    wake?.();
  });
  s.on("close", () => {
    closed = true;
    wake?.();
  });
  return async function next(): Promise<{ status: number; body: Buffer }> {
    for (;;) {
      const head = buf.indexOf("\r\n\r\n");
      if (head >= 0) {
        const text = buf.subarray(0, head).toString();
        const len = Number(text.match(/content-length: (\d+)/i)?.[1] ?? 0);
        if (buf.length >= head + 4 + len) {
          const body = buf.subarray(head + 4, head + 4 + len);
          buf = buf.subarray(head + 4 + len);
          return { status: Number(text.split(" ")[1]), body };
        }
      }
      if (closed) throw new Error("stream closed before a full response");
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  };
}

test("node:http serves keep-alive requests on one tunnel, then the client half-closes", async () => {
  const pool = new HbonePool();
  try {
    const s = await pool.connect({ address: `127.0.0.1:${server.port}`, authority: "10.0.0.1:80", tls: clientTls, expectedIdentities: [SERVER_ID] });
    const next = reader(s);
    s.write(Buffer.from("GET /a HTTP/1.1\r\nhost: x\r\nx-hop: 1\r\n\r\n"));
    const r1 = await next();
    expect(r1.status).toBe(200);
    expect(r1.body.toString()).toBe("GET /a 0 1");
    const upload = Buffer.alloc(3 * 1024 * 1024, 2);
    s.write(Buffer.from(`POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: ${upload.length}\r\nx-hop: 2\r\n\r\n`));
    s.write(upload);
    const r2 = await next();
    expect(r2.body.toString()).toBe(`POST /b ${upload.length} 2`);
    s.write(Buffer.from("GET /big HTTP/1.1\r\nhost: x\r\n\r\n"));
    const r3 = await next();
    expect(r3.body.length).toBe(8 * 1024 * 1024);
    const closed = new Promise((r) => s.on("close", r));
    s.end();
    expect(await closed).toBeUndefined();
  } finally {
    await pool.close();
  }
}, 30_000);
