/**
 * The ztunnel role: the node-level L4 proxy of the mesh. It captures the TCP of its node's ambient
 * workloads (iptables rules it installs itself), carries mesh traffic over HBONE with each source
 * workload's certificate, enforces L4 policy and PeerAuthentication for its node's destinations, and
 * reports Istio's TCP metrics and an access log.
 *
 * Start-up order: configuration (control plane, or last-known-good from --data-dir), capture rules,
 * certificates of every local workload, then the listeners. Nothing listens before that, so captured
 * traffic is refused by the kernel (RST) until the ztunnel is ready; it is never passed in plaintext.
 * Stop fails closed: listeners close (connections queued on them move to an overlapping successor's,
 * see handover.ts), open connections drain up to the timeout, and the capture rules stay, so captured
 * traffic is refused until a ztunnel is back. Only --cleanup-on-exit (uninstall) removes them, and only
 * when no other instance of this node's ztunnel is running.
 */
import type { RoleContext, RoleHandle, Readiness } from "../admin/mod.ts";
import { ErrorCode, logger, MeshError, splitAddr } from "../core/mod.ts";
import { HbonePool } from "../hbone/mod.ts";
import { ProxyAgent } from "../proxy/mod.ts";
import type { XdsView } from "../xds/mod.ts";
import { registerAdminRoutes } from "./admin.ts";
import { CaptureRules, DEFAULT_CAPTURE_PORTS, localRunner, removeRules } from "./capture/mod.ts";
import { startDns, type ZtunnelDns } from "./dns_role.ts";
import { ConnectionTracker } from "./connections.ts";
import { Dataplane, poolClient, socketDestination } from "./dataplane.ts";
import type { ProxyInputs } from "./inputs.ts";
import { captureInPlace } from "./fail_closed.ts";
import { enableListenerMigration } from "./handover.ts";
import { InstanceRegistry } from "./instances.ts";
import { RoundRobin } from "./outbound_plan.ts";
import { ZtunnelState } from "./state.ts";
import { dialTcp } from "../stream/mod.ts";
import { ConnectionTelemetry } from "./telemetry.ts";
import { flowOfConnection } from "./flow.ts";

export { removeRules as removeCaptureRules, OWNED_CHAINS } from "./capture/mod.ts";

const log = logger("ztunnel");

/** How often installed capture rules are compared with what they should be. */
const RULE_CHECK_MS = 10_000;

export interface ZtunnelOptions {
  node: string;
  /** "HOST:15012" */
  controlPlane: string;
  caCert: string;
  tokenFile: string;
  redirect: "node" | "host" | "none";
  dataDir?: string;
  /** listen addresses (Istio's ports by default) */
  hboneAddr: string; // 0.0.0.0:15008
  outboundAddr: string; // 0.0.0.0:15001 (node mode) / 127.0.0.1:15001 (host mode)
  inboundPlaintextAddr: string; // 0.0.0.0:15006
  drainMs: number;
  /**
   * Host mode: the group whose sockets are never captured. The ztunnel switches its effective gid to it
   * (so its own connections are exempt) when started as root. Default 1337.
   */
  captureGid?: number;
  /** Where running instances are recorded (default /run/mesh). */
  runDir?: string;
  /** How often the installed capture rules are verified (and repaired). Default 10 s. */
  ruleCheckMs?: number;
  /**
   * Remove the capture rules on a clean stop (uninstall). Default false: a stopped ztunnel leaves them, so
   * its node's captured traffic is refused until a ztunnel is back, never sent in plaintext.
   */
  cleanupOnExit?: boolean;
  /** Pooled HBONE connections without streams for this long are closed (default HBONE.poolIdleTimeoutMs). */
  poolIdleMs?: number;
  /** The DNS proxy's listen address (UDP and TCP); "none" runs none. Default 0.0.0.0:15053 in node mode, none otherwise. */
  dnsAddr?: string;
  /** Upstream resolvers ("ip[:port],..."); default the nameservers of /etc/resolv.conf. */
  dnsUpstream?: string;
}

