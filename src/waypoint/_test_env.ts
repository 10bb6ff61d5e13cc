/**
 * Test scaffolding for the waypoint (private to src/waypoint): a waypoint in this process with a static
 * view, the mesh CA's certificates, and real sockets on loopback addresses:
 *
 *   client (HBONE as product-viewer) -> waypoint 127.0.0.20 -> "ztunnel" of each pod -> app (TCP)
 *
 * The pods' ztunnels are small HBONE servers with the pod's certificate that admit only the waypoint's
 * identity (what the real destination ztunnel does for a workload served by a waypoint) and connect the
 * tunnel to the app. Requests are made with Bun's node:http client over the tunnel, raw bytes, or
 * node:http2.
 */
import http from "node:http";
import http2 from "node:http2";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { parseConfig } from "../config/mod.ts";
import { setSink } from "../core/mod.ts";
import { HboneServer, HbonePool, type HboneStream } from "../hbone/mod.ts";
import { toDuplex } from "../stream/mod.ts";
import { CertificateAuthority, WorkloadCertificates } from "../identity/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { hboneConnector } from "./connect.ts";
import { JwksKeys } from "./jwks.ts";
import { WaypointProxy, type WaypointLimits } from "./proxy.ts";
import { WaypointState } from "./state.ts";
import { RequestTelemetry } from "./telemetry.ts";
import { TokenCache } from "./token_cache.ts";
import { namespaceYaml, podYaml, serviceAccountYaml, serviceYaml, waypointYaml, yamlFile } from "../../test/support/mod.ts";

export const TD = "cluster.local";
export const VIEWER = `spiffe://${TD}/ns/shop/sa/viewer`;
export const STRANGER = `spiffe://${TD}/ns/other/sa/stranger`;
export const API = `spiffe://${TD}/ns/shop/sa/api`;
export const WAYPOINT = `spiffe://${TD}/ns/shop/sa/wp`;
export const IPS = { viewer: "127.0.0.2", api: "127.0.0.3", api2: "127.0.0.5", mirror: "127.0.0.4", locked: "127.0.0.6", waypoint: "127.0.0.20" };
export const API_VIP = "10.96.0.20";

/** What an app received. */
export interface Seen {
  app: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** The apps behind the ztunnels: an echo server (HTTP/1.1 and WebSocket) and an h2c server. */
export interface Apps {
  http: Record<string, { port: number; stop(): void }>;
  h2: { port: number; close(): void };
  seen: Seen[];
}

/** Echo app: GET/POST anything answers JSON of what it saw; /status/N answers N; /delay/MS waits; /ws echoes frames. */
export function startEchoApp(name: string, host: string, seen: Seen[], port = 0): { port: number; stop(): void } {
  const s = Bun.serve({
    hostname: host,
    port,
    idleTimeout: 30,
    async fetch(req, server) {
      const url = new URL(req.url);
      if (url.pathname === "/ws") {
        if (server.upgrade(req)) return undefined;
        return new Response("not a websocket request", { status: 400 });
      }
      const raw = new Uint8Array(await req.arrayBuffer());
      const body = new TextDecoder().decode(raw);
      const bodySha256 = new Bun.CryptoHasher("sha256").update(raw).digest("hex");
      const big = url.pathname.match(/^\/bytes\/(\d+)$/);
      if (big) {
        const out = new Uint8Array(Number(big[1]));
        for (let i = 0; i < out.length; i++) out[i] = (i * 13) & 0xff;
        return new Response(out, { headers: { "content-type": "application/octet-stream" } });
      }
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      seen.push({ app: name, method: req.method, path: url.pathname + url.search, headers, body });
      const status = url.pathname.match(/^\/status\/(\d{3})$/);
      if (status) return new Response(`status ${status[1]}\n`, { status: Number(status[1]) });
      const delay = url.pathname.match(/^\/delay\/(\d+)$/);
      if (delay) await Bun.sleep(Number(delay[1]));
      const extra: Record<string, string> = { "x-app": name };
      const set = req.headers.get("x-echo-set-header");
      if (set) for (const kv of set.split(",")) {
        const [k, v] = kv.split(":");
        if (k && v !== undefined) extra[k.trim()] = v.trim();
      }
      if (url.pathname === "/stream") {
        const chunks = Number(url.searchParams.get("n") ?? "3");
        const stream = new ReadableStream({
          async pull(c) {
            for (let i = 0; i < chunks; i++) {
              c.enqueue(new TextEncoder().encode(`chunk-${i}\n`));
              await Bun.sleep(5);
            }
            c.close();
          },
        });
        return new Response(stream, { headers: extra });
      }
      return Response.json({ app: name, method: req.method, path: url.pathname + url.search, headers, body, bodySha256, bodyLength: raw.length }, { headers: extra });
    },
    websocket: {
      message(ws, msg) {
        ws.send(`echo:${msg}`);
      },
    },
  });
  return { port: s.port!, stop: () => s.stop(true) };
}

/** An h2c (prior knowledge) gRPC-style app: answers with a body and grpc-status trailers. */
export function startH2App(host: string, seen: Seen[]): Promise<{ port: number; close(): void }> {
  const server = http2.createServer();
  server.on("stream", (s, headers) => {
    const stream = s as http2.ServerHttp2Stream;
    const parts: Buffer[] = [];
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => {
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) if (typeof v === "string") h[k] = v;
      seen.push({ app: "h2", method: String(headers[":method"]), path: String(headers[":path"]), headers: h, body: Buffer.concat(parts).toString() });
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "ok" }));
      stream.end(Buffer.concat([Buffer.from("reply:"), ...parts]));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      resolve({ port: (server.address() as { port: number }).port, close: () => server.close() });
    });
  });
}

