/**
 * TCP through a full HBONE tunnel (client half -> mTLS HTTP/2 -> server half -> target), with
 * node:net applications at both ends: half-close both ways and backpressure end to end.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { makeTestCa, spiffeId, type TestTls } from "./_test_certs.ts";
import { startClientHalf, startServerHalf } from "./_test_tunnel_pair.ts";
import { HbonePool, type HboneServer } from "./mod.ts";

const SERVER_ID = spiffeId("t", "server");
let serverTls: TestTls;
let clientTls: TestTls;
let hbone: HboneServer;
let pool: HbonePool;
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  const ca = await makeTestCa();
  serverTls = await ca.issue(SERVER_ID);
  clientTls = await ca.issue(spiffeId("t", "client"));
  hbone = startServerHalf({ tls: serverTls });
  pool = new HbonePool();
});

afterAll(async () => {
  for (const c of closers) await c();
  await pool.close(500);
  await hbone.close({ timeoutMs: 500 });
});

/** A target app and a client half pointing at it; returns the client half's port. */
async function tunnelTo(onConn: (s: net.Socket) => void): Promise<number> {
  const app = net.createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const appPort = (app.address() as net.AddressInfo).port;
  const half = startClientHalf({
    pool,
    hbone: `127.0.0.1:${hbone.port}`,
    authority: `127.0.0.1:${appPort}`,
    tls: clientTls,
    expectedIdentities: [SERVER_ID],
  });
  closers.push(() => half.stop(), () => new Promise((r) => app.close(r)));
  return half.port;
}

function dialApp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything a socket receives until its peer's FIN. */
function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (b: Buffer) => parts.push(b));
    s.once("end", () => resolve(Buffer.concat(parts)));
    s.once("error", reject);
  });
}

describe("half-close through the tunnel", () => {
  test("client FIN first: the server app sees end, answers, and its answer arrives", async () => {
    let serverSawEnd = false;
    const port = await tunnelTo((s) => {
      readAll(s).then((req) => {
        serverSawEnd = true;
        s.end(`answer to ${req.toString()}`);
      });
    });
    const c = await dialApp(port);
    const reply = readAll(c);
    c.end("question");
    expect((await reply).toString()).toBe("answer to question");
    expect(serverSawEnd).toBe(true);
    c.destroy();
  });

  test("server FIN first: the client app can still send after reading the server's end", async () => {
    let late: Promise<Buffer> | undefined;
    const port = await tunnelTo((s) => {
      late = readAll(s);
      s.end("banner, then silence");
    });
    const c = await dialApp(port);
    const banner = await readAll(c);
    expect(banner.toString()).toBe("banner, then silence");
    c.end("late words from the client");
    await new Promise((r) => setTimeout(r, 10));
    expect((await late!).toString()).toBe("late words from the client");
    c.destroy();
  });
});

describe("backpressure end to end", () => {
  test("a client app that stops reading stalls the server app's writes; nothing is lost", async () => {
    const total = 96 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 7);
    let accepted = 0;
    let stalledAt = -1;
    const port = await tunnelTo((s) => {
      const pump = () => {
        while (accepted < total) {
          accepted += chunk.length;
          if (!s.write(chunk)) return;
        }
        s.end();
      };
      s.on("drain", pump);
      pump();
    });
    const c = await dialApp(port);
    c.pause();
    // Wait until the writer is stuck: accepted stops growing.
    let last = -1;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (accepted === last) break;
      last = accepted;
    }
    stalledAt = accepted;
    // Windows (4 MiB stream) + socket buffers + the proxies' bounded queues: far below the total.
    expect(stalledAt).toBeLessThan(40 * 1024 * 1024);
    let received = 0;
    let bad = false;
    c.on("data", (b: Buffer) => {
      received += b.length;
      if (b[0] !== 7 || b[b.length - 1] !== 7) bad = true;
    });
    const done = new Promise((r) => c.once("end", r));
    c.resume();
    await done;
    expect(received).toBe(total);
    expect(bad).toBe(false);
    c.destroy();
  }, 60_000);
});
