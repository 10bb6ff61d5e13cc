/**
 * Two ztunnels in one process on loopback, with the real parts: the mesh CA and certificate client,
 * HBONE (TLS 1.3, HTTP/2 CONNECT), policy, telemetry. What iptables would do is simulated: the
 * original destination of each captured connection is told by the test, and the "pods" are loopback
 * addresses (127.0.0.2 product-viewer and 127.0.0.4 cart on node-a, 127.0.0.3 product-api on node-b).
 * Capture itself is tested in namespaces (capture/iptables.test.ts, test/ztunnel*.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setSink } from "../core/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { CertificateAuthority, WorkloadCertificates } from "../identity/mod.ts";
import type { AuthorizationPolicy, MeshModel, PeerAuthentication } from "../model/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { ConnectionTracker } from "./connections.ts";
import { Dataplane, poolClient } from "./dataplane.ts";
import type { HboneClient, ProxyInputs } from "./inputs.ts";
import { RoundRobin } from "./outbound_plan.ts";
import { ZtunnelState } from "./state.ts";
import { dialTcp, type SocketStream } from "../stream/mod.ts";
import { ConnectionTelemetry } from "./telemetry.ts";
import { meshModel, service, waitFor, workload } from "../../test/support/mod.ts";

const VIEWER_IP = "127.0.0.2";
const API_IP = "127.0.0.3";
const CART_IP = "127.0.0.4";
const OUTSIDE_IP = "127.0.0.5"; // a server that is not in the mesh
const STRANGER_IP = "127.0.0.9"; // a client that is not in the mesh

interface Node {
  name: string;
  state: ZtunnelState;
  registry: Registry;
  tracker: ConnectionTracker;
  dataplane: Dataplane;
  certs: WorkloadCertificates;
  pool: HbonePool;
  accepting: boolean;
}

let dir = "";
let ca: CertificateAuthority;
const nodes: Record<string, Node> = {};
const apps: Server[] = [];
let appPort = 0;
let cartPort = 0;
let outsidePort = 0;
/** What "iptables" says each captured connection was meant for, by the client's source address. */
const nextDestination = new Map<string, { address: string; port: number }>();
const logLines: Record<string, unknown>[] = [];
let restoreSink: ((line: string) => void) | undefined;

const viewer = workload("product-viewer", "shop", VIEWER_IP, "node-a");
const cart = workload("cart", "shop", CART_IP, "node-a");
let baseModel: MeshModel;

function withModel(parts: Partial<MeshModel>): void {
  const m: MeshModel = { ...baseModel, ...parts };
  for (const n of Object.values(nodes)) n.state.replace(m, (n.state.version ?? 0) + 1);
}

/** An app that answers "<name>:" + everything it received, once the client half-closed. */
async function app(name: string, host: string): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on("data", (d) => parts.push(d));
    s.on("end", () => s.end(Buffer.concat([Buffer.from(`${name}:`), ...parts])));
    s.on("error", () => {});
  });
  apps.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return (server.address() as { port: number }).port;
}

async function makeNode(name: string, hboneIp: string, hbonePorts: Map<string, number>): Promise<Node> {
  const state = new ZtunnelState(name);
  const registry = new Registry();
  const tracker = new ConnectionTracker();
  const certs = new WorkloadCertificates({
    sign: (csr, identity) => ca.signCsr(csr, { identity }),
    trustBundlePem: ca.trustBundlePem,
  });
  const pool = new HbonePool();
  const real = poolClient(pool, certs);
  // podIP:15008 is what the plan dials; here each node's HBONE server has its own loopback port.
  const hbone: HboneClient = {
    connect: (req) => real.connect({ ...req, port: hbonePorts.get(req.address) ?? req.port }),
  };
  const node = { name, state, registry, tracker, certs, pool, accepting: true } as Node;
  const inputs: ProxyInputs = {
    state,
    hbone,
    dial: (h, p) => dialTcp(h, p),
    originalDestination: (s: SocketStream) => nextDestination.get(s.remoteAddress),
    telemetry: new ConnectionTelemetry(registry),
    tracker,
    rr: new RoundRobin(),
    accepting: () => node.accepting,
  };
  node.dataplane = new Dataplane(inputs, certs, {
    outbound: { hostname: "127.0.0.1", port: 0 },
    inboundPlaintext: { hostname: "127.0.0.1", port: 0 },
    hbone: { hostname: hboneIp, port: 0 },
  });
  hbonePorts.set(hboneIp, node.dataplane.hbone.port);
  return node;
}

