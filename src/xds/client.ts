/**
 * The control-plane client of a ztunnel or a waypoint. It joins three parts and applies what they decide:
 * the session with the control plane (./session.ts: bootstrap, stream, keepalive, reconnect, CSR relay),
 * the pure state merge (./proxy_state.ts: snapshots and deltas into a view, or a NACK), and the data dir
 * (./last_known_good.ts), so a restart while the control plane is down still serves. Each accepted
 * version goes to onUpdate, then is ACKed; a version that validate or onUpdate refuses is NACKed and the
 * previous one stays.
 *
 * @example
 * const xds = new XdsClient({
 *   controlPlane: "10.0.0.10:15012", caCertPem, tokenFile: "/var/run/secrets/tokens/mesh-token",
 *   proxy: { kind: "ztunnel", node: "worker-a" },
 *   dataDir: "/var/lib/mesh-ztunnel",
 *   validate: (view) => view.model.workloads.length ? undefined : "no workloads",
 *   onUpdate: (view, version) => state.replace(view),
 * });
 * await xds.start();          // applies last-known-good at once, if any; connects in the background
 * const certs = new WorkloadCertificates({ sign: (csr, id) => xds.sign(csr, id) });
 */
import { ErrorCode, logger, MeshError } from "../core/mod.ts";
import { FLOWS_PATH, type FlowBatch } from "./flows.ts";
import { LastKnownGood } from "./last_known_good.ts";
import { type ClientMessage, type CsrResponse, proxyKey, type XdsView } from "./protocol.ts";
import { decideFrame, decideSnapshot, type ProxyState, type Refusal, refusal, snapshotOf } from "./proxy_state.ts";
import { ControlPlaneSession, type SessionOptions } from "./session.ts";

const log = logger("xds-client");

export interface XdsClientOptions extends SessionOptions {
  /** Where the last-known-good view and the control-plane client certificate are kept. */
  dataDir?: string;
  /** Returns a reason to refuse (NACK) a version; undefined accepts it. */
  validate?: (view: XdsView, version: number) => string | undefined;
  /** Called with each accepted view (and once at start with the last-known-good one). A throw NACKs. */
  onUpdate?: (view: XdsView, version: number) => void | Promise<void>;
}

export interface XdsClientStatus {
  connected: boolean;
  version?: number;
  /** Where the held view came from. */
  source?: "control-plane" | "last-known-good";
  lastNack?: { version: number; reason: string };
  lastError?: string;
  clientCertNotAfter?: string;
}

export class XdsClient {
  readonly #o: XdsClientOptions;
  readonly #key: string;
  readonly #session: ControlPlaneSession;
  readonly #store: LastKnownGood;
  #held?: ProxyState;
  #source?: "control-plane" | "last-known-good";
  #started = false;
  #lastNack?: { version: number; reason: string };
  #firstView: Promise<void>;
  #resolveFirstView!: () => void;

  /** @throws MeshError (MESH_USAGE) when neither token nor tokenFile is given. */
  constructor(opts: XdsClientOptions) {
    this.#o = opts;
    this.#key = proxyKey(opts.proxy);
    // Only what came from the control plane is written back: a last-known-good view is already on disk.
    this.#store = new LastKnownGood(opts.dataDir, this.#key, () => this.#source === "control-plane" && this.#held ? snapshotOf(this.#held) : undefined);
    this.#session = new ControlPlaneSession(opts, this.#store, {
      held: () => this.#held,
      onFrame: (frame, send) => this.#onFrame(frame, send),
    });
    this.#firstView = new Promise((r) => (this.#resolveFirstView = r));
  }

  /**
   * Loads the last-known-good view from the data dir (calling onUpdate with it), then connects in the
   * background. Resolves without waiting for the control plane.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#session.loadCredentials();
    await this.#loadLastKnownGood();
    // stop() while the last-known-good view was being applied: stay stopped.
    if (this.#started) this.#session.start();
  }

  /** Resolves once a view is held (last-known-good or from the control plane), or rejects after timeoutMs. */
  async ready(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#firstView,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const why = this.#session.lastError;
            reject(new MeshError(ErrorCode.Unreachable, `No configuration from ${this.#o.controlPlane} within ${timeoutMs} ms${why ? `: ${why}` : ""}`));
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.#store.flush();
    this.#started = false;
    await this.#session.stop();
  }

  /** The last applied view and its version. */
  current(): { version: number; view: XdsView } | undefined {
    return this.#held && { version: this.#held.version, view: this.#held.view };
  }

  status(): XdsClientStatus {
    return {
      connected: this.#session.connected,
      version: this.#held?.version,
      source: this.#source,
      lastNack: this.#lastNack,
      lastError: this.#session.lastError,
      clientCertNotAfter: this.#session.clientCertNotAfter,
    };
  }

  get connected(): boolean {
    return this.#session.connected;
  }

  /**
   * Sends a workload CSR to the control plane's CA. Usable as WorkloadCertificates' `sign`.
   * @throws MeshError: MESH_NODE_NOT_AUTHORIZED when node authorization refuses the identity,
   * MESH_UNREACHABLE when the control plane cannot be reached, MESH_CERT_INVALID for a bad CSR.
   */
  sign(csrPem: string, identity: string, ttlSeconds?: number): Promise<CsrResponse> {
    return this.#session.sign(csrPem, identity, ttlSeconds);
  }

  /** Sends flow records on the open session (none is opened for them). Resolves whether they were taken. */
  reportFlows(batch: FlowBatch): Promise<boolean> {
    return this.#session.report(FLOWS_PATH, batch);
  }

  async #onFrame(frame: string, send: (m: ClientMessage) => void): Promise<void> {
    const d = decideFrame(this.#held, frame, this.#o.validate);
    if (d.kind === "error") return this.#session.refused(d.code, d.message);
    if (d.kind !== "apply") return this.#answer(d, send);
    const { state } = d;
    try {
      await this.#o.onUpdate?.(state.view, state.version);
    } catch (e) {
      return this.#answer(refusal(state.version, `applying failed: ${(e as Error).message}`), send);
    }
    this.#held = state;
    this.#source = "control-plane";
    this.#lastNack = undefined;
    this.#resolveFirstView();
    send({ type: "ack", version: state.version });
    this.#store.save();
  }

  /** Refuses a frame: NACK (remembered for `mesh status`) or a request for a snapshot. */
  #answer(d: Refusal, send: (m: ClientMessage) => void): void {
    if (d.kind === "resync") {
      log.info("asking the control plane for a snapshot", { proxy: this.#key, reason: d.reason });
      send({ type: "resync", reason: d.reason });
      return;
    }
    log.warn("refusing configuration", { proxy: this.#key, version: d.version, reason: d.reason });
    this.#lastNack = { version: d.version, reason: d.reason };
    send({ type: "nack", version: d.version, reason: d.reason });
  }

  async #loadLastKnownGood(): Promise<void> {
    const s = this.#store.load();
    if (!s) return;
    const file = this.#store.file;
    const d = decideSnapshot(s, this.#o.validate);
    if (d.kind !== "apply") {
      log.warn("last-known-good configuration refused by validation", { file, reason: d.reason });
      return;
    }
    try {
      await this.#o.onUpdate?.(d.state.view, d.state.version);
    } catch (e) {
      log.warn("applying last-known-good configuration failed", { file, error: String(e) });
      return;
    }
    this.#held = d.state;
    this.#source = "last-known-good";
    this.#resolveFirstView();
    log.info("serving last-known-good configuration", { proxy: this.#key, version: s.version, file });
  }
}
