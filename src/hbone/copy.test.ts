/**
 * The copy contract (src/stream) with an HBONE tunnel as the stream in the middle: client -> TCP ->
 * copy -> HBONE CONNECT (mTLS HTTP/2) -> copy -> TCP -> server, as a ztunnel pair runs it. The copy
 * watched is the client half's (socket to tunnel); its abort must reach the server through the tunnel.
 */
import { afterAll } from "bun:test";
import { copyContract } from "../stream/_test_copy_contract.ts";
import { makeTestCa, spiffeId } from "./_test_certs.ts";
import { startClientHalf, startServerHalf } from "./_test_tunnel_pair.ts";
import { HbonePool } from "./mod.ts";

const SERVER_ID = spiffeId("t", "server");
const pool = new HbonePool();

afterAll(() => pool.close(500));

copyContract("HBONE tunnel", {
  async start(upstreamPort, watch) {
    const ca = await makeTestCa();
    const hbone = startServerHalf({ tls: await ca.issue(SERVER_ID) });
    const half = startClientHalf({
      pool,
      hbone: `127.0.0.1:${hbone.port}`,
      authority: `127.0.0.1:${upstreamPort}`,
      tls: await ca.issue(spiffeId("t", "client")),
      expectedIdentities: [SERVER_ID],
      onCopy: watch.onCopy,
      owner: watch.owner,
    });
    return {
      port: half.port,
      stop: async () => {
        half.stop();
        await hbone.close({ timeoutMs: 500 });
      },
    };
  },
});
