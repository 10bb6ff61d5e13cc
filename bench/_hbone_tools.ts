/**
 * Load tools for bench/hbone.ts, each run as its own process so the proxies' numbers are theirs:
 *
 *   echo PORT                      TCP echo server (prints "ready")
 *   rtt PORT N                     N 1-byte round trips on one connection -> {"p50_us","p99_us"}
 *   connrate PORT SECS WORKERS     connect, 1 byte there and back, close, in a loop -> {"cps"}
 *   hold PORT N                    opens N connections, each proven by an echo, prints "held N",
 *                                  keeps them until stdin closes
 */
import type { Socket } from "bun";

const [mode, ...args] = process.argv.slice(2);
const HOST = "127.0.0.1";

type Sock = Socket<{ onData: (d: Uint8Array) => void }>;

function dial(port: number, onData: (d: Uint8Array) => void): Promise<Sock> {
  return new Promise((resolve, reject) => {
    Bun.connect<{ onData: (d: Uint8Array) => void }>({
      hostname: HOST,
      port,
      data: { onData },
      socket: {
        open(s) {
          s.setNoDelay(true);
          resolve(s);
        },
        data: (s, d) => s.data.onData(d),
        connectError: (_s, e) => reject(e),
        error: () => {},
        close: () => {},
      },
    }).catch(reject);
  });
}

async function rtt(port: number, n: number): Promise<void> {
  const warm = Math.min(300, n);
  const samples: number[] = [];
  let t0 = 0;
  let left = n + warm;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const one = new Uint8Array([1]);
  const s = await dial(port, () => {
    const dt = (performance.now() - t0) * 1000;
    if (left <= n) samples.push(dt);
    if (--left === 0) return done();
    t0 = performance.now();
    s.write(one);
  });
  t0 = performance.now();
  s.write(one);
  await finished;
  s.end();
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  console.log(JSON.stringify({ p50_us: q(0.5), p99_us: q(0.99) }));
}

async function connrate(port: number, secs: number, workers: number): Promise<void> {
  const until = performance.now() + secs * 1000;
  let count = 0;
  let errors = 0;
  const one = new Uint8Array([1]);
  async function loop(): Promise<void> {
    while (performance.now() < until) {
      const ok = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 5000);
        Bun.connect({
          hostname: HOST,
          port,
          socket: {
            open(s) {
              s.write(one);
            },
            data(s) {
              clearTimeout(t);
              resolve(true); // before end(): Bun runs the close handler inside end()
              s.end();
            },
            connectError() {
              clearTimeout(t);
              resolve(false);
            },
            close() {
              clearTimeout(t);
              resolve(false);
            },
            error() {},
          },
        }).catch(() => resolve(false));
      });
      if (ok) count++;
      else errors++;
    }
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, loop));
  const secsTaken = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ cps: count / secsTaken, errors }));
}

async function hold(port: number, n: number): Promise<void> {
  const socks: Sock[] = [];
  const batch = 50;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
      let got!: () => void;
      const echoed = new Promise<void>((r) => (got = r));
      const s = await dial(port, () => got());
      s.write(new Uint8Array([2]));
      await echoed;
      socks.push(s);
    }));
  }
  console.log(`held ${socks.length}`);
  for await (const _ of Bun.stdin.stream()) { /* wait for stdin to close */ }
  for (const s of socks) s.end();
}

if (mode === "echo") {
  Bun.listen({
    hostname: HOST,
    port: Number(args[0]),
    allowHalfOpen: true,
    socket: {
      open: (s) => void s.setNoDelay(true),
      data: (s, d) => void s.write(d),
      end: (s) => void s.end(),
      error: () => {},
    },
  });
  console.log("ready");
} else if (mode === "rtt") {
  await rtt(Number(args[0]), Number(args[1]));
} else if (mode === "connrate") {
  await connrate(Number(args[0]), Number(args[1]), Number(args[2]));
} else if (mode === "hold") {
  await hold(Number(args[0]), Number(args[1]));
} else {
  console.error("usage: _hbone_tools.ts echo PORT | rtt PORT N | connrate PORT SECS WORKERS | hold PORT N");
  process.exit(2);
}
