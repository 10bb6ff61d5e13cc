/**
 * The waypoint role: the L7 proxy of the mesh, for the Services (or workloads) bound to its Gateway.
 * Source ztunnels send such traffic here over HBONE with the client's identity; for each request the
 * waypoint authenticates the JWT (RequestAuthentication), authorizes it with every policy that applies
 * (L4 and L7, against the original client's identity), routes it (HTTPRoute: matches, filters,
 * redirects, rewrites, mirrors, weights, timeouts, retries) and forwards it over HBONE to the chosen
 * endpoint's ztunnel with its own identity, the only one that ztunnel admits for that workload. It
 * reports Istio's request metrics (reporter="waypoint"), an access log line per request, and
 * propagates W3C trace context.
 *
 * Inside a tunnel: HTTP/1.1 (keep-alive, chunked bodies, 100-continue, protocol upgrades such as
 * WebSocket passed through), HTTP/2 with prior knowledge (gRPC), or opaque TCP (L4 policy only).
 *
 * Start-up order: configuration (control plane or last-known-good), the Gateway found in it, the
 * waypoint's certificate, then the HBONE listener on the Gateway's address, port 15008. Stop: the
 * listener sends GOAWAY, keep-alive connections close after their response, in-flight requests finish
 * within the drain timeout.
 */
import { networkInterfaces } from "node:os";
import type { Readiness, RoleContext, RoleHandle } from "../admin/mod.ts";
import { ErrorCode, logger, MeshError, splitAddr } from "../core/mod.ts";
import { HboneServer, HbonePool } from "../hbone/mod.ts";
import { ProxyAgent } from "../proxy/mod.ts";
import type { XdsView } from "../xds/mod.ts";
import { hboneConnector } from "./connect.ts";
import { JwksKeys } from "./jwks.ts";
import { WaypointProxy } from "./proxy.ts";
import { WaypointState } from "./state.ts";
import { RequestTelemetry } from "./telemetry.ts";
import { flowOfRequest, flowOfTcp } from "./flow.ts";
import { TokenCache } from "./token_cache.ts";

export { WaypointProxy, sniff } from "./proxy.ts";
export type { IncomingTunnel, WaypointInputs, WaypointLimits } from "./proxy.ts";
export { WaypointState } from "./state.ts";
export type { Endpoint, TunnelDestination } from "./state.ts";
export { hboneConnector, ConnectFailure } from "./connect.ts";
export type { UpstreamConnector, HboneConnectorOptions } from "./connect.ts";
export { JwksKeys } from "./jwks.ts";
export type { JwksOptions } from "./jwks.ts";
export { RequestTelemetry, nextTraceparent } from "./telemetry.ts";
export { TokenCache } from "./token_cache.ts";

const log = logger("waypoint");