/** Connects as the workload at `from` through a node's outbound (or plaintext) listener, sends, half-closes, reads. */
function exchange(
  from: string,
  listenerPort: number,
  dst: { address: string; port: number },
  payload: string,
): Promise<{ reply: string; error?: string }> {
  nextDestination.set(from, dst);
  return new Promise((resolve) => {
    const s: Socket = createConnection({ host: "127.0.0.1", port: listenerPort, localAddress: from, allowHalfOpen: true });
    const parts: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve({ reply: Buffer.concat(parts).toString(), error: "timeout" });
    }, 5000);
    s.on("connect", () => s.end(payload));
    s.on("data", (d) => parts.push(d));
    s.on("error", (e) => {
      clearTimeout(t);
      resolve({ reply: Buffer.concat(parts).toString(), error: (e as NodeJS.ErrnoException).code ?? e.message });
    });
    s.on("close", () => {
      clearTimeout(t);
      resolve({ reply: Buffer.concat(parts).toString() });
    });
  });
}

function metric(n: Node, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of n.registry.render().split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(" ").pop());
  }
  return total;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mesh-ztunnel-dp-"));
  ca = await CertificateAuthority.open(dir);
  restoreSink = setSink((line) => logLines.push(JSON.parse(line)));
  appPort = await app("product-api", API_IP);
  cartPort = await app("cart", CART_IP);
  outsidePort = await app("outside", OUTSIDE_IP);
  const api = workload("product-api", "shop", API_IP, "node-b", { ports: [{ name: "http", port: appPort }] });
  baseModel = meshModel({
    workloads: [viewer, api, cart],
    services: [service("product-api", "shop", "10.96.0.20", [{ port: 8000, targetPort: appPort }], [api])],
  });
  const hbonePorts = new Map<string, number>();
  nodes.a = await makeNode("node-a", VIEWER_IP, hbonePorts);
  nodes.b = await makeNode("node-b", API_IP, hbonePorts);
  withModel({});
  // As the role does before it listens: every local workload's certificate first.
  for (const n of Object.values(nodes)) await Promise.all(n.state.localIdentities().map((id) => n.certs.get(id)));
});

afterAll(async () => {
  for (const n of Object.values(nodes)) {
    await n.dataplane.stop(100);
    await n.pool.close(100);
    n.certs.close();
  }
  for (const s of apps) s.close();
  if (restoreSink) setSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

describe("mesh traffic between two ztunnels", () => {
  test("viewer -> Service VIP on another node: HBONE, bytes intact, half-close both ways", async () => {
    const r = await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "GET /products");
    expect(r).toEqual({ reply: "product-api:GET /products" });
  });

  test("destination metrics name the viewer's principal with mutual_tls; the source reports too", async () => {
    const dst = { reporter: "destination", source_principal: viewer.identity, connection_security_policy: "mutual_tls", destination_workload: "product-api" };
    await waitFor("destination close", () => metric(nodes.b!, "istio_tcp_connections_closed_total", dst) >= 1, 3000);
    expect(metric(nodes.b!, "istio_tcp_connections_opened_total", { ...dst, destination_service: "product-api.shop.svc.cluster.local" })).toBeGreaterThanOrEqual(1);
    expect(metric(nodes.b!, "istio_tcp_received_bytes_total", dst)).toBeGreaterThanOrEqual(13);
    expect(metric(nodes.b!, "istio_tcp_sent_bytes_total", dst)).toBeGreaterThanOrEqual(25);
    const src = { reporter: "source", source_workload: "product-viewer", destination_principal: "spiffe://cluster.local/ns/shop/sa/product-api", connection_security_policy: "mutual_tls" };
    await waitFor("source close", () => metric(nodes.a!, "istio_tcp_connections_closed_total", src) >= 1, 3000);
    const log = logLines.find((l) => l.scope === "access" && l.reporter === "destination" && (l.src as { identity?: string }).identity === viewer.identity);
    expect(log).toMatchObject({ msg: "connection complete", result: "ok", security: "mutual_tls", dst: { workload: "product-api", service: "product-api.shop.svc.cluster.local" } });
    expect(log!.bytes_recv).toBe(13);
    expect(typeof log!.duration_ms).toBe("number");
  });

  test("same node: served in-process, reported by both sides", async () => {
    const r = await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: CART_IP, port: cartPort }, "hello cart");
    expect(r).toEqual({ reply: "cart:hello cart" });
    await waitFor("same-node report", () => metric(nodes.a!, "istio_tcp_connections_closed_total", { reporter: "destination", destination_workload: "cart" }) >= 1, 3000);
    expect(metric(nodes.a!, "istio_tcp_connections_closed_total", { reporter: "source", destination_workload: "cart", connection_security_policy: "mutual_tls" })).toBeGreaterThanOrEqual(1);
  });

  test("a destination outside the mesh is passed through, or refused when MeshConfig says deny", async () => {
    const dst = { address: OUTSIDE_IP, port: outsidePort };
    expect(await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, dst, "x")).toEqual({ reply: "outside:x" });
    await waitFor("passthrough metric", () => metric(nodes.a!, "istio_tcp_connections_closed_total", { reporter: "source", connection_security_policy: "none", destination_service: OUTSIDE_IP }) >= 1, 3000);
    withModel({ meshConfig: { ...baseModel.meshConfig, outboundPolicy: "deny" } });
    try {
      const r = await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, dst, "x");
      expect(r.reply).toBe("");
      expect(r.error).toBe("ECONNRESET");
    } finally {
      withModel({});
    }
  });

  test("a connection from an address that is not a local workload is refused", async () => {
    const r = await exchange(STRANGER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "x");
    expect(r.error).toBe("ECONNRESET");
  });
});

