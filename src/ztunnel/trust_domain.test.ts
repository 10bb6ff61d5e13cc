/**
 * The ztunnel's HBONE server refuses a client whose identity is outside the mesh's trust domain
 * (docs/hbone.md §5), with the trust domain of its current configuration: a real Dataplane, the mesh
 * CA, TLS on loopback. The configuration here names another trust domain than the CA's certificates, the
 * way a client of a foreign mesh chained to a shared root would look.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HbonePool } from "../hbone/mod.ts";
import { CertificateAuthority, WorkloadCertificates } from "../identity/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { ConnectionTracker } from "./connections.ts";
import { Dataplane, poolClient } from "./dataplane.ts";
import type { ProxyInputs } from "./inputs.ts";
import { RoundRobin } from "./outbound_plan.ts";
import { ZtunnelState } from "./state.ts";
import { dialTcp } from "../stream/mod.ts";
import { ConnectionTelemetry } from "./telemetry.ts";
import { meshModel, workload } from "../../test/support/mod.ts";

const API_IP = "127.0.0.3";
let dir = "";
let app: Server;
let appPort = 0;
let certs: WorkloadCertificates;
let clientCerts: WorkloadCertificates;
let dataplane: Dataplane;
let state: ZtunnelState;
let base: MeshModel;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-td-"));
  const ca = await CertificateAuthority.open(dir);
  app = createServer((s) => s.end("api"));
  await new Promise<void>((r) => app.listen(0, API_IP, () => r()));
  appPort = (app.address() as { port: number }).port;
  base = meshModel({
    workloads: [
      workload("product-viewer", "shop", "127.0.0.2", "node-a"),
      workload("product-api", "shop", API_IP, "node-b", { ports: [{ port: appPort }] }),
    ],
  });
  state = new ZtunnelState("node-b");
  state.replace(base, 1);
  const sign = (csr: string, identity: string) => ca.signCsr(csr, { identity });
  certs = new WorkloadCertificates({ sign, trustBundlePem: ca.trustBundlePem });
  clientCerts = new WorkloadCertificates({ sign, trustBundlePem: ca.trustBundlePem });
  const inputs: ProxyInputs = {
    state,
    hbone: poolClient(new HbonePool(), certs),
    dial: (h, p) => dialTcp(h, p),
    originalDestination: () => undefined,
    telemetry: new ConnectionTelemetry(new Registry()),
    tracker: new ConnectionTracker(),
    rr: new RoundRobin(),
    accepting: () => true,
  };
  dataplane = new Dataplane(inputs, certs, {
    outbound: { hostname: "127.0.0.1", port: 0 },
    inboundPlaintext: { hostname: "127.0.0.1", port: 0 },
    hbone: { hostname: API_IP, port: 0 },
  });
  await certs.get("spiffe://cluster.local/ns/shop/sa/product-api");
  await clientCerts.get("spiffe://cluster.local/ns/shop/sa/product-viewer");
});

afterAll(async () => {
  await dataplane?.stop(100);
  certs?.close();
  clientCerts?.close();
  app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One CONNECT as product-viewer (cluster.local) to product-api's ztunnel: the reply, or the error. */
async function connectAsViewer(): Promise<string> {
  const m = clientCerts.tlsMaterial("spiffe://cluster.local/ns/shop/sa/product-viewer")!;
  const pool = new HbonePool({ connectTimeoutMs: 3000 });
  try {
    const s = await pool.connect({
      address: `${API_IP}:${dataplane.hbone.port}`,
      authority: `${API_IP}:${appPort}`,
      tls: { cert: m.cert, key: m.key, ca: m.ca! },
      expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/product-api"],
    });
    return await new Promise<string>((resolve) => {
      let got = "";
      const t = setTimeout(() => resolve(`timeout (${got})`), 3000);
      s.on("data", (b) => (got += Buffer.from(b).toString()));
      s.on("close", () => {
        clearTimeout(t);
        resolve(got);
      });
      s.end();
    });
  } catch (e) {
    return `error: ${(e as Error).message}`;
  } finally {
    await pool.close(100);
  }
}

test("a client of the mesh's trust domain gets through; after the configuration names another, it is refused at the handshake", async () => {
  expect(await connectAsViewer()).toBe("api");
  const before = dataplane.hbone.stats.handshakeRefused;
  state.replace({ ...base, meshConfig: { ...base.meshConfig, trustDomain: "prod.example" } }, 2);
  expect(await connectAsViewer()).toStartWith("error:");
  expect(dataplane.hbone.stats.handshakeRefused).toBe(before + 1);
  state.replace(base, 3);
  expect(await connectAsViewer()).toBe("api");
});
