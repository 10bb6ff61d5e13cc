/**
 * Load tools for bench/ztunnel.ts, run inside the lab's pod namespaces (`ip netns exec NS bun THIS ...`).
 * The same tools drive every path (mesh, no mesh, HAProxy), so their own cost cancels out.
 *
 *   echo PORT                    TCP echo server
 *   http PORT                    HTTP/1.1 server answering every request with 1024 bytes
 *   rtt HOST PORT N              N 1-byte ping-pongs on one connection -> {"p50_us","p99_us"}
 *   connrate HOST PORT SECS C    C workers: connect, 1 byte there and back, close -> {"cps"}
 *   hold HOST PORT N [until-signal]  opens N connections (each proven end to end by an echo), prints
 *                                "held N", keeps them until stdin closes (or SIGTERM)
 * Servers print "ready" once listening.
 */
import type { Socket } from "bun";

const [mode, ...args] = process.argv.slice(2);

function connect(host: string, port: number, onData: (s: Socket<unknown>, d: Uint8Array) => void): Promise<Socket<unknown>> {
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open: (s) => {
          s.setNoDelay(true);
          resolve(s);
        },
        data: onData,
        connectError: (_s, e) => reject(e),
        error: () => {},
        close: () => {},
      },
    }).catch(reject);
  });
}

if (mode === "echo") {
  Bun.listen({
    hostname: "0.0.0.0",
    port: Number(args[0]),
    socket: {
      open: (s) => void s.setNoDelay(true),
      data: (s, d) => void s.write(d),
      error: () => {},
    },
  });
  console.log("ready");
} else if (mode === "http") {
  const body = new Uint8Array(1024).fill(120);
  Bun.serve({ hostname: "0.0.0.0", port: Number(args[0]), fetch: () => new Response(body, { headers: { "content-type": "text/plain" } }) });
  console.log("ready");
} else if (mode === "rtt") {
  const [host, port, n] = [args[0]!, Number(args[1]), Number(args[2])];
  // The first rounds warm the path (connection pool, JIT) and are not counted.
  const warm = Math.min(500, n);
  const samples = new Float64Array(n + warm);
  let i = 0;
  let t0 = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const one = new Uint8Array([1]);
  const s = await connect(host, port, (sock) => {
    samples[i++] = (Bun.nanoseconds() - t0) / 1000;
    if (i === samples.length) return done();
    t0 = Bun.nanoseconds();
    sock.write(one);
  });
  t0 = Bun.nanoseconds();
  s.write(one);
  await finished;
  s.end();
  const sorted = [...samples.subarray(warm)].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  console.log(JSON.stringify({ p50_us: Math.round(pct(0.5)), p99_us: Math.round(pct(0.99)), n }));
  process.exit(0);
} else if (mode === "connrate") {
  const [host, port, secs, c] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3])];
  const end = performance.now() + secs * 1000;
  let count = 0;
  let errors = 0;
  const worker = async () => {
    while (performance.now() < end) {
      try {
        await new Promise<void>((resolve, reject) => {
          let sock: Socket<unknown> | undefined;
          const timer = setTimeout(() => {
            sock?.terminate();
            reject(new Error("timeout"));
          }, 5000);
          connect(host, port, (s) => {
            clearTimeout(timer);
            s.end();
            resolve();
          }).then((s) => {
            sock = s;
            s.write(new Uint8Array([1]));
          }, (e) => {
            clearTimeout(timer);
            reject(e);
          });
        });
        count++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  console.log(JSON.stringify({ cps: Math.round(count / secs), errors }));
  process.exit(0);
} else if (mode === "hold") {
  const [host, port, n] = [args[0]!, Number(args[1]), Number(args[2])];
  const held: Socket<unknown>[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, () =>
      new Promise<Socket<unknown>>((resolve, reject) => {
        connect(host, port, (s) => resolve(s)).then((s) => s.write(new Uint8Array([1])), reject);
      })
    );
    held.push(...(await Promise.all(batch)));
  }
  console.log(`held ${held.length}`);
  if (args[3] === "until-signal") {
    await new Promise<void>((resolve) => process.on("SIGTERM", () => resolve()));
  } else {
    for await (const _ of Bun.stdin.stream()) {
      // wait for stdin to close
    }
  }
  for (const s of held) s.end();
  process.exit(0);
} else {
  console.error("usage: see the header of bench/_ztunnel_tools.ts");
  process.exit(2);
}
