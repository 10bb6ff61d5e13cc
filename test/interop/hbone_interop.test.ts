/**
 * HBONE against independent HTTP/2 implementations, over real mTLS on loopback:
 * - Debian's python3-h2 as the CONNECT server (our client pool) and as the client (our server),
 *   including a rapid-reset storm next to a running tunnel;
 * - `nghttpx --http2-proxy --verify-client` as the CONNECT server, in front of an HTTP/1.1 CONNECT
 *   backend that echoes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Subprocess, spawn } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCa, spiffeId, type TestTls } from "../../src/hbone/_test_certs.ts";
import { HboneServer, HbonePool, type HboneStream } from "../../src/hbone/mod.ts";
import { fixedPort, waitForPort } from "../support/mod.ts";

const PY = "/usr/bin/python3";
const HERE = import.meta.dir;
const hasPython = Bun.spawnSync([PY, "-c", "import h2"]).exitCode === 0;
const hasNghttpx = Bun.spawnSync(["sh", "-c", "command -v nghttpx"]).exitCode === 0;

const SERVER_ID = spiffeId("interop", "server");
const CLIENT_ID = spiffeId("interop", "client");

let dir: string;
let serverTls: TestTls;
let clientTls: TestTls;
const files: Record<string, string> = {};
const procs: Subprocess[] = [];

function writePem(name: string, pem: string): string {
  const p = join(dir, name);
  writeFileSync(p, pem);
  return p;
}

/** Reads a child's stdout line by line. */
function lines(proc: Subprocess<"ignore", "pipe", "pipe">): { next(timeoutMs: number): Promise<string>; all: string[] } {
  const all: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  (async () => {
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += new TextDecoder().decode(chunk);
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        all.push(line);
        waiting.shift()?.(line);
      }
    }
  })();
  let read = 0;
  return {
    all,
    next(timeoutMs) {
      if (read < all.length) return Promise.resolve(all[read++]);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("timed out waiting for a line")), timeoutMs);
        waiting.push((l) => {
          clearTimeout(t);
          read++;
          resolve(l);
        });
      });
    },
  };
}

function echoStream(s: HboneStream): void {
  s.on("data", (b) => {
    if (!s.write(b)) s.pause();
  });
  s.on("drain", () => s.resume());
  s.on("end", () => s.end());
}

/** Writes `data`, half-closes, collects the echo until close. */
function roundTrip(s: HboneStream, data: Uint8Array): Promise<{ bytes: Buffer; ended: boolean; err?: Error }> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = [];
    let ended = false;
    s.on("data", (b) => parts.push(b.slice()));
    s.on("end", () => (ended = true));
    s.on("close", (err) => resolve({ bytes: Buffer.concat(parts), ended, err }));
    let off = 0;
    const pump = () => {
      while (off < data.length) {
        const n = Math.min(48 * 1024, data.length - off);
        const ok = s.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return;
      }
      s.end();
    };
    s.on("drain", pump);
    pump();
  });
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hbone-interop-"));
  const ca = await makeTestCa();
  serverTls = await ca.issue(SERVER_ID);
  clientTls = await ca.issue(CLIENT_ID);
  files.ca = writePem("ca.pem", ca.ca);
  files.serverCert = writePem("server.pem", serverTls.cert);
  files.serverKey = writePem("server-key.pem", serverTls.key);
  files.clientCert = writePem("client.pem", clientTls.cert);
  files.clientKey = writePem("client-key.pem", clientTls.key);
});

