/**
 * Everything the control role does with a cluster, behind one object: the model source (list+watch), the
 * proxies' TokenReview authentication, the waypoint/status/trust-bundle controller, and the names its
 * serving certificate must carry for proxies to reach it through its Service.
 */
import { hostname } from "node:os";
import { logger } from "../core/mod.ts";
import type { Caller } from "../identity/mod.ts";
import type { Registry } from "../telemetry/mod.ts";
import { KubeClient } from "./client.ts";
import { resolveConnection, type ResolveOptions } from "./connection.ts";
import { ClusterController } from "./controller.ts";
import { isWaypointGateway } from "./edge.ts";
import type { Backoff } from "./reflector.ts";
import { DEPLOYMENTS, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";
import { KubernetesSource, type ModelError, type ModelUpdate } from "./source.ts";
import { TokenReviewer } from "./token_review.ts";
import type { WaypointSettings } from "./waypoints.ts";

const log = logger("kube");

/** The control role's Service name (k8s/control.yaml): proxies dial <name>.<namespace>.svc:15012. */
export const CONTROL_SERVICE = "mesh-control";

export interface KubernetesOptions {
  /** --kubeconfig (else in-cluster, then KUBECONFIG). */
  kubeconfig?: string;
  onUpdate: (u: ModelUpdate) => void;
  onError: (e: ModelError) => void;
  debounceMs?: number;
  metrics?: Registry;
  /** The control role's 15012 port, for the address waypoints are given. */
  port?: number;
  /** Image of the waypoint Deployments; default: the image of the control role's own pod. */
  waypointImage?: string;
  /** Service accounts ztunnels run as ("ns/name"); default ["<control namespace>/ztunnel"]. */
  ztunnelServiceAccounts?: string[];
  /** Tests: environment, in-cluster directory, timings. */
  connection?: Omit<ResolveOptions, "kubeconfig">;
  syncTimeoutMs?: number;
  backoff?: Backoff;
  resyncMs?: number;
  watchTimeoutSeconds?: number;
  missingRetryMs?: number;
}

export class KubernetesPlane {
  readonly client: KubeClient;
  readonly source: KubernetesSource;
  readonly controller: ClusterController;
  readonly reviewer: TokenReviewer;
  readonly namespace: string;
  #o: KubernetesOptions;

  constructor(opts: KubernetesOptions) {
    this.#o = opts;
    const conn = resolveConnection({ kubeconfig: opts.kubeconfig, defaultNamespace: "mesh-system", ...opts.connection });
    this.client = new KubeClient(conn);
    this.namespace = conn.namespace;
    const restarts = opts.metrics?.counter("mesh_kube_watch_restarts_total", "Kubernetes watches restarted, by resource and reason (relist-gone, error, timeout)", ["resource", "reason"]);
    this.source = new KubernetesSource({
      client: this.client,
      namespace: this.namespace,
      onUpdate: opts.onUpdate,
      onError: opts.onError,
      onObjects: () => this.controller.trigger(),
      debounceMs: opts.debounceMs,
      backoff: opts.backoff,
      watchTimeoutSeconds: opts.watchTimeoutSeconds,
      missingRetryMs: opts.missingRetryMs,
      onRestart: (resource, reason) => restarts?.inc({ resource, reason }),
      extra: [{ resource: DEPLOYMENTS, labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` }],
    });
    this.controller = new ClusterController({
      client: this.client,
      source: this.source,
      namespace: this.namespace,
      waypoint: () => this.#waypointSettings(),
      resyncMs: opts.resyncMs,
    });
    this.reviewer = new TokenReviewer({
      client: this.client,
      ztunnelServiceAccounts: opts.ztunnelServiceAccounts ?? [`${this.namespace}/ztunnel`],
      pod: (ns, name) => this.source.get("Pod", ns, name),
      isWaypoint: (ns, name) => {
        const gw = this.source.get("Gateway", ns, name);
        return !!gw && isWaypointGateway(gw);
      },
      gateway: (ns, name) => this.source.get("Gateway", ns, name),
      deployment: (ns, name) => this.source.get("Deployment", ns, name),
    });
    log.info("reading the cluster", { api: conn.server, via: conn.origin, namespace: this.namespace });
  }

  /** DNS names of the control role's Service, for its serving certificate. */
  get serverNames(): string[] {
    const s = `${CONTROL_SERVICE}.${this.namespace}`;
    return [`${s}.svc`, `${s}.svc.cluster.local`, s];
  }

  /**
   * Lists everything (waiting up to syncTimeoutMs, default 15 s: the MeshConfig's trust domain decides the CA),
   * publishes the first model, starts the controller.
   */
  async start(): Promise<void> {
    await this.source.start(this.#o.syncTimeoutMs ?? 15_000);
    this.controller.start();
  }

  authenticate(token: string): Promise<Caller> {
    return this.reviewer.authenticate(token);
  }

  setTrustBundle(pem: string): void {
    this.controller.setTrustBundle(pem);
  }

  async close(): Promise<void> {
    await this.controller.stop();
    await this.source.close();
  }

  #waypointSettings(): WaypointSettings | { problem: string } {
    const controlPlane = `${CONTROL_SERVICE}.${this.namespace}.svc:${this.#o.port ?? 15012}`;
    if (this.#o.waypointImage) return { image: this.#o.waypointImage, controlPlane };
    // The image this control role runs from: same binary, other role.
    const self = this.source.get("Pod", this.namespace, hostname());
    const containers = ((self?.spec as { containers?: { name?: string; image?: string }[] } | undefined)?.containers ?? []);
    const image = (containers.find((c) => c.name === "control") ?? containers[0])?.image;
    if (!image) return { problem: `cannot tell which image waypoints run: the control role's own pod ${this.namespace}/${hostname()} is not visible (waypoints are deployed only by a control role running in the cluster)` };
    return { image, controlPlane };
  }
}
