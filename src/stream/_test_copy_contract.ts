/**
 * Test support: the contract every ByteStream adapter keeps under the copy, run once per adapter
 * (TCP and TLS sockets here, HBONE tunnels in src/hbone). The end applications are node:net or
 * node:tls sockets (an independent implementation that handles half-close correctly); the proxy in
 * the middle is ours: the adapter under test joined by StreamCopy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { CopyOwner, CopyResult, StreamCopy } from "./copy.ts";

/** The proxy under test and how the applications at its two ends talk. */
export interface CopyFixture {
  /**
   * Starts a proxy that copies each accepted connection towards `upstreamPort`, telling `watch` of the
   * copy that faces the client as it starts and when it ends.
   */
  start(upstreamPort: number, watch: { onCopy(c: StreamCopy): void; owner: CopyOwner }): Promise<{ port: number; stop(): unknown }>;
  /** The applications' transport: plain TCP unless given (TLS for a TLS proxy). */
  ends?: AppTransport;
}

export interface AppTransport {
  listen(onConn: (s: net.Socket) => void): net.Server;
  connect(port: number): net.Socket;
}

/** A certificate for 127.0.0.1 that is its own CA (tests only). */
export const TEST_TLS = {
  cert: readFileSync(new URL("./testdata/localhost.crt", import.meta.url), "utf8"),
  key: readFileSync(new URL("./testdata/localhost.key", import.meta.url), "utf8"),
  ca: readFileSync(new URL("./testdata/localhost.crt", import.meta.url), "utf8"),
};

const TCP_ENDS: AppTransport = {
  listen: (onConn) => net.createServer({ allowHalfOpen: true }, onConn),
  connect: (port) => net.createConnection({ host: "127.0.0.1", port, allowHalfOpen: true }),
};

/** TLS applications at both ends, trusting the test certificate. */
export const TLS_ENDS: AppTransport = {
  listen: (onConn) => tls.createServer({ cert: TEST_TLS.cert, key: TEST_TLS.key, allowHalfOpen: true }, onConn),
  // allowHalfOpen is honoured by TLSSocket although the connect options' type leaves it out.
  connect: (port) => tls.connect({ host: "127.0.0.1", port, ca: TEST_TLS.ca, allowHalfOpen: true } as tls.ConnectionOptions),
};