/** A pod's ztunnel, reduced to what the waypoint meets: HBONE with the pod's certificate, admitting only `admit`. */
/** A CONNECT a pod's stand-in ztunnel received. */
export interface SeenConnect {
  authority: string;
  headers: Record<string, string>;
}

export function startPodZtunnel(host: string, tls: { cert: string; key: string; ca: string }, admit: string, connects?: SeenConnect[]): HboneServer {
  return HboneServer.listen({
    hostname: host,
    port: 0,
    tls,
    onStream(stream) {
      connects?.push({ authority: stream.authority, headers: { ...stream.headers } });
      if (stream.peerIdentity !== admit) return stream.respond(401);
      const m = stream.authority.match(/^([\d.]+):(\d+)$/);
      if (!m || m[1] !== host) return stream.respond(400);
      const sock: Socket = createConnection({ host: m[1], port: Number(m[2]), allowHalfOpen: true });
      sock.on("error", () => {
        if (!stream.closed) stream.status === 0 ? stream.respond(503) : stream.reset();
      });
      sock.on("connect", () => {
        stream.respond(200);
        stream.on("data", (d) => {
          if (!sock.write(d)) stream.pause();
        });
        sock.on("drain", () => stream.resume());
        stream.on("end", () => sock.end());
        stream.on("close", (e) => {
          if (e) sock.destroy();
        });
        sock.on("data", (d: Buffer) => {
          if (!stream.write(d)) sock.pause();
        });
        stream.on("drain", () => sock.resume());
        sock.on("end", () => stream.end());
        sock.on("close", () => {
          if (!stream.closed) stream.end();
        });
      });
    },
  });
}

/** The model from mesh YAML (must parse without errors). */
export function modelOf(yaml: string): MeshModel {
  const r = parseConfig([{ path: "test.yaml", text: yaml }]);
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(`test config invalid: ${errors.map((d) => d.message).join("; ")}`);
  return r.model;
}

/** The base mesh: viewer and two api pods, Service api (VIP 10.96.0.20:8000 -> app port) bound to waypoint shop/wp. */
export function baseYaml(ports: { api: number; api2: number; mirror: number; h2: number }, extra = ""): string {
  const pod = (name: string, sa: string, ip: string, app: string, labels: Record<string, string> = {}) =>
    podYaml({ name, serviceAccount: sa, ip, labels: { app, ...labels } });
  const http = (name: string, clusterIP: string, selector: Record<string, string>, targetPort: number) =>
    serviceYaml({ name, clusterIP, selector, ports: [{ name: "http", port: 8000, targetPort }] });
  return yamlFile(
    namespaceYaml("shop"),
    ...["viewer", "api", "wp", "mirror"].map((sa) => serviceAccountYaml(sa)),
    pod("viewer", "viewer", IPS.viewer, "viewer"),
    pod("api-1", "api", IPS.api, "api", { version: "v1" }),
    // api-2 is also bound to the waypoint directly (pod-level use-waypoint): its address is a destination.
    pod("api-2", "api", IPS.api2, "api", { version: "v2", "istio.io/use-waypoint": "wp" }),
    pod("mirror", "mirror", IPS.mirror, "mirror"),
    pod("locked", "api", IPS.locked, "locked"),
    serviceYaml({
      name: "api",
      clusterIP: API_VIP,
      labels: { "istio.io/use-waypoint": "wp" },
      selector: { app: "api" },
      ports: [{ name: "http", port: 8000, targetPort: ports.api }, { name: "grpc", port: 9000, targetPort: ports.h2 }],
    }),
    http("api-v2", "10.96.0.22", { version: "v2" }, ports.api2),
    http("mirror", "10.96.0.30", { app: "mirror" }, ports.mirror),
    waypointYaml({ name: "wp", addresses: [IPS.waypoint], for: "all" }),
    extra,
  );
}