afterAll(() => {
  for (const p of procs) p.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasPython)("python3-h2 as the CONNECT server", () => {
  let port = 0;
  let out: ReturnType<typeof lines>;
  beforeAll(async () => {
    const proc = spawn([PY, join(HERE, "h2_connect_server.py"), "--cert", files.serverCert, "--key", files.serverKey, "--ca", files.ca], {
      stdout: "pipe",
      stderr: "pipe",
    });
    procs.push(proc);
    out = lines(proc);
    const ready = await out.next(10_000);
    port = Number(ready.split(" ")[1]);
  });

  test("our client: CONNECT, headers, 2 MiB echo through 64 KiB windows, half-close", async () => {
    const pool = new HbonePool();
    try {
      const s = await pool.connect({
        address: `127.0.0.1:${port}`,
        authority: "10.0.0.5:8080",
        headers: { forwarded: 'for="10.0.0.4:5555"', baggage: "k8s.namespace.name=interop" },
        tls: clientTls,
        expectedIdentities: [SERVER_ID],
      });
      expect(s.status).toBe(200);
      const log = JSON.parse(await out.next(5000));
      expect(log.authority).toBe("10.0.0.5:8080");
      expect(log.method).toBe("CONNECT");
      expect(log.headers.forwarded).toBe('for="10.0.0.4:5555"');
      expect(log.client_sans).toEqual([CLIENT_ID]);
      const data = randomBytes(2 * 1024 * 1024);
      const r = await roundTrip(s, data);
      expect(r.err).toBeUndefined();
      expect(r.ended).toBe(true);
      expect(Buffer.compare(r.bytes, Buffer.from(data))).toBe(0);
    } finally {
      await pool.close();
    }
  }, 30_000);

  test("our client: 401 and 503 surface as statuses; parallel streams share the connection", async () => {
    const pool = new HbonePool();
    try {
      const base = { address: `127.0.0.1:${port}`, tls: clientTls, expectedIdentities: [SERVER_ID] };
      const e401 = await pool.connect({ ...base, authority: "10.0.0.5:1" }).catch((e) => e);
      expect(e401.status).toBe(401);
      const e503 = await pool.connect({ ...base, authority: "10.0.0.5:2" }).catch((e) => e);
      expect(e503.status).toBe(503);
      const streams = await Promise.all(Array.from({ length: 8 }, () => pool.connect({ ...base, authority: "10.0.0.5:80" })));
      const datas = streams.map(() => randomBytes(100_000));
      const rs = await Promise.all(streams.map((s, i) => roundTrip(s, datas[i])));
      rs.forEach((r, i) => expect(Buffer.compare(r.bytes, Buffer.from(datas[i]))).toBe(0));
      expect(pool.connections).toBe(1);
    } finally {
      await pool.close();
    }
  }, 30_000);
});

describe.skipIf(!hasPython)("python3-h2 as the client of our server", () => {
  let server: HboneServer;
  const seen: { authority: string; peer: string; headers: Record<string, string> }[] = [];
  beforeAll(() => {
    server = HboneServer.listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: serverTls,
      onStream(s) {
        seen.push({ authority: s.authority, peer: s.peerIdentity, headers: s.headers });
        if (s.authority.endsWith(":1")) return s.respond(401);
        s.respond(200);
        echoStream(s);
      },
    });
  });
  afterAll(() => server.close({ timeoutMs: 1000 }));

  async function runClient(args: string[]): Promise<any> {
    const proc = spawn([PY, join(HERE, "h2_connect_client.py"), "--port", String(server.port), "--cert", files.clientCert, "--key", files.clientKey, "--ca", files.ca, "--timeout", "40", ...args], {
      stdout: "pipe",
      stderr: "pipe",
    });
    procs.push(proc);
    const text = await new Response(proc.stdout).text();
    await proc.exited;
    if (!text.trim()) throw new Error(`python client failed: ${await new Response(proc.stderr).text()}`);
    return JSON.parse(text.trim().split("\n").at(-1)!);
  }

  test("streams echo byte for byte with half-close; identities and headers arrive", async () => {
    const r = await runClient(["--streams", "4", "--bytes", "300000", "--authority", "10.0.0.9:7000", "--header", "baggage=k8s.namespace.name=py"]);
    expect(r.error).toBeNull();
    expect(r.peer_sans).toEqual([SERVER_ID]);
    expect(r.streams.length).toBe(4);
    for (const s of r.streams) {
      expect(s.status).toBe(200);
      expect(s.sent).toBe(300000);
      expect(s.received).toBe(300000);
      expect(s.received_sha256).toBe(s.sent_sha256);
      expect(s.ended).toBe(true);
      expect(s.reset).toBeNull();
    }
    const last = seen.at(-1)!;
    expect(last.authority).toBe("10.0.0.9:7000");
    expect(last.peer).toBe(CLIENT_ID);
    expect(last.headers.baggage).toBe("k8s.namespace.name=py");
  }, 30_000);

  test("a 401 reaches the python client", async () => {
    const r = await runClient(["--authority", "10.0.0.9:1", "--bytes", "0"]);
    expect(r.streams[0].status).toBe(401);
  }, 30_000);

  test("thousands of streams opened and reset at once do not disturb a running tunnel", async () => {
    const r = await runClient(["--streams", "1", "--bytes", String(4 * 1024 * 1024), "--storm", "5000"]);
    expect(r.error).toBeNull();
    expect(r.storm).toBe(5000);
    expect(r.streams[0].status).toBe(200);
    expect(r.streams[0].received).toBe(4 * 1024 * 1024);
    expect(r.streams[0].received_sha256).toBe(r.streams[0].sent_sha256);
    expect(r.streams[0].ended).toBe(true);
  }, 30_000);
});

