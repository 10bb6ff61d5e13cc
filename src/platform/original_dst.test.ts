import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getOriginalDestination } from "./original_dst.ts";
import { createNetns, deleteNetns, execInNetns, ipIn } from "./netns.ts";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log("original_dst.test.ts: skipped, needs root for a network namespace and iptables");

describe.skipIf(!isRoot)("getOriginalDestination in a network namespace with a REDIRECT rule", () => {
  const ns = `odst-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  let dir = "";

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mesh-odst-"));
    createNetns(ns);
    // 10.123.0.0/24 exists only inside this namespace (on lo, the whole prefix is local), so the client's
    // SYN reaches the nat OUTPUT hook and replies come back over lo.
    ipIn(ns, ["addr", "add", "10.123.0.1/24", "dev", "lo"]);
    execInNetns(ns, ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "10.123.0.0/24", "-j", "REDIRECT", "--to-ports", "15001"]);
  });

  afterAll(() => {
    deleteNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("reports the address and port the client dialed", async () => {
    const script = join(dir, "probe.ts");
    writeFileSync(
      script,
      `import { getOriginalDestination } from ${JSON.stringify(join(import.meta.dir, "original_dst.ts"))};
const results: unknown[] = [];
let direct: unknown;
const server = Bun.listen({ hostname: "0.0.0.0", port: 15001, socket: {
  open(s) {
    try { results.push(getOriginalDestination((s as unknown as { fd: number }).fd)); }
    catch (e) { direct = (e as Error).message; }
    s.write("x");
  },
  data() {},
}});
// The server answers one byte once it has read the original destination; the client then closes.
async function dial(host: string, port: number) {
  await new Promise<void>((resolve, reject) => {
    Bun.connect({ hostname: host, port, socket: { data(s) { s.end(); resolve(); }, error(_s, e) { reject(e); }, connectError(_s, e) { reject(e); } } });
  });
}
await dial("10.123.0.7", 8080);
await dial("10.123.0.9", 443);
await dial("127.0.0.1", 15001); // not redirected: conntrack reports the listener's own address
server.stop(true);
console.log(JSON.stringify({ results, direct }));
`,
    );
    const out = execInNetns(ns, [process.execPath, script], { timeoutMs: 20_000 });
    const got = JSON.parse(out.trim().split("\n").pop()!);
    expect(got.results).toEqual([
      { address: "10.123.0.7", port: 8080, family: 4 },
      { address: "10.123.0.9", port: 443, family: 4 },
      { address: "127.0.0.1", port: 15001, family: 4 },
    ]);
    expect(got.direct).toBeUndefined();
  }, 30_000);

});

test("rejects an invalid file descriptor with a MeshError", () => {
  expect(() => getOriginalDestination(-1)).toThrow(/invalid file descriptor/);
});

test("a socket that was not redirected: an error, or its own local address when conntrack tracks it", async () => {
  let message = "";
  let found: { address: string; port: number } | undefined;
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        try {
          found = getOriginalDestination((s as unknown as { fd: number }).fd);
        } catch (e) {
          message = (e as Error).message;
        }
        s.end();
      },
      data() {},
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port: server.port,
        socket: { data() {}, close() { resolve(); }, connectError(_s, e) { reject(e); } },
      });
    });
  } finally {
    server.stop(true);
  }
  if (found) expect(found).toEqual({ address: "127.0.0.1", port: server.port, family: 4 });
  else expect(message).toMatch(/not redirected/);
});