/** An HTTPRoute on Service `parent` port `port` (both parents live in shop) with `rules` (YAML list items, indented two spaces). */
export function httpRoute(name: string, rules: string, parent = "api", port = 8000): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${name}
  namespace: shop
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: ${parent}
    port: ${port}
  rules:
${rules}`;
}

const JWT_DATA = join(import.meta.dir, "testdata", "jwt");
/** A token of the issuer testing@secure.istio.io (Istio's demo.jwt). */
export const DEMO_JWT = readFileSync(join(JWT_DATA, "demo.jwt"), "utf8").trim();
/** That issuer's keys, as one line of JSON (it goes into YAML in single quotes). */
export const DEMO_JWKS = JSON.stringify(JSON.parse(readFileSync(join(JWT_DATA, "demo-jwks.json"), "utf8")));

/** A RequestAuthentication on app: api with `jwtRules` (YAML list items, indented two spaces). */
export function jwtOnApi(name: string, jwtRules: string): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: ${name}
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  jwtRules:
${jwtRules}`;
}

/** A RequestAuthentication on app: api that accepts DEMO_JWT; `ruleExtra`: more fields of its rule, indented four spaces. */
export function demoJwtOnApi(name: string, ruleExtra = ""): string {
  return jwtOnApi(name, `  - issuer: testing@secure.istio.io\n    jwks: '${DEMO_JWKS}'${ruleExtra ? `\n${ruleExtra}` : ""}`);
}

/** An ALLOW policy without rules on app: api: nobody may call it (the waypoint answers 403). */
export const ALLOW_NOBODY = readFileSync(join(import.meta.dir, "testdata", "allow-nobody.yaml"), "utf8");

export interface TestWaypoint {
  proxy: WaypointProxy;
  tokens: TokenCache;
  state: WaypointState;
  registry: Registry;
  server: HboneServer;
  apps: Apps;
  ca: CertificateAuthority;
  logs: Record<string, unknown>[];
  /** The CONNECTs the waypoint sent to the endpoints' ztunnels, oldest first. */
  connects: SeenConnect[];
  /** The access log lines so far (they are written once per event-loop turn: this waits for that). */
  accessLog(): Promise<Record<string, unknown>[]>;
  /** Replaces the configuration (extra YAML appended to the base mesh). */
  configure(extra?: string): void;
  /** An HBONE tunnel to the waypoint as `identity`, to `authority` (default the api VIP:8000). */
  tunnel(opts?: { identity?: string; authority?: string; forwarded?: string; traceparent?: string }): Promise<HboneStream>;
  /** One HTTP/1.1 request through the waypoint with node:http over a tunnel. */
  request(opts: HttpOpts): Promise<HttpResult>;
  close(): Promise<void>;
}