describe.skipIf(!hasNghttpx)("nghttpx --http2-proxy --verify-client as the CONNECT server", () => {
  let port = 0;
  let backend: import("bun").TCPSocketListener<{ head: string; open: boolean; left: number }>;
  const BIG = 3 * 1024 * 1024;
  const EXPECT: Record<number, number> = { 9090: BIG, 9091: 8 };
  const requests: string[] = [];
  beforeAll(async () => {
    // HTTP/1.1 CONNECT backend that echoes the tunnel. nghttpx does not pass the client's END_STREAM
    // on to an HTTP/1.1 backend, so the backend half-closes after echoing the size the test sends
    // (chosen by the CONNECT port), which nghttpx turns into END_STREAM towards our client.
    backend = Bun.listen<{ head: string; open: boolean; left: number }>({
      hostname: "127.0.0.1",
      port: 0,
      allowHalfOpen: true,
      socket: {
        open(s) {
          s.data = { head: "", open: false, left: 0 };
        },
        data(s, chunk) {
          if (!s.data.open) {
            s.data.head += Buffer.from(chunk).toString("latin1");
            const end = s.data.head.indexOf("\r\n\r\n");
            if (end < 0) return;
            const head = s.data.head.slice(0, end);
            requests.push(head);
            s.data.open = true;
            s.data.left = EXPECT[Number(head.match(/^CONNECT [^ ]+:(\d+) /)?.[1])] ?? 0;
            s.write("HTTP/1.1 200 Connection Established\r\n\r\n");
            chunk = Buffer.from(s.data.head.slice(end + 4), "latin1");
          }
          if (chunk.length && s.write(chunk) !== chunk.length) throw new Error("backend socket full");
          s.data.left -= chunk.length;
          if (s.data.left <= 0) s.end();
        },
      },
    });
    port = fixedPort(); // nghttpx cannot bind port 0 and tell us the port
    const proc = spawn([
      "nghttpx", "--conf=/dev/null", "--http2-proxy", "--verify-client", `--verify-client-cacert=${files.ca}`,
      `--frontend=127.0.0.1,${port}`, `--backend=127.0.0.1,${backend.port}`, "--no-ocsp", "--single-thread",
      "--tls-min-proto-version=TLSv1.3", "--log-level=WARN", "--accesslog-file=/dev/null",
      `--pid-file=${join(dir, "nghttpx.pid")}`, files.serverKey, files.serverCert,
    ], { stdout: "pipe", stderr: "pipe" });
    procs.push(proc);
    await waitForPort(port, 10_000);
  });
  afterAll(() => backend?.stop(true));

  test("our client tunnels through nghttpx with mTLS, both directions, END_STREAM from the server", async () => {
    const pool = new HbonePool();
    try {
      const s = await pool.connect({
        address: `127.0.0.1:${port}`,
        authority: "10.0.0.7:9090",
        headers: { forwarded: 'for="10.0.0.8"' },
        tls: clientTls,
        expectedIdentities: [SERVER_ID],
      });
      expect(s.status).toBe(200);
      const data = randomBytes(BIG);
      const r = await roundTrip(s, data);
      expect(r.err).toBeUndefined();
      expect(r.ended).toBe(true);
      expect(Buffer.compare(r.bytes, Buffer.from(data))).toBe(0);
      expect(requests.at(-1)).toStartWith("CONNECT 10.0.0.7:9090 HTTP/1.1");
      // Several streams on the same nghttpx connection.
      const more = await Promise.all([1, 2, 3].map(() => pool.connect({ address: `127.0.0.1:${port}`, authority: "10.0.0.7:9091", tls: clientTls, expectedIdentities: [SERVER_ID] })));
      const rs = await Promise.all(more.map((m, i) => roundTrip(m, Buffer.from(`stream-${i}`))));
      rs.forEach((x, i) => expect(x.bytes.toString()).toBe(`stream-${i}`));
      expect(pool.connections).toBe(1);
    } finally {
      await pool.close();
    }
  }, 30_000);

  test("nghttpx refuses a client without a certificate of the trust domain", async () => {
    const other = await (await makeTestCa("other")).issue(CLIENT_ID);
    const pool = new HbonePool({ connectTimeoutMs: 3000 });
    try {
      const e = await pool.connect({ address: `127.0.0.1:${port}`, authority: "10.0.0.7:1", tls: other, expectedIdentities: [SERVER_ID] })
        .catch((e) => e);
      expect(e).toBeInstanceOf(Error);
      expect(e.status).toBeUndefined();
    } finally {
      await pool.close();
    }
  }, 30_000);
});