describe("L4 authorization at the destination", () => {
  const allowOnly = (principal: string): AuthorizationPolicy => ({
    name: "allow-one",
    namespace: "shop",
    action: "ALLOW",
    scope: { kind: "selector", matchLabels: { app: "product-api" } },
    rules: [{ from: [{ source: { principals: [principal] } }] }],
    hasL7: false,
  });

  test("ALLOW naming the viewer admits it; naming someone else refuses it (reset, DENY reported)", async () => {
    withModel({ authorizationPolicies: [allowOnly("cluster.local/ns/shop/sa/product-viewer")] });
    expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "a")).reply).toBe("product-api:a");
    withModel({ authorizationPolicies: [allowOnly("cluster.local/ns/shop/sa/someone-else")] });
    const before = metric(nodes.b!, "istio_tcp_connections_closed_total", { reporter: "destination", response_flags: "DENY" });
    const r = await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "b");
    expect(r.reply).toBe("");
    expect(r.error).toBe("ECONNRESET");
    await waitFor("deny metric", () => metric(nodes.b!, "istio_tcp_connections_closed_total", { reporter: "destination", response_flags: "DENY" }) > before, 3000);
    expect(logLines.some((l) => l.msg === "connection refused" && String(l.reason).startsWith("401"))).toBe(true);
    withModel({});
  });
});

describe("one trace id across hops (traceparent on the CONNECT)", () => {
  const HEX32 = /^[0-9a-f]{32}$/;
  const access = (from: number, reporter: string) => logLines.slice(from).filter((l) => l.scope === "access" && l.reporter === reporter);

  test("the source ztunnel starts a trace per connection; the destination ztunnel logs the same trace_id", async () => {
    const from = logLines.length;
    expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "t1")).reply).toBe("product-api:t1");
    expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "t2")).reply).toBe("product-api:t2");
    await waitFor("both reports of both connections", () => access(from, "source").length === 2 && access(from, "destination").length === 2, 3000);
    const src = access(from, "source").map((l) => l.trace_id as string);
    const dst = access(from, "destination").map((l) => l.trace_id as string);
    for (const id of src) expect(id).toMatch(HEX32);
    expect(src[0]).not.toBe(src[1]);
    expect(dst.sort()).toEqual(src.sort());
  });

  test("a denied connection (HBONE 401): the source's and the destination's refusal carry the same trace_id", async () => {
    withModel({
      authorizationPolicies: [{ name: "nobody", namespace: "shop", action: "ALLOW", scope: { kind: "selector", matchLabels: { app: "product-api" } }, rules: [], hasL7: false }],
    });
    try {
      const from = logLines.length;
      expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "no")).error).toBe("ECONNRESET");
      await waitFor("both refusals", () => access(from, "source").length === 1 && access(from, "destination").length === 1, 3000);
      const [s] = access(from, "source");
      const [d] = access(from, "destination");
      expect(s).toMatchObject({ msg: "connection refused", result: "denied" });
      expect(String(s!.reason)).toContain("refused with 401");
      expect(d).toMatchObject({ msg: "connection refused", result: "denied" });
      expect(String(d!.reason)).toStartWith("401");
      expect(s!.trace_id).toMatch(HEX32);
      expect(d!.trace_id).toBe(s!.trace_id);
    } finally {
      withModel({});
    }
  });

  test("same node: both reports carry one trace_id", async () => {
    const from = logLines.length;
    expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: CART_IP, port: cartPort }, "c")).reply).toBe("cart:c");
    await waitFor("both reports", () => access(from, "source").length === 1 && access(from, "destination").length === 1, 3000);
    expect(access(from, "source")[0]!.trace_id).toMatch(HEX32);
    expect(access(from, "destination")[0]!.trace_id).toBe(access(from, "source")[0]!.trace_id);
  });

  test("the destination reads the CONNECT's traceparent, and starts a trace when there is none (or it is invalid)", async () => {
    const m = nodes.a!.certs.tlsMaterial(viewer.identity)!;
    const pool = new HbonePool();
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    try {
      const ids: unknown[] = [];
      for (const traceparent of [`00-${trace}-00f067aa0ba902b7-01`, undefined, `00-${"0".repeat(32)}-00f067aa0ba902b7-01`]) {
        const from = logLines.length;
        const s = await pool.connect({
          address: `${API_IP}:${nodes.b!.dataplane.hbone.port}`,
          authority: `${API_IP}:${appPort}`,
          headers: { traceparent },
          tls: { cert: m.cert, key: m.key, ca: m.ca! },
          expectedIdentities: ["spiffe://cluster.local/ns/shop/sa/product-api"],
        });
        const done = new Promise<void>((resolve) => s.on("close", () => resolve()));
        s.on("data", () => {});
        s.end(Buffer.from("x"));
        await done;
        await waitFor("the destination report", () => access(from, "destination").length === 1, 3000);
        ids.push(access(from, "destination")[0]!.trace_id);
      }
      expect(ids[0]).toBe(trace);
      expect(ids[1]).toMatch(HEX32);
      expect(ids[2]).toMatch(HEX32);
      expect(ids[2]).not.toBe("0".repeat(32));
    } finally {
      await pool.close(100);
    }
  });
});