export interface HttpOpts {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  identity?: string;
  authority?: string;
  /** Reuse this agent (keep-alive across requests). */
  agent?: http.Agent;
  /** The traceparent on the tunnel's CONNECT (what a source ztunnel sends). */
  tunnelTraceparent?: string;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

export async function startTestWaypoint(limits: Partial<WaypointLimits> = {}): Promise<TestWaypoint> {
  const dir = mkdtempSync(join(tmpdir(), "mesh-waypoint-"));
  const ca = await CertificateAuthority.open(dir, { trustDomain: TD } as never);
  const certs = new WorkloadCertificates({
    sign: async (csr, identity) => (await ca.signCsr(csr, { identity })) as never,
    trustBundlePem: ca.trustBundlePem,
  });
  const material = async (id: string) => {
    await certs.get(id);
    const m = certs.tlsMaterial(id)!;
    return { cert: m.cert, key: m.key, ca: m.ca! };
  };
  const seen: Seen[] = [];
  const api = startEchoApp("api-1", IPS.api, seen);
  const apps: Apps = {
    http: {
      api,
      // The Service's targetPort is one number: both endpoints listen on it (their own addresses).
      api2: startEchoApp("api-2", IPS.api2, seen, api.port),
      mirror: startEchoApp("mirror", IPS.mirror, seen),
    },
    h2: await startH2App(IPS.api, seen),
    seen,
  };
  const ports = { api: apps.http.api!.port, api2: apps.http.api2!.port, mirror: apps.http.mirror!.port, h2: apps.h2.port };
  const ztunnels = new Map<string, HboneServer>();
  const connects: SeenConnect[] = [];
  for (const [ip, id] of [[IPS.api, API], [IPS.api2, API], [IPS.mirror, `spiffe://${TD}/ns/shop/sa/mirror`]] as const) {
    ztunnels.set(ip, startPodZtunnel(ip, await material(id), WAYPOINT, connects));
  }
  // A workload whose ztunnel admits someone else (as if another waypoint served it): refuses with 401.
  ztunnels.set(IPS.locked, startPodZtunnel(IPS.locked, await material(API), STRANGER, connects));
  const registry = new Registry();
  const state = new WaypointState("shop/wp");
  state.replace(modelOf(baseYaml(ports)), 1);
  const pool = new HbonePool();
  const wpTls = await material(WAYPOINT);
  const logs: Record<string, unknown>[] = [];
  const restoreSink = setSink((line) => {
    const o = JSON.parse(line) as Record<string, unknown>;
    logs.push(o);
    if (logs.length > 5000) logs.shift();
  });
  const tokens = new TokenCache();
  const proxy = new WaypointProxy({
    state,
    keys: new JwksKeys({ timeoutMs: 2000, cooldownMs: 0 }).resolve,
    tokens,
    connector: hboneConnector({ pool, tls: () => wpTls, hbonePort: (ip) => ztunnels.get(ip)?.port ?? 1 }),
    telemetry: new RequestTelemetry(registry),
    limits,
  });
  const server = HboneServer.listen({ hostname: IPS.waypoint, port: 0, tls: wpTls, onStream: proxy.onStream as never });
  const clientPool = new HbonePool();
  let version = 1;

  const tunnel = async (o: { identity?: string; authority?: string; forwarded?: string; traceparent?: string } = {}) => {
    const id = o.identity ?? VIEWER;
    const tls = await material(id);
    return await clientPool.connect({
      host: IPS.waypoint,
      port: server.port,
      authority: o.authority ?? `${API_VIP}:8000`,
      headers: {
        forwarded: o.forwarded ?? `for="${IPS.viewer}";host=api.shop.svc.cluster.local`,
        baggage: "k8s.namespace.name=shop",
        traceparent: o.traceparent,
      },
      tls,
      expectedIdentities: [WAYPOINT],
    });
  };

  const request = async (o: HttpOpts): Promise<HttpResult> => {
    const agent = o.agent ?? new http.Agent({ keepAlive: false });
    (agent as unknown as { createConnection: unknown }).createConnection = (_: unknown, cb: (e: Error | null, s?: Duplex) => void) => {
      tunnel({ identity: o.identity, authority: o.authority, traceparent: o.tunnelTraceparent }).then((s) => cb(null, socketLike(toDuplex(s))), (e) => cb(e));
    };
    return await new Promise<HttpResult>((resolve, reject) => {
      const req = http.request(
        { host: "api.shop.svc.cluster.local", port: 8000, method: o.method ?? "GET", path: o.path, headers: o.headers, agent },
        (res) => {
          const parts: Buffer[] = [];
          res.on("data", (d: Buffer) => parts.push(d));
          res.on("end", () => {
            const body = Buffer.concat(parts).toString();
            resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.setTimeout(10_000, () => req.destroy(new Error("test request timed out")));
      req.end(o.body);
    });
  };

  return {
    proxy,
    tokens,
    state,
    registry,
    server,
    apps,
    ca,
    logs,
    connects,
    async accessLog() {
      await new Promise((r) => setTimeout(r, 5));
      return logs.filter((l) => l.scope === "access");
    },
    configure(extra = "") {
      state.replace(modelOf(baseYaml(ports, extra)), ++version);
    },
    tunnel,
    request,
    async close() {
      proxy.drain();
      await server.close({ timeoutMs: 500 });
      proxy.close();
      await clientPool.close(200);
      await pool.close(200);
      for (const z of ztunnels.values()) await z.close({ timeoutMs: 200 });
      for (const a of Object.values(apps.http)) a.stop();
      apps.h2.close();
      certs.close();
      setSink(restoreSink);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fields node:http's agent expects of a socket. */
export function socketLike(d: Duplex): Duplex {
  Object.assign(d, { ref: () => d, unref: () => d, setKeepAlive: () => d, setNoDelay: () => d, setTimeout: () => d });
  return d;
}

/** Reads one full HTTP/1.1 response text from a tunnel (until `done(text)` or the stream ends). */
export function readUntil(s: HboneStream, done: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const t = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(text)}`)), timeoutMs);
    const onData = (d: Uint8Array) => {
      text += Buffer.from(d).toString("latin1");
      if (done(text)) {
        clearTimeout(t);
        s.off("data", onData);
        resolve(text);
      }
    };
    s.on("data", onData);
    s.on("end", () => {
      clearTimeout(t);
      resolve(text);
    });
  });
}