export interface WaypointOptions {
  /** "NAMESPACE/NAME" of the istio-waypoint Gateway */
  gateway: string;
  controlPlane: string;
  caCert: string;
  tokenFile: string;
  dataDir?: string;
  /** HBONE listen address; default: the Gateway's spec.addresses on 15008, else 0.0.0.0:15008 */
  hboneAddr?: string;
  drainMs: number;
  /** Write an access log line per request (default true). */
  accessLog?: boolean;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** Where to listen: --hbone-addr, else the Gateway's first address that is on this host, else every address. */
function listenAddress(opts: WaypointOptions, gatewayAddresses: string[]): { hostname: string; port: number } {
  if (opts.hboneAddr) return splitAddr(opts.hboneAddr, 15008);
  const local = localAddresses();
  const here = gatewayAddresses.find((a) => local.has(a));
  if (gatewayAddresses.length && !here) {
    log.warn("none of the Gateway's addresses is on this host: listening on all addresses", { addresses: gatewayAddresses });
  }
  return { hostname: here ?? "0.0.0.0", port: 15008 };
}

export async function startWaypoint(opts: WaypointOptions, ctx: RoleContext): Promise<RoleHandle> {
  const [namespace, name, ...extra] = opts.gateway.split("/");
  if (!namespace || !name || extra.length) {
    throw new MeshError(ErrorCode.Usage, `--gateway must be NAMESPACE/NAME, not "${opts.gateway}"`);
  }
  // The agent takes the flags every proxy has (--control-plane, --ca-cert, --token-file, --data-dir).
  const agent = new ProxyAgent({ ...opts, proxy: { kind: "waypoint", namespace, name }, metrics: ctx.metrics });
  const certs = agent.certs;

  const state = new WaypointState(opts.gateway);
  const keys = new JwksKeys();
  const telemetry = new RequestTelemetry(ctx.metrics, { accessLog: opts.accessLog ?? true });
  const reporter = `waypoint/${opts.gateway}`;
  telemetry.onFlow = (rc, o, ms) => agent.flows.record(() => flowOfRequest(reporter, opts.gateway, rc, o, ms));
  telemetry.onTcpFlow = (t, o) => agent.flows.record(() => flowOfTcp(reporter, opts.gateway, t, o));
  const identity = () => state.waypoint?.identity;
  const material = () => {
    const id = identity();
    const m = id ? certs.tlsMaterial(id) : undefined;
    return m?.ca ? { cert: m.cert, key: m.key, ca: m.ca } : undefined;
  };
  const pool = new HbonePool();
  const proxy = new WaypointProxy({
    state,
    keys: keys.resolve,
    tokens: new TokenCache(),
    connector: hboneConnector({ pool, tls: material }),
    telemetry,
  });

  let stopping = false;
  let server: HboneServer | undefined;
  let certError: string | undefined;

  const applyView = () => {
    keys.configure(state.index.model.requestAuthentications.flatMap((r) => r.jwtRules));
    const id = identity();
    if (!id) return;
    for (const old of certs.identities()) if (old !== id) certs.forget(old);
    // A changed identity (a new trust domain) gets its certificate before the next handshake needs it.
    if (server && !certs.current(id)) void certs.get(id).catch((e) => log.warn("certificate request failed", { identity: id, error: (e as Error).message }));
  };

  const onUpdate = (view: XdsView, version: number) => {
    state.replace(view.model, version);
    if (!state.waypoint) log.warn("the configuration has no istio-waypoint Gateway of this name", { gateway: opts.gateway, version });
    const served = view.model.services.filter((s) => s.waypoint?.gateway === opts.gateway).map((s) => `${s.namespace}/${s.name}`);
    log.info("configuration applied", { version, services: served });
    applyView();
  };

  const configured = async () => {
    while (!stopping && !state.waypoint) await Bun.sleep(250);
    while (!stopping) {
      try {
        await certs.get(state.waypoint!.identity);
        certError = undefined;
        break;
      } catch (e) {
        certError = (e as Error).message;
        await Bun.sleep(500);
      }
    }
    if (stopping) return;
    const at = listenAddress(opts, state.waypoint!.addresses);
    server = HboneServer.listen({
      hostname: at.hostname,
      port: at.port,
      // A ztunnel in the same process or on the same host may hold 0.0.0.0:15008 (with SO_REUSEPORT): the
      // kernel lets this Gateway-address listener coexist only if it sets it too, and then prefers it for
      // connections to the Gateway's own address.
      reusePort: true,
      tls: () => material(),
      // docs/hbone.md §5: a client identity outside the mesh's trust domain is refused.
      trustDomain: () => state.index.model.meshConfig.trustDomain,
      onStream: proxy.onStream as never,
    });
    log.info("ready", { gateway: opts.gateway, identity: state.waypoint!.identity, hbone: `${at.hostname}:${server.port}` });
  };
  const initDone = agent.start({ onUpdate, stopping: () => stopping, configured });

  ctx.admin.get("/config_dump", (c) =>
    c.json({
      gateway: opts.gateway,
      ready: server !== undefined && !stopping,
      version: state.version,
      identity: state.waypoint?.identity,
      controlPlane: agent.status(),
      hbone: server ? { address: `${server.hostname}:${server.port}`, connections: server.connections } : null,
      tunnels: proxy.openTunnels,
      upstream: { hboneConnections: pool.connections, idleHttp1: proxy.http1Pool.idle, h2Sessions: proxy.h2Sessions.size },
      model: state.index.model,
    }));
  ctx.admin.get("/certs", (c) => {
    const id = identity();
    const cert = id ? certs.current(id) : undefined;
    return c.json(cert ? [{ identity: cert.identity, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter, chain: cert.chainPem }] : []);
  });

  return {
    name: "waypoint",
    readiness(): Readiness {
      const reasons = agent.readinessReasons(stopping);
      // Without a configuration the agent has said why; the rest depends on it.
      if (agent.configured) {
        if (!state.waypoint) reasons.push(`no istio-waypoint Gateway ${opts.gateway} in the configuration`);
        else if (!server) reasons.push(certError ? `certificate pending: ${certError}` : "starting the HBONE listener");
        else if (!material()) reasons.push(`no valid certificate for ${identity()}`);
      }
      return { ready: reasons.length === 0, reasons };
    },
    async stop(stopOpts?: { drainMs?: number }): Promise<void> {
      if (stopping) return;
      stopping = true;
      const drainMs = stopOpts?.drainMs ?? opts.drainMs;
      log.info("draining", { tunnels: proxy.openTunnels, drainMs });
      proxy.drain();
      await server?.close({ timeoutMs: drainMs });
      await initDone;
      proxy.close();
      await pool.close(1000).catch(() => {});
      await agent.stop();
      log.info("stopped", { gateway: opts.gateway });
    },
  };
}
export { Http1Downstream } from "./http1/mod.ts";
