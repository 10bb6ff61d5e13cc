/**
 * The ztunnel's three listeners and its HBONE client, assembled from a ProxyInputs bundle: outbound
 * capture (15001), inbound plaintext capture (15006) and the HBONE server (15008). Kept apart from the
 * role's lifecycle (configuration, rules, readiness) so tests can run two ztunnels in one process.
 */
import { logger } from "../core/mod.ts";
import { HbonePool, HboneServer } from "../hbone/mod.ts";
import { getOriginalDestination } from "../platform/mod.ts";
import { handleInboundTunnel, type InboundConnectionContext, type InboundTunnel } from "./inbound.ts";
import { handleInboundPlaintext } from "./inbound_plaintext.ts";
import type { HboneClient, ProxyInputs } from "./inputs.ts";
import { handleOutbound } from "./outbound.ts";
import type { ZtunnelState } from "./state.ts";
import { listenTcp, plainAddress, type SocketStream, type TcpListener } from "../stream/mod.ts";

const log = logger("ztunnel");

/** The certificates a ztunnel holds for its workloads (src/identity WorkloadCertificates). */
export interface CertSource {
  get(identity: string): Promise<unknown>;
  tlsMaterial(identity: string): { cert: string; key: string; ca: string | undefined } | undefined;
}

export interface ListenAddress {
  hostname: string;
  port: number;
}

export interface DataplaneOptions {
  outbound: ListenAddress;
  inboundPlaintext: ListenAddress;
  hbone: ListenAddress;
  /** Share the ports with another instance (a restart that overlaps the old process). */
  reusePort?: boolean;
}

/**
 * The original destination of a captured connection, or undefined when it was not redirected to us
 * (conntrack answers for any tracked connection; one that was not rewritten names our own socket).
 */
export function capturedDestination(fd: number, local: { address: string; port: number }): { address: string; port: number } | undefined {
  try {
    const o = getOriginalDestination(fd);
    if (o.address === local.address && o.port === local.port) return undefined;
    return { address: o.address, port: o.port };
  } catch {
    return undefined;
  }
}

/** The original destination of an accepted SocketStream (ProxyInputs.originalDestination). */
export function socketDestination(s: SocketStream): { address: string; port: number } | undefined {
  return capturedDestination((s.socket as unknown as { fd: number }).fd, { address: s.localAddress, port: s.socket.localPort });
}

/** HBONE client over a connection pool, presenting the source workload's certificate. */
export function poolClient(pool: HbonePool, certs: CertSource): HboneClient {
  return {
    async connect(req) {
      await certs.get(req.sourceIdentity);
      const m = certs.tlsMaterial(req.sourceIdentity);
      if (!m?.ca) throw new Error(`no certificate or trust bundle for ${req.sourceIdentity}`);
      return await pool.connect({
        host: req.address,
        port: req.port,
        authority: req.authority,
        headers: req.headers,
        tls: { cert: m.cert, key: m.key, ca: m.ca },
        expectedIdentities: req.expectedIdentities,
      });
    },
  };
}

/**
 * The HBONE server's certificate choice for one connection, before the handshake: the certificate of
 * the local workload the client dialed (its original destination, or the listener's own address when
 * it was not redirected, as on a VM). Undefined closes the connection: not a local workload, or no
 * certificate yet (its request is started so a retry succeeds).
 */
export function inboundCertificate(
  state: ZtunnelState,
  certs: CertSource,
  info: { fd: number; localAddress: string; localPort: number },
  destination: (fd: number, local: { address: string; port: number }) => { address: string } | undefined = capturedDestination,
): { cert: string; key: string; ca: string; context: InboundConnectionContext } | undefined {
  const local = plainAddress(info.localAddress);
  const ip = destination(info.fd, { address: local, port: info.localPort })?.address ?? local;
  const w = state.localWorkloadAt(ip);
  if (!w) {
    log.debug("HBONE connection for an address that is not a local workload: closed", { address: ip });
    return undefined;
  }
  const m = certs.tlsMaterial(w.identity);
  if (!m?.ca) {
    void certs.get(w.identity).catch(() => {});
    return undefined;
  }
  return { cert: m.cert, key: m.key, ca: m.ca, context: { connectionIp: ip } };
}

export class Dataplane {
  readonly outbound: TcpListener;
  readonly inboundPlaintext: TcpListener;
  readonly hbone: HboneServer;
  #stopped = false;

  constructor(inputs: ProxyInputs, certs: CertSource, opts: DataplaneOptions) {
    const at = (a: ListenAddress) => ({ hostname: a.hostname, port: a.port, reusePort: opts.reusePort });
    this.outbound = listenTcp(at(opts.outbound), (s) => handleOutbound(inputs, s));
    try {
      this.inboundPlaintext = listenTcp(at(opts.inboundPlaintext), (s) => handleInboundPlaintext(inputs, s));
      try {
        this.hbone = HboneServer.listen({
          hostname: opts.hbone.hostname,
          port: opts.hbone.port,
          reusePort: opts.reusePort,
          tls: (info) => (inputs.accepting() ? inboundCertificate(inputs.state, certs, info) : undefined),
          // docs/hbone.md §5: a client identity outside the mesh's trust domain is refused.
          trustDomain: () => inputs.state.index.model.meshConfig.trustDomain,
          onStream: (stream) => handleInboundTunnel(inputs, stream as unknown as InboundTunnel),
        });
      } catch (e) {
        this.inboundPlaintext.stop();
        throw e;
      }
    } catch (e) {
      this.outbound.stop();
      throw e;
    }
  }

  /** Stops accepting; HBONE peers get GOAWAY and their open streams get `drainMs` to finish. */
  stop(drainMs: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#stopped = true;
    this.outbound.stop();
    this.inboundPlaintext.stop();
    return this.hbone.close({ timeoutMs: drainMs });
  }
}
