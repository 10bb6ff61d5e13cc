/**
 * The agent a proxy starts with: its control-plane client and the workload certificates signed through it.
 * A role (ztunnel, waypoint) builds one, then its own state and listeners, and hands the agent what to do
 * with each configuration and once the first one is there.
 */
import { logger, type Logger } from "../core/mod.ts";
import { WorkloadCertificates } from "../identity/mod.ts";
import { type ProxyId, XdsClient, type XdsClientOptions, type XdsClientStatus, type XdsView } from "../xds/mod.ts";
import type { Registry } from "../telemetry/mod.ts";
import { readBootstrap } from "./bootstrap.ts";
import { FlowRing } from "./flows.ts";

/** What the agent uses of the control-plane client: XdsClient's API (tests give a fake). */
export type ControlPlaneClient = Pick<XdsClient, "start" | "ready" | "stop" | "status" | "sign"> & Partial<Pick<XdsClient, "reportFlows">>;

export interface ProxyAgentOptions {
  /** Who this proxy is; its kind is also the scope of the agent's log lines (the role's own scope). */
  proxy: ProxyId;
  /** "HOST:15012" of the control role. */
  controlPlane: string;
  /** Path of the control plane's root (--ca-cert). */
  caCert: string;
  /** Path of the bootstrap token (--token-file), read again by the client at each bootstrap. */
  tokenFile: string;
  /** Last-known-good configuration and certificates are kept here (certificates under certs/). */
  dataDir?: string;
  /** How long one wait for the first configuration lasts; every sixth one logs a warning. Default 5 s. */
  readyStepMs?: number;
  /** Where the flow ring counts its records (mesh_flow_records_total). */
  metrics?: Registry;
  /** Makes the control-plane client. Default: an XdsClient. */
  connect?: (opts: XdsClientOptions) => ControlPlaneClient;
}

/** What the role does with the configuration. */
export interface AgentStart {
  /**
   * The role's own handling of each accepted configuration, called after the certificates have its trust
   * bundle and rotationFraction. A throw refuses (NACKs) the version.
   */
  onUpdate: (view: XdsView, version: number) => void;
  /** True once the role is stopping: the wait for the first configuration ends without `configured`. */
  stopping: () => boolean;
  /** The role's start-up once the first configuration is applied (certificates it needs, listeners). */
  configured: () => Promise<void>;
}

/**
 * The control-plane side of one proxy.
 * @example
 * const agent = new ProxyAgent({ proxy: { kind: "waypoint", namespace, name }, controlPlane, caCert, tokenFile });
 * const initDone = agent.start({ onUpdate, stopping: () => stopping, configured: listen });
 * await agent.certs.get(identity);     // signed by the control plane through the agent's client
 * // stop: await initDone; await agent.stop();
 */
export class ProxyAgent {
  /** The proxy's workload certificates, signed by the control plane through this agent's client. */
  readonly certs: WorkloadCertificates;
  /** Recent flows on their way to the control role (the data path records into it; never blocks). */
  readonly flows: FlowRing;
  readonly controlPlane: string;
  readonly #client: ControlPlaneClient;
  readonly #log: Logger;
  readonly #kind: string;
  readonly #readyStepMs: number;
  #onUpdate?: (view: XdsView, version: number) => void;
  #configured = false;
  #lastError?: string;

  /** Reads the bootstrap files. @throws MeshError (MESH_CONFIG_NOT_FOUND) when one cannot be read. */
  constructor(opts: ProxyAgentOptions) {
    const { caCertPem, token } = readBootstrap(opts.caCert, opts.tokenFile);
    this.controlPlane = opts.controlPlane;
    this.#kind = opts.proxy.kind;
    const log = this.#log = logger(opts.proxy.kind);
    this.#readyStepMs = opts.readyStepMs ?? 5_000;
    this.certs = new WorkloadCertificates({
      sign: (csr, identity) => this.#client.sign(csr, identity),
      trustBundlePem: caCertPem,
      persistDir: opts.dataDir ? `${opts.dataDir}/certs` : undefined,
      onError: (e, identity) => log.warn("certificate request failed (retrying)", { identity, error: (e as Error).message }),
    });
    this.#client = (opts.connect ?? ((o) => new XdsClient(o)))({
      controlPlane: opts.controlPlane,
      caCertPem,
      token,
      tokenFile: opts.tokenFile,
      proxy: opts.proxy,
      dataDir: opts.dataDir,
      onUpdate: (view, version) => {
        this.certs.setTrustBundle(view.trustBundlePem);
        this.#applyRotation(view.model.meshConfig.rotationFraction);
        this.#onUpdate?.(view, version);
        this.#configured = true;
      },
      onConnectionChange: (connected, error) => {
        if (connected) log.info("connected to the control plane", { controlPlane: opts.controlPlane });
        else log.warn("control plane connection lost", { controlPlane: opts.controlPlane, error: error?.message });
      },
    });
    this.flows = new FlowRing({
      send: (batch) => this.#client.reportFlows?.(batch) ?? Promise.resolve(false),
      connected: () => this.#client.status().connected,
      metrics: opts.metrics,
    });
  }

  /**
   * Starts the client (a last-known-good configuration applies at once), waits for the first configuration
   * (retrying, with a warning every sixth wait), then runs the role's start-up. Never rejects: a failure is
   * logged and shown by readinessReasons().
   */
  start(role: AgentStart): Promise<void> {
    this.#onUpdate = role.onUpdate;
    this.flows.start();
    return this.#init(role).catch((e) => {
      this.#lastError = (e as Error).message;
      this.#log.error(`${this.#kind} start failed`, { error: this.#lastError });
    });
  }

  /**
   * What keeps every proxy from being ready, before the role's own reasons: draining, or no configuration
   * yet (a version the role refused does not count).
   */
  readinessReasons(stopping: boolean, draining = "draining"): string[] {
    const reasons: string[] = [];
    if (stopping) reasons.push(draining);
    if (!this.#configured) reasons.push(`waiting for configuration from ${this.controlPlane}${this.#lastError ? ` (${this.#lastError})` : ""}`);
    return reasons;
  }

  /** Whether a configuration has been applied (by the certificates and by the role). */
  get configured(): boolean {
    return this.#configured;
  }

  /** The control-plane client's state, for config_dump. */
  status(): XdsClientStatus {
    return this.#client.status();
  }

  /** Closes the config stream and stops renewing certificates (held ones stay readable). */
  async stop(): Promise<void> {
    this.flows.stop();
    await this.#client.stop().catch(() => {});
    this.certs.close();
  }

  async #init(role: AgentStart): Promise<void> {
    await this.#client.start();
    for (let attempt = 0; !role.stopping(); attempt++) {
      try {
        await this.#client.ready(this.#readyStepMs);
        break;
      } catch (e) {
        this.#lastError = (e as Error).message;
        if (attempt % 6 === 0) this.#log.warn("waiting for configuration", { error: this.#lastError });
      }
    }
    if (role.stopping()) return;
    await role.configured();
  }

  /**
   * MeshConfig.rotationFraction: the first configuration arrives before any certificate is requested (the
   * start-up waits for it), and a later change moves the renewals already scheduled.
   */
  #applyRotation(fraction: number): void {
    try {
      this.certs.setRotationFraction(fraction);
    } catch (e) {
      this.#log.warn("rotationFraction not applied: the previous one stays", { error: (e as Error).message });
    }
  }
}
