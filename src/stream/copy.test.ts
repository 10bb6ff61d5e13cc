/**
 * The copy contract over Bun TCP and TLS sockets (HBONE tunnels run it in src/hbone), and the
 * promise form's leftovers.
 */
import { expect, test } from "bun:test";
import net from "node:net";
import { copyContract, TEST_TLS, TLS_ENDS } from "./_test_copy_contract.ts";
import { copyBidirectional, dialTcp, listenTcp, StreamCopy } from "./mod.ts";

copyContract("TCP sockets", {
  start(upstreamPort, watch) {
    const l = listenTcp({ hostname: "127.0.0.1", port: 0 }, async (client) => {
      const up = await dialTcp("127.0.0.1", upstreamPort).catch(() => undefined);
      if (!up) return client.reset();
      watch.onCopy(new StreamCopy(client, up, watch.owner));
    });
    return Promise.resolve(l);
  },
});

copyContract("TLS sockets", {
  ends: TLS_ENDS,
  start(upstreamPort, watch) {
    const l = listenTcp({ hostname: "127.0.0.1", port: 0, tls: { cert: TEST_TLS.cert, key: TEST_TLS.key } }, async (client) => {
      const up = await dialTcp("127.0.0.1", upstreamPort, { tls: { ca: TEST_TLS.ca } }).catch(() => undefined);
      if (!up) return client.reset();
      watch.onCopy(new StreamCopy(client, up, watch.owner));
    });
    return Promise.resolve(l);
  },
});

test("copyBidirectional sends bytes a reader already took first, and counts them", async () => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on("data", (d: Buffer) => parts.push(d));
    s.on("end", () => s.end(Buffer.concat(parts)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  let result: Promise<{ received: number; sent: number; error?: Error }> | undefined;
  const l = listenTcp({ hostname: "127.0.0.1", port: 0 }, async (client) => {
    const up = await dialTcp("127.0.0.1", (server.address() as net.AddressInfo).port);
    result = copyBidirectional(client, up, { client: Buffer.from("early:"), upstream: Buffer.from("hello:") });
  });
  const reply = await new Promise<string>((resolve, reject) => {
    const c = net.createConnection({ host: "127.0.0.1", port: l.port, allowHalfOpen: true }, () => c.end("late"));
    const parts: Buffer[] = [];
    c.on("data", (d: Buffer) => parts.push(d));
    c.on("end", () => resolve(Buffer.concat(parts).toString()));
    c.on("error", reject);
  });
  // The upstream's leftover reaches the client first; the client's leftover precedes what it sends later.
  expect(reply).toBe("hello:early:late");
  expect(await result!).toEqual({ received: 10, sent: 16, error: undefined });
  l.stop();
  server.close();
});
