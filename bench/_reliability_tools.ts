/**
 * Traffic tools for bench/reliability.ts, run inside the lab's pod namespaces (`ip netns exec NS bun THIS ...`).
 * The HTTP client is a plain socket client on purpose: it never retries, so every request that did not get
 * its whole 2xx answer is counted as failed.
 *
 *   load TARGET...        TARGET = HOST:PORT:PATH:MODE:WORKERS, MODE keepalive (a connection serves up to
 *                         100 requests, then the client closes it) or close (one connection per request).
 *                         Runs until SIGTERM; every 500 ms prints {"ok","failed","errors"} (cumulative).
 *   hold HOST PORT N      N connections held at once, a request on each as it opens (check 1), once all are
 *                         open and 3 s later another on each (check 2), then all closed
 *                         -> {"held","openFailed","check1","check2","errors"}
 *   sink PORT             per connection: SHA-256 of everything received, sent back in hex at EOF
 *   transfer HOST PORT BYTES   sends BYTES of random data, compares the sink's hash -> {"bytes","match","seconds"}
 *   hostile HOST PORT KIND N   KIND idle | garbage | half-hello: N such connections; when the server
 *                         closed them all -> {"kind","closed","maxSeconds"} (gives up after 30 s)
 */
import type { Socket } from "bun";

const [mode, ...args] = process.argv.slice(2);

/** One client connection with a response reader (HTTP/1.1: content-length or chunked). */
class HttpConn {
  #sock?: Socket<unknown>;
  #buf = Buffer.alloc(0);
  #waiter?: () => void;
  closed = false;
  served = 0;

  static open(host: string, port: number, timeoutMs = 10_000): Promise<HttpConn> {
    const c = new HttpConn();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connect timeout")), timeoutMs);
      Bun.connect({
        hostname: host,
        port,
        socket: {
          open: (s) => {
            clearTimeout(timer);
            s.setNoDelay(true);
            c.#sock = s;
            resolve(c);
          },
          data: (_s, d) => {
            c.#buf = c.#buf.length ? Buffer.concat([c.#buf, d]) : Buffer.from(d);
            c.#wake();
          },
          close: () => {
            c.closed = true;
            c.#wake();
          },
          error: () => {
            c.closed = true;
            c.#wake();
          },
          connectError: (_s, e) => {
            clearTimeout(timer);
            reject(e);
          },
        },
      }).catch((e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** GET `path`; resolves with the status and whether the server asked to close, or throws. */
  async get(host: string, path: string, close: boolean, timeoutMs = 10_000): Promise<{ status: number; serverClose: boolean }> {
    if (this.closed || !this.#sock) throw new Error("connection closed before the request");
    this.#buf = Buffer.alloc(0);
    this.#sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${close ? "Connection: close\r\n" : ""}\r\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.#parse();
      if (r) {
        this.served++;
        return r;
      }
      if (this.closed) throw new Error(this.#buf.length ? "connection closed mid-response" : "connection closed before any response byte");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("response timeout");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  #parse(): { status: number; serverClose: boolean } | undefined {
    const end = this.#buf.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const head = this.#buf.subarray(0, end).toString("latin1");
    const lines = head.split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim().toLowerCase());
    }
    const body = this.#buf.subarray(end + 4);
    const serverClose = headers.get("connection") === "close";
    const len = headers.get("content-length");
    if (len !== undefined) return body.length >= Number(len) ? { status, serverClose } : undefined;
    if (headers.get("transfer-encoding")?.includes("chunked")) {
      return body.indexOf("0\r\n\r\n") === 0 || body.indexOf("\r\n0\r\n\r\n") >= 0 ? { status, serverClose } : undefined;
    }
    // No length: the body ends with the connection.
    return this.closed ? { status, serverClose: true } : undefined;
  }

  end(): void {
    this.closed = true;
    this.#sock?.end();
  }
}

async function load(targets: string[]): Promise<void> {
  let ok = 0;
  let failed = 0;
  const errors: Record<string, number> = {};
  let running = true;
  process.on("SIGTERM", () => void (running = false));
  const fail = (target: string, e: unknown) => {
    failed++;
    const k = `${target}: ${(e as Error).message}`;
    errors[k] = (errors[k] ?? 0) + 1;
  };
  const workers: Promise<void>[] = [];
  for (const t of targets) {
    const [host, port, path, kind, n] = t.split(":");
    const close = kind === "close";
    for (let w = 0; w < Number(n); w++) {
      workers.push((async () => {
        let conn: HttpConn | undefined;
        while (running) {
          try {
            if (!conn || conn.closed) conn = await HttpConn.open(host!, Number(port));
            const r = await conn.get(`${host}:${port}`, path!, close);
            if (r.status >= 200 && r.status < 300) ok++;
            else fail(t, new Error(`status ${r.status}`));
            if (close || r.serverClose || conn.served >= 100) {
              conn.end();
              conn = undefined;
            }
          } catch (e) {
            fail(t, e);
            conn?.end();
            conn = undefined;
          }
          await Bun.sleep(10);
        }
        conn?.end();
      })());
    }
  }
  const report = () => console.log(JSON.stringify({ ok, failed, errors }));
  const timer = setInterval(report, 500);
  await Promise.all(workers);
  clearInterval(timer);
  report();
  process.exit(0);
}

async function hold(host: string, port: number, n: number): Promise<void> {
  const conns: HttpConn[] = [];
  const errors: Record<string, number> = {};
  const count = (what: string, e: unknown) => {
    const k = `${what}: ${(e as Error).message}`;
    errors[k] = (errors[k] ?? 0) + 1;
  };
  let openFailed = 0;
  let check1 = 0;
  // Check 1 right after each connection opens (the server's idle timer starts when the tunnel does).
  for (let i = 0; i < n; i += 250) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(250, n - i) }, async () => {
      const c = await HttpConn.open(host, port, 20_000);
      conns.push(c);
      const r = await c.get(`${host}:${port}`, "/get", false, 30_000);
      if (r.status !== 200) throw new Error(`status ${r.status}`);
    }));
    for (const b of batch) {
      if (b.status === "fulfilled") check1++;
      else count("check 1", b.reason);
    }
  }
  openFailed = n - conns.length;
  await Bun.sleep(3000);
  let check2 = 0;
  for (let i = 0; i < conns.length; i += 500) {
    const rs = await Promise.allSettled(conns.slice(i, i + 500).map((c) => c.get(`${host}:${port}`, "/get", false, 30_000)));
    for (const r of rs) {
      if (r.status === "fulfilled" && r.value.status === 200) check2++;
      else count("check 2", r.status === "rejected" ? r.reason : new Error(`status ${r.value.status}`));
    }
  }
  for (const c of conns) c.end();
  console.log(JSON.stringify({ held: conns.length, openFailed, check1, check2, errors }));
  await Bun.sleep(500);
  process.exit(0);
}

