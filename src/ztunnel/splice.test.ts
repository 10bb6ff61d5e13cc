/**
 * The splice over real loopback sockets. The two ends are node:net sockets (an independent TCP
 * implementation that handles half-close correctly), the proxy in the middle is ours.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { dialTcp, listenTcp, type TcpListener } from "./stream.ts";
import { splice, type Splice, type SpliceResult } from "./splice.ts";

type Behaviour = (s: Socket) => void;
let behaviour: Behaviour = () => {};
let upstream: Server;
let upstreamPort = 0;
let proxy: TcpListener;
const results: SpliceResult[] = [];
const live: Splice[] = [];
let onResult: ((r: SpliceResult) => void) | undefined;

beforeAll(async () => {
  upstream = createServer({ allowHalfOpen: true }, (s) => behaviour(s));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  upstreamPort = (upstream.address() as { port: number }).port;
  proxy = listenTcp({ hostname: "127.0.0.1", port: 0 }, async (client) => {
    const up = await dialTcp("127.0.0.1", upstreamPort).catch(() => undefined);
    if (!up) return client.reset();
    live.push(splice(client, up, (r) => {
      results.push(r);
      onResult?.(r);
    }));
  });
});

afterAll(() => {
  proxy.stop();
  upstream.close();
});

afterEach(() => {
  results.length = 0;
  live.length = 0;
  onResult = undefined;
});

function nextResult(timeoutMs = 5000): Promise<SpliceResult> {
  if (results.length) return Promise.resolve(results.shift()!);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no splice result in time")), timeoutMs);
    onResult = (r) => {
      clearTimeout(t);
      results.shift();
      resolve(r);
    };
  });
}

function connect(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: "127.0.0.1", port: proxy.port, allowHalfOpen: true }, () => resolve(s));
    s.once("error", reject);
  });
}

function readAll(s: Socket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const t = setTimeout(() => reject(new Error("read timed out")), timeoutMs);
    s.on("data", (d) => parts.push(d));
    s.once("end", () => {
      clearTimeout(t);
      resolve(Buffer.concat(parts));
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

test("bytes pass intact both ways and are counted per direction", async () => {
  behaviour = (s) => {
    const parts: Buffer[] = [];
    s.on("data", (d) => parts.push(d));
    s.on("end", () => {
      // Reply with the request reversed in length: proves both directions are independent.
      s.end(Buffer.concat([Buffer.from("got:"), Buffer.concat(parts)]));
    });
  };
  const payload = randomBytes(3 * 1024 * 1024);
  const c = await connect();
  const reply = readAll(c);
  c.end(payload);
  const got = await reply;
  expect(got.subarray(0, 4).toString()).toBe("got:");
  expect(Buffer.compare(got.subarray(4), payload)).toBe(0);
  const r = await nextResult();
  expect(r.error).toBeUndefined();
  expect(r.received).toBe(payload.length);
  expect(r.sent).toBe(payload.length + 4);
});

test("client half-close reaches the server, which can still answer", async () => {
  behaviour = (s) => {
    let n = 0;
    s.on("data", (d) => (n += d.length));
    s.on("end", () => setTimeout(() => s.end(`server saw ${n} bytes then FIN`), 50));
  };
  const c = await connect();
  const reply = readAll(c);
  c.end("hello");
  expect((await reply).toString()).toBe("server saw 5 bytes then FIN");
  const r = await nextResult();
  expect(r).toEqual({ received: 5, sent: 27, error: undefined });
});

test("server half-close reaches the client, which can still send", async () => {
  let serverGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
  behaviour = (s) => {
    serverGot = readAll(s);
    s.end("bye first");
  };
  const c = await connect();
  const fromServer = await readAll(c);
  expect(fromServer.toString()).toBe("bye first");
  // The server's FIN arrived; our direction must still be open.
  c.end("still talking after your FIN");
  expect((await serverGot).toString()).toBe("still talking after your FIN");
  const r = await nextResult();
  expect(r.error).toBeUndefined();
  expect(r.received).toBe(28);
  expect(r.sent).toBe(9);
});

test("backpressure: a server that does not read stalls the client instead of filling the proxy", async () => {
  let serverSocket: Socket | undefined;
  let serverBytes = 0;
  const total = 64 * 1024 * 1024;
  const done = new Promise<void>((resolve) => {
    behaviour = (s) => {
      serverSocket = s;
      s.pause();
      s.on("data", (d) => (serverBytes += d.length));
      s.on("end", () => {
        s.end();
        resolve();
      });
    };
  });
  const c = await connect();
  const chunk = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  const writeMore = () => {
    while (written < total) {
      written += chunk.length;
      if (!c.write(chunk)) return c.once("drain", writeMore);
    }
    c.end();
  };
  writeMore();
  await Bun.sleep(400);
  // The proxy read only what kernel buffers and one pending chunk can hold, not the whole upload.
  const inProxy = live[0]!.received;
  expect(inProxy).toBeLessThan(24 * 1024 * 1024);
  expect(written).toBeLessThan(total);
  serverSocket!.resume();
  c.resume();
  await done;
  expect(serverBytes).toBe(total);
  const r = await nextResult(20_000);
  expect(r.received).toBe(total);
});

test("a reset on the server side resets the client", async () => {
  behaviour = (s) => {
    s.once("data", () => s.resetAndDestroy());
  };
  const c = await connect();
  const outcome = new Promise<string>((resolve) => {
    c.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    c.on("close", () => resolve("closed without error"));
  });
  c.write("x");
  expect(await outcome).toBe("ECONNRESET");
  const r = await nextResult();
  expect(r.error).toBeDefined();
});

test("abort() resets both sides", async () => {
  let serverOutcome: Promise<string> = Promise.resolve("");
  behaviour = (s) => {
    serverOutcome = new Promise((resolve) => {
      s.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
      s.on("close", () => resolve("closed"));
    });
  };
  const c = await connect();
  const clientOutcome = new Promise<string>((resolve) => {
    c.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    c.on("close", () => resolve("closed"));
  });
  c.write("hello");
  for (let i = 0; i < 100 && !live.length; i++) await Bun.sleep(10);
  await Bun.sleep(20);
  live[0]!.abort(new Error("drain timeout"));
  expect(await clientOutcome).toBe("ECONNRESET");
  // node:net reports a reset as ECONNRESET or, when it had a write in flight, EPIPE: both are aborts.
  expect(await serverOutcome).toMatch(/^(ECONNRESET|EPIPE)$/);
  const r = await nextResult();
  expect(r.error?.message).toBe("drain timeout");
});