describe("plaintext from outside the mesh (15006)", () => {
  const pa = (mode: PeerAuthentication["mode"]): PeerAuthentication => ({ name: "default", namespace: "shop", scope: { kind: "namespace" }, mode });

  test("PERMISSIVE admits it, with no principal and security none", async () => {
    withModel({ peerAuthentications: [pa("PERMISSIVE")] });
    const r = await exchange(STRANGER_IP, nodes.b!.dataplane.inboundPlaintext.port, { address: API_IP, port: appPort }, "plain");
    expect(r).toEqual({ reply: "product-api:plain" });
    await waitFor("plaintext metric", () => metric(nodes.b!, "istio_tcp_connections_closed_total", { reporter: "destination", connection_security_policy: "none", source_principal: "unknown" }) >= 1, 3000);
  });

  test("STRICT refuses it", async () => {
    withModel({ peerAuthentications: [pa("STRICT")] });
    const r = await exchange(STRANGER_IP, nodes.b!.dataplane.inboundPlaintext.port, { address: API_IP, port: appPort }, "plain");
    expect(r.error).toBe("ECONNRESET");
    // Mesh traffic is unaffected by STRICT.
    expect((await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "m")).reply).toBe("product-api:m");
    withModel({});
  });
});

describe("readiness and draining", () => {
  test("while not accepting, captured connections are refused", async () => {
    nodes.a!.accepting = false;
    try {
      const r = await exchange(VIEWER_IP, nodes.a!.dataplane.outbound.port, { address: "10.96.0.20", port: 8000 }, "x");
      expect(r.error).toBe("ECONNRESET");
    } finally {
      nodes.a!.accepting = true;
    }
  });

  test("drain: a connection that finishes during the drain ends it early", async () => {
    nextDestination.set(VIEWER_IP, { address: "10.96.0.20", port: 8000 });
    const s = createConnection({ host: "127.0.0.1", port: nodes.a!.dataplane.outbound.port, localAddress: VIEWER_IP, allowHalfOpen: true });
    const reply: Buffer[] = [];
    s.on("data", (d) => reply.push(d));
    const clientClosed = new Promise<void>((resolve) => s.on("close", () => resolve()));
    s.write("slow request");
    await waitFor("tracked connection", () => nodes.a!.tracker.size === 1, 3000);
    const started = Date.now();
    const drained = nodes.a!.tracker.drain(5000);
    setTimeout(() => s.end(), 100);
    expect(await drained).toEqual({ finished: 1, aborted: 0 });
    expect(Date.now() - started).toBeLessThan(2000);
    await clientClosed;
    expect(Buffer.concat(reply).toString()).toBe("product-api:slow request");
  });

  test("drain: a connection still open at the deadline is aborted (reset)", async () => {
    nextDestination.set(VIEWER_IP, { address: "10.96.0.20", port: 8000 });
    const s = createConnection({ host: "127.0.0.1", port: nodes.a!.dataplane.outbound.port, localAddress: VIEWER_IP });
    const closed = new Promise<string>((resolve) => {
      s.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
      s.on("close", () => resolve("closed"));
    });
    s.write("still talking");
    await waitFor("tracked connection", () => nodes.a!.tracker.size === 1, 3000);
    const started = Date.now();
    const result = await nodes.a!.tracker.drain(300);
    expect(result).toEqual({ finished: 0, aborted: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(await closed).toBe("ECONNRESET");
  });
});