/** Defines the contract's tests for one adapter. */
export function copyContract(name: string, fixture: CopyFixture): void {
  const ends = fixture.ends ?? TCP_ENDS;
  describe(`copy contract: ${name}`, () => {
    let behaviour: (s: net.Socket) => void = () => {};
    let server: net.Server;
    let proxy: { port: number; stop(): unknown };
    const results: CopyResult[] = [];
    const live: StreamCopy[] = [];
    let onResult: (() => void) | undefined;

    beforeAll(async () => {
      server = ends.listen((s) => behaviour(s));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const upstreamPort = (server.address() as net.AddressInfo).port;
      proxy = await fixture.start(upstreamPort, {
        onCopy: (c) => live.push(c),
        owner: {
          copyDone(c) {
            results.push({ received: c.received, sent: c.sent, error: c.error });
            onResult?.();
          },
        },
      });
    });

    afterAll(async () => {
      await proxy.stop();
      server.close();
    });

    afterEach(() => {
      results.length = 0;
      live.length = 0;
      onResult = undefined;
    });

    function nextResult(timeoutMs = 5000): Promise<CopyResult> {
      if (results.length) return Promise.resolve(results.shift()!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no copy result in time")), timeoutMs);
        onResult = () => {
          clearTimeout(t);
          onResult = undefined;
          resolve(results.shift()!);
        };
      });
    }

    function connect(): Promise<net.Socket> {
      return new Promise((resolve, reject) => {
        const s = ends.connect(proxy.port);
        s.once(s instanceof tls.TLSSocket ? "secureConnect" : "connect", () => resolve(s));
        s.once("error", reject);
      });
    }

    function readAll(s: net.Socket, timeoutMs = 10_000): Promise<Buffer> {
      return new Promise((resolve, reject) => {
        const parts: Buffer[] = [];
        const t = setTimeout(() => reject(new Error("read timed out")), timeoutMs);
        s.on("data", (d: Buffer) => parts.push(d));
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

    /** How a socket ended: its error code, or "closed" for a clean close. */
    function outcomeOf(s: net.Socket): Promise<string> {
      return new Promise((resolve) => {
        s.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
        s.on("close", () => resolve("closed"));
      });
    }

    test("bytes pass intact both ways and are counted per direction", async () => {
      behaviour = (s) => {
        const parts: Buffer[] = [];
        s.on("data", (d: Buffer) => parts.push(d));
        s.on("end", () => s.end(Buffer.concat([Buffer.from("got:"), Buffer.concat(parts)])));
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
        s.on("data", (d: Buffer) => (n += d.length));
        s.on("end", () => setTimeout(() => s.end(`server saw ${n} bytes then FIN`), 50));
      };
      const c = await connect();
      const reply = readAll(c);
      c.end("hello");
      expect((await reply).toString()).toBe("server saw 5 bytes then FIN");
      expect(await nextResult()).toEqual({ received: 5, sent: 27, error: undefined });
    });

    test("server half-close reaches the client, which can still send", async () => {
      let serverGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
      behaviour = (s) => {
        serverGot = readAll(s);
        s.end("bye first");
      };
      const c = await connect();
      expect((await readAll(c)).toString()).toBe("bye first");
      // The server's FIN arrived; our direction must still be open.
      c.end("still talking after your FIN");
      expect((await serverGot).toString()).toBe("still talking after your FIN");
      expect(await nextResult()).toEqual({ received: 28, sent: 9, error: undefined });
    });

    test("backpressure: a server that does not read stalls the client instead of filling the proxy", async () => {
      let serverSocket: net.Socket | undefined;
      let serverBytes = 0;
      const total = 64 * 1024 * 1024;
      const done = new Promise<void>((resolve) => {
        behaviour = (s) => {
          serverSocket = s;
          s.pause();
          s.on("data", (d: Buffer) => (serverBytes += d.length));
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
          if (!c.write(chunk)) return void c.once("drain", writeMore);
        }
        c.end();
      };
      writeMore();
      await Bun.sleep(400);
      // The proxy read only what kernel buffers, windows and one pending chunk hold, not the upload.
      expect(live[0]!.received).toBeLessThan(24 * 1024 * 1024);
      expect(written).toBeLessThan(total);
      serverSocket!.resume();
      c.resume();
      await done;
      expect(serverBytes).toBe(total);
      const r = await nextResult(20_000);
      expect(r.received).toBe(total);
    });

    test("a reset on the server side resets the client", async () => {
      behaviour = (s) => void s.once("data", () => s.resetAndDestroy());
      const c = await connect();
      const outcome = outcomeOf(c);
      c.write("x");
      expect(await outcome).toBe("ECONNRESET");
      expect((await nextResult()).error).toBeDefined();
    });

    test("a reset on the client side resets the server", async () => {
      let serverOutcome: Promise<string> | undefined;
      const serverGotData = new Promise<void>((resolve) => {
        behaviour = (s) => {
          serverOutcome = outcomeOf(s);
          s.once("data", () => resolve());
        };
      });
      const c = await connect();
      c.on("error", () => {});
      c.write("x");
      await serverGotData;
      c.resetAndDestroy();
      // A write racing the reset shows as EPIPE: an abort as well.
      expect(await serverOutcome!).toMatch(/^(ECONNRESET|EPIPE)$/);
      expect((await nextResult()).error).toBeDefined();
    });

    test("abort() resets both sides", async () => {
      let serverOutcome: Promise<string> = Promise.resolve("");
      behaviour = (s) => void (serverOutcome = outcomeOf(s));
      const c = await connect();
      const clientOutcome = outcomeOf(c);
      c.write("hello");
      for (let i = 0; i < 100 && !live.length; i++) await Bun.sleep(10);
      await Bun.sleep(20);
      live[0]!.abort(new Error("drain timeout"));
      expect(await clientOutcome).toBe("ECONNRESET");
      expect(await serverOutcome).toMatch(/^(ECONNRESET|EPIPE)$/);
      expect((await nextResult()).error?.message).toBe("drain timeout");
    });
  });
}