export async function startZtunnel(opts: ZtunnelOptions, ctx: RoleContext): Promise<RoleHandle> {
  // The agent takes the flags every proxy has (--control-plane, --ca-cert, --token-file, --data-dir).
  const agent = new ProxyAgent({ ...opts, proxy: { kind: "ztunnel", node: opts.node }, metrics: ctx.metrics });
  const certs = agent.certs;
  const captureGid = opts.captureGid ?? 1337;
  if (opts.redirect === "host") {
    if (process.getuid?.() === 0) {
      // Every socket opened from now on carries this group: the owner match exempts them from capture.
      if (process.getegid?.() !== captureGid) process.setegid?.(captureGid);
    } else if (process.getegid?.() !== captureGid) {
      throw new MeshError(
        ErrorCode.Usage,
        `--redirect host needs the ztunnel to run as root or with effective group ${captureGid} (--capture-gid), so its own traffic is not captured`,
      );
    }
  }

  const state = new ZtunnelState(opts.node);
  const telemetry = new ConnectionTelemetry(ctx.metrics);
  const reporter = `ztunnel/${opts.node}`;
  telemetry.onFlow = (v, o) => agent.flows.record(() => flowOfConnection(reporter, v, o));
  const dnsAddr = opts.dnsAddr ?? (opts.redirect === "node" ? "0.0.0.0:15053" : "none");
  const dns: ZtunnelDns = startDns({ addr: dnsAddr, upstream: opts.dnsUpstream, index: () => state.index, registry: ctx.metrics });
  const tracker = new ConnectionTracker();
  const instances = new InstanceRegistry(opts.runDir ?? "/run/mesh", opts.node);
  const capture = opts.redirect === "none" ? undefined : new CaptureRules(localRunner, opts.node, {
    mode: opts.redirect,
    ports: {
      ...DEFAULT_CAPTURE_PORTS,
      outbound: splitAddr(opts.outboundAddr, 15001).port,
      inboundPlaintext: splitAddr(opts.inboundPlaintextAddr, 15006).port,
      hbone: splitAddr(opts.hboneAddr, 15008).port,
      ...(dns.port !== undefined ? { dns: dns.port } : {}),
    },
    exemptGid: captureGid,
  });

  let stopping = false;
  let listening = false;
  let initialized = false;
  let certsPending: string[] = [];

  const pool = new HbonePool({ idleTimeoutMs: opts.poolIdleMs });
  const hbone = poolClient(pool, certs);

  const inputs: ProxyInputs = {
    state,
    hbone,
    dial: (host, port) => dialTcp(host, port),
    originalDestination: socketDestination,
    telemetry,
    tracker,
    rr: new RoundRobin(),
    accepting: () => listening && !stopping,
    resolver: dns.resolver,
  };

  const isReady = () => listening && !stopping;
  const refreshCerts = async () => {
    const wanted = state.localIdentities();
    // Workloads that left this node: stop renewing their certificates.
    for (const id of certs.identities()) if (!wanted.includes(id)) certs.forget(id);
    const results = await Promise.allSettled(wanted.map((id) => certs.get(id)));
    certsPending = wanted.filter((_, i) => results[i]!.status === "rejected");
  };

  const applyView = () => {
    if (!capture) return;
    if (!capture.sync(state.index)) log.error("capture rules not installed", { error: capture.error });
  };

  const onUpdate = (view: XdsView, version: number) => {
    state.replace(view.model, version);
    dns.refreshAddresses();
    log.info("configuration applied", { version, localWorkloads: state.localWorkloads().map((w) => `${w.namespace}/${w.name}`) });
    if (initialized) {
      applyView();
      void refreshCerts();
    }
  };

  let dataplane: Dataplane | undefined;
  let ruleCheck: ReturnType<typeof setInterval> | undefined;
  const listen = async () => {
    await dns.listen();
    dataplane = new Dataplane(inputs, certs, {
      outbound: splitAddr(opts.outboundAddr, 15001),
      inboundPlaintext: splitAddr(opts.inboundPlaintextAddr, 15006),
      hbone: splitAddr(opts.hboneAddr, 15008),
      // A restart may overlap the old process: both serve until the old one has drained.
      reusePort: true,
    });
    listening = true;
  };

  const configured = async () => {
    initialized = true;
    instances.register();
    if (capture) {
      const migration = enableListenerMigration();
      if (!migration.enabled) log.warn("overlapping restarts are not lossless", { error: migration.error });
    }
    applyView();
    await refreshCerts();
    while (!stopping && (certsPending.length || (capture && !capture.ready))) {
      await Bun.sleep(500);
      if (capture && !capture.ready) applyView();
      if (certsPending.length) await refreshCerts();
    }
    if (stopping) return;
    await listen();
    log.info("ready", { node: opts.node, redirect: opts.redirect, workloads: state.localWorkloads().length });
    if (capture) {
      // Rules someone removed or changed (an iptables flush, another tool) are put back.
      ruleCheck = setInterval(() => {
        if (stopping) return;
        const drift = capture.verify();
        if (!drift.length) return;
        log.warn("capture rules changed behind our back: reinstalling them", { drift });
        if (!capture.sync(state.index, true)) log.error("capture rules not reinstalled", { error: capture.error });
      }, opts.ruleCheckMs ?? RULE_CHECK_MS);
      (ruleCheck as { unref?: () => void }).unref?.();
    }
  };
  const initDone = agent.start({ onUpdate, stopping: () => stopping, configured });

  registerAdminRoutes(ctx.admin, {
    identities: () => state.localIdentities(),
    certificate: (id) => certs.current(id),
    configDump: () => ({
      node: opts.node,
      redirect: opts.redirect,
      ready: isReady(),
      version: state.version,
      controlPlane: agent.status(),
      capture: capture && { ready: capture.ready, error: capture.error, rules: capture.installed, drift: capture.verify() },
      connections: { open: tracker.size, hboneClientConnections: pool.connections, hboneServerConnections: dataplane?.hbone.connections ?? 0 },
      localWorkloads: state.localWorkloads().map((w) => ({ uid: w.uid, identity: w.identity, addresses: w.addresses })),
      model: state.index.model,
    }),
  });

  return {
    name: "ztunnel",
    readiness(): Readiness {
      const reasons = agent.readinessReasons(stopping, "draining (capture rules stay: captured traffic is refused until a ztunnel serves it)");
      if (capture && !capture.ready) reasons.push(`capture rules not installed${capture.error ? `: ${capture.error}` : ""}`);
      if (certsPending.length) reasons.push(`certificates pending for ${certsPending.join(", ")}`);
      if (!listening && !reasons.length) reasons.push("starting listeners");
      if (!listening && capture && captureInPlace(localRunner)) {
        reasons.push("this node's pods are captured and nobody serves them yet: their traffic is refused (fail closed)");
      }
      return { ready: isReady(), reasons };
    },
    async stop(stopOpts?: { drainMs?: number }): Promise<void> {
      if (stopping) return;
      stopping = true;
      if (ruleCheck) clearInterval(ruleCheck);
      const drainMs = stopOpts?.drainMs ?? opts.drainMs;
      log.info("draining", { openConnections: tracker.size, drainMs });
      const [drained] = await Promise.all([tracker.drain(drainMs), dataplane?.stop(drainMs), dns.stop()]);
      log.info("drained", { ...drained });
      await initDone;
      await pool.close(1000).catch(() => {});
      await agent.stop();
      instances.unregister();
      if (capture) {
        const others = instances.others();
        if (others.length) {
          log.info("capture rules left in place for the other running instance", { pids: others });
        } else if (opts.cleanupOnExit) {
          const removed = capture.remove();
          log.info("capture rules removed (--cleanup-on-exit)", { removed });
        } else {
          log.info(
            "capture rules left in place: this node's captured traffic is refused until a ztunnel is back (fail closed); `mesh iptables cleanup` removes them",
          );
        }
      }
    },
  };
}

/** `mesh iptables cleanup`: removes every capture rule and chain this mesh installed in this namespace. */
export function cleanupCaptureRules(): string[] {
  return removeRules(localRunner);
}