function sink(port: number): void {
  Bun.listen<{ hash: Bun.CryptoHasher }>({
    hostname: "0.0.0.0",
    port,
    socket: {
      open: (s) => void (s.data = { hash: new Bun.CryptoHasher("sha256") }),
      data: (s, d) => void s.data.hash.update(d),
      end: (s) => {
        s.write(s.data.hash.digest("hex"));
        s.end();
      },
      error: () => {},
    },
  });
  console.log("ready");
}

async function transfer(host: string, port: number, bytes: number): Promise<void> {
  const hash = new Bun.CryptoHasher("sha256");
  const t0 = performance.now();
  let reply = "";
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let drained: (() => void) | undefined;
  const sock = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data: (_s, d) => void (reply += new TextDecoder().decode(d)),
      drain: () => {
        const d = drained;
        drained = undefined;
        d?.();
      },
      close: () => done(),
      end: () => done(),
      error: () => done(),
    },
  });
  const chunk = new Uint8Array(256 * 1024);
  for (let sent = 0; sent < bytes;) {
    crypto.getRandomValues(chunk.subarray(0, 65536));
    chunk.copyWithin(65536, 0, 65536 * 3);
    const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
    hash.update(piece);
    let off = 0;
    while (off < piece.length) {
      const w = sock.write(piece.subarray(off));
      off += w;
      if (off < piece.length) await new Promise<void>((r) => (drained = r));
    }
    sent += piece.length;
  }
  sock.shutdown();
  await Promise.race([finished, Bun.sleep(60_000)]);
  const want = hash.digest("hex");
  console.log(JSON.stringify({ bytes, match: reply.trim() === want, seconds: (performance.now() - t0) / 1000 }));
  process.exit(0);
}

async function hostile(host: string, port: number, kind: string, n: number): Promise<void> {
  // The first 60 bytes of a TLS 1.3 ClientHello: a record header announcing 512 bytes that never come.
  const halfHello = new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, ...new Array(49).fill(7)]);
  const t0 = performance.now();
  const closedAt: number[] = [];
  await Promise.all(Array.from({ length: n }, () =>
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open: (s) => {
          if (kind === "garbage") s.write(crypto.getRandomValues(new Uint8Array(4096)));
          else if (kind === "half-hello") s.write(halfHello);
        },
        data: () => {},
        close: () => void closedAt.push((performance.now() - t0) / 1000),
        error: () => {},
      },
    })
  ));
  const deadline = Date.now() + 30_000;
  while (closedAt.length < n && Date.now() < deadline) await Bun.sleep(100);
  console.log(JSON.stringify({ kind, n, closed: closedAt.length, maxSeconds: Math.max(0, ...closedAt) }));
  process.exit(0);
}

if (mode === "load") await load(args);
else if (mode === "hold") await hold(args[0]!, Number(args[1]), Number(args[2]));
else if (mode === "sink") sink(Number(args[0]));
else if (mode === "transfer") await transfer(args[0]!, Number(args[1]), Number(args[2]));
else if (mode === "hostile") await hostile(args[0]!, Number(args[1]), args[2]!, Number(args[3]));
else {
  console.error("usage: see the header of bench/_reliability_tools.ts");
  process.exit(2);
}
