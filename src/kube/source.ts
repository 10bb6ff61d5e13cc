/**
 * The control role's configuration read from the cluster: one reflector per kind the model is built from,
 * changes debounced, the objects converted at the edge (./edge.ts) and normalized by src/config exactly as
 * a mesh.yaml is, then handed over as the file source hands over its model (same ConfigUpdate/ConfigError
 * shapes), so every rule of `mesh check` and every engine sees the same model.
 *
 * Nothing is published until every kind has been listed once: a partial view would drop policies (an open
 * door) or workloads (refused certificates). After that, a kind whose watch is failing keeps its last copy.
 *
 * The waypoint's own pods (its Deployment's, ./waypoint_pod.ts) are not workloads of the mesh: they are
 * left out of the workloads, and their addresses become the waypoint's podAddresses, where destination
 * ztunnels accept the waypoint's traffic from (its Gateway address is a ClusterIP). Any other pod running
 * as a waypoint's service account stays an ordinary workload (and gets no certificate).
 *
 * A WorkloadEntry whose address is a Pod's is left out, with a diagnostic (duplicate-address): whoever may
 * write WorkloadEntries must not be able to take a pod's address (the pod's ztunnel would turn the pod
 * away, and a `forwarded for=` naming it could be believed for the entry's identity).
 *
 * Errors: the API server has already accepted each object, so, unlike a file, one object with an error does
 * not hold the whole mesh back. The model is served with its diagnostics, except when a security policy
 * (AuthorizationPolicy, RequestAuthentication, PeerAuthentication) or the MeshConfig cannot be read as
 * written: then the last good model keeps serving (dropping or half-reading a policy could open a door),
 * and the diagnostics say which object to fix.
 */
import { type Diagnostic, formatDiagnostic, modelFromObjects } from "../config/mod.ts";
import { logger } from "../core/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import type { KubeClient, KubeObject, ResourceType } from "./client.ts";
import { isWaypointGateway, MESH_CONFIGMAP, modelObjects } from "./edge.ts";
import { type Backoff, Reflector } from "./reflector.ts";
import { CONFIG_MAPS, LABEL_GATEWAY_NAME, MODEL_RESOURCES, OLDER_VERSIONS } from "./resources.ts";
import { waypointPodProblem } from "./waypoint_pod.ts";

const log = logger("kube");

/** Same shape as the file source's ConfigUpdate (src/control/config_source.ts). */
export interface ModelUpdate {
  model: MeshModel;
  changeStartedAt: number;
  warnings: Diagnostic[];
}

/** Same shape as the file source's ConfigError. */
export interface ModelError {
  at: Date;
  diagnostics: Diagnostic[];
}

export interface KubernetesSourceOptions {
  client: KubeClient;
  /** Where the `mesh` ConfigMap (MeshConfig) lives: the control role's namespace. */
  namespace: string;
  onUpdate: (u: ModelUpdate) => void;
  onError: (e: ModelError) => void;
  /** Called after every change of any kind, after the model (the waypoint reconciler listens). */
  onObjects?: () => void;
  debounceMs?: number;
  backoff?: Backoff;
  watchTimeoutSeconds?: number;
  missingRetryMs?: number;
  /** Counts watch restarts by resource and reason. */
  onRestart?: (resource: string, reason: string) => void;
  /** Extra reflectors (e.g. the waypoint Deployments) that share the debounce, not the model. */
  extra?: { resource: ResourceType; labelSelector?: string }[];
}

const SECURITY_KINDS = new Set(["AuthorizationPolicy", "RequestAuthentication", "PeerAuthentication", "MeshConfig"]);
/** Rules that mean "this object could not be read as written" (as opposed to lint findings). */
const UNREADABLE = new Set(["invalid-object", "missing-field", "invalid-value", "api-version", "jwt-no-jwks", "invalid-jwks", "selector-and-targetrefs"]);

export class KubernetesSource {
  readonly path: string;
  #o: KubernetesSourceOptions;
  #reflectors = new Map<string, Reflector>();
  #meshConfig: Reflector;
  #timer?: ReturnType<typeof setTimeout>;
  #firstEventAt?: number;
  #lastJson?: string;
  #closed = false;
  lastGood?: MeshModel;
  lastError?: ModelError;
  warnings: Diagnostic[] = [];

  constructor(opts: KubernetesSourceOptions) {
    this.#o = opts;
    this.path = `kubernetes (${opts.client.connection.origin}, ${opts.client.connection.server})`;
    const common = {
      onChange: () => this.#schedule(),
      backoff: opts.backoff,
      watchTimeoutSeconds: opts.watchTimeoutSeconds,
      missingRetryMs: opts.missingRetryMs,
    };
    for (const r of MODEL_RESOURCES) {
      this.#reflectors.set(r.kind, new Reflector(opts.client, r, { ...common, olderVersions: OLDER_VERSIONS[r.group], onRestart: (why) => opts.onRestart?.(r.plural, why) }));
    }
    for (const e of opts.extra ?? []) {
      this.#reflectors.set(e.resource.kind, new Reflector(opts.client, e.resource, { ...common, labelSelector: e.labelSelector, onRestart: (why) => opts.onRestart?.(e.resource.plural, why) }));
    }
    this.#meshConfig = new Reflector(opts.client, CONFIG_MAPS, {
      ...common,
      namespace: opts.namespace,
      fieldSelector: `metadata.name=${MESH_CONFIGMAP}`,
      onRestart: (why) => opts.onRestart?.("configmaps", why),
    });
  }

  /** Objects of a kind as last seen (for the waypoint reconciler and TokenReview's pod lookups). */
  items(kind: string): KubeObject[] {
    return this.#reflectors.get(kind)?.items() ?? [];
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#reflectors.get(kind)?.get(namespace, name);
  }

  get synced(): boolean {
    return [...this.#reflectors.values(), this.#meshConfig].every((r) => r.synced);
  }

  /** Per resource: state, resourceVersion, lists, last error (for status and tests). */
  health(): { resource: string; state: string; resourceVersion: string; lists: number; lastError?: string }[] {
    return [...this.#reflectors.values(), this.#meshConfig].map((r) => ({
      resource: r.resource.plural,
      state: r.state,
      resourceVersion: r.resourceVersion,
      lists: r.lists,
      ...(r.lastError ? { lastError: r.lastError } : {}),
    }));
  }

  /** Starts every reflector; resolves after the first complete model (or after `timeoutMs`, serving nothing yet). */
  async start(timeoutMs = 30_000): Promise<void> {
    this.#firstEventAt = Date.now();
    for (const r of this.#reflectors.values()) r.start();
    this.#meshConfig.start();
    const end = Date.now() + timeoutMs;
    while (!this.synced && Date.now() < end && !this.#closed) await Bun.sleep(20);
    if (!this.synced) {
      const waiting = this.health().filter((h) => h.state === "starting").map((h) => `${h.resource}${h.lastError ? ` (${h.lastError})` : ""}`);
      log.error("the cluster is not readable yet: serving nothing until every kind is listed", { waiting });
      return;
    }
    await this.refresh();
  }

  /** Builds the model now (the debounce is skipped). */
  refresh(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#build();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await Promise.all([...this.#reflectors.values(), this.#meshConfig].map((r) => r.stop()));
  }

  /** The waypoints' own pods ("ns/name") and, per Gateway ("ns/name"), their addresses. */
  #waypointPods(byKind: Map<string, KubeObject[]>): { pods: Set<string>; addresses: Map<string, Set<string>> } {
    const pods = new Set<string>();
    const addresses = new Map<string, Set<string>>();
    const gateways = new Map((byKind.get("Gateway") ?? []).filter(isWaypointGateway).map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
    if (!gateways.size) return { pods, addresses };
    for (const p of byKind.get("Pod") ?? []) {
      const gwName = p.metadata.labels?.[LABEL_GATEWAY_NAME];
      if (!gwName) continue;
      const key = `${p.metadata.namespace}/${gwName}`;
      const gw = gateways.get(key);
      if (!gw || waypointPodProblem(p, gw, this.get("Deployment", p.metadata.namespace, gwName))) continue;
      pods.add(`${p.metadata.namespace}/${p.metadata.name}`);
      const status = (p.status ?? {}) as EdgeObject["status"] & { phase?: string };
      if (status.phase === "Succeeded" || status.phase === "Failed") continue;
      const set = addresses.get(key) ?? new Set<string>();
      for (const ip of [status.podIP, ...(status.podIPs ?? []).map((x) => x.ip)]) if (ip) set.add(ip);
      addresses.set(key, set);
    }
    return { pods, addresses };
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#firstEventAt ??= Date.now();
    if (this.#timer) return; // a burst (a relist, a rollout) becomes one build
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#build();
    }, this.#o.debounceMs ?? 100);
  }

  #build(): void {
    if (this.#closed || !this.synced) return;
    const started = this.#firstEventAt ?? Date.now();
    this.#firstEventAt = undefined;
    const byKind = new Map<string, KubeObject[]>();
    for (const r of MODEL_RESOURCES) byKind.set(r.kind, this.#reflectors.get(r.kind)!.items());
    const t0 = performance.now();
    const edge = modelObjects({ byKind, meshConfigMap: this.#meshConfig.get(this.#o.namespace, MESH_CONFIGMAP) });
    const kept = withoutPodAddressSquatters(edge.objects);
    const wpPods = this.#waypointPods(byKind);
    const objects = wpPods.pods.size ? kept.objects.filter((o) => !wpPods.pods.has(podKey(o as EdgeObject))) : kept.objects;
    const built = modelFromObjects(objects);
    const model = built.model;
    for (const w of model.waypoints) {
      const addrs = wpPods.addresses.get(`${w.namespace}/${w.name}`);
      if (addrs) w.podAddresses = [...addrs].sort();
    }
    const diagnostics = [...kept.diagnostics, ...built.diagnostics];
    const edgeErrors: Diagnostic[] = edge.problems.map((message) => ({
      file: `kubernetes:ConfigMap/${this.#o.namespace}/${MESH_CONFIGMAP}`,
      line: 0,
      col: 0,
      severity: "error",
      message,
      rule: "invalid-value",
    }));
    const blocking = [
      ...edgeErrors,
      ...diagnostics.filter((d) => d.severity === "error" && UNREADABLE.has(d.rule) && SECURITY_KINDS.has(kindOf(d.file))),
    ];
    try {
      this.#o.onObjects?.();
    } catch (e) {
      log.error("object listener failed", { error: String(e) });
    }
    if (blocking.length) {
      const sorted = [...blocking, ...diagnostics.filter((d) => !blocking.includes(d))];
      const json = JSON.stringify(sorted);
      if (json !== JSON.stringify(this.lastError?.diagnostics)) {
        log.error("a security policy or the MeshConfig cannot be read as written: keeping the last good model", {
          errors: blocking.length,
          first: blocking.slice(0, 20).map(formatDiagnostic),
          serving: this.lastGood ? "last good model" : "nothing yet",
        });
      }
      this.lastError = { at: new Date(), diagnostics: sorted };
      this.#o.onError(this.lastError);
      return;
    }
    const json = JSON.stringify(model);
    const wasError = this.lastError !== undefined;
    this.lastError = undefined;
    if (json === this.#lastJson && !wasError) return; // heartbeats, status writes, bookmarks: nothing to push
    this.#lastJson = json;
    this.lastGood = model;
    this.warnings = diagnostics;
    const errors = diagnostics.filter((d) => d.severity === "error");
    log.info("configuration loaded from the cluster", {
      workloads: model.workloads.length,
      services: model.services.length,
      policies: model.authorizationPolicies.length,
      waypoints: model.waypoints.length,
      errors: errors.length,
      warnings: diagnostics.length - errors.length,
      buildMs: Math.round(performance.now() - t0),
      ...(errors.length ? { firstErrors: errors.slice(0, 10).map(formatDiagnostic) } : {}),
    });
    this.#o.onUpdate({ model, changeStartedAt: started, warnings: diagnostics });
  }
}

type EdgeObject = {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: { address?: string };
  status?: { podIP?: string; podIPs?: { ip: string }[] };
};

/** The objects without the WorkloadEntries whose address is a Pod's, and a diagnostic for each one left out. */
function withoutPodAddressSquatters(objects: unknown[]): { objects: unknown[]; diagnostics: Diagnostic[] } {
  const pods = new Map<string, string>();
  for (const o of objects as EdgeObject[]) {
    if (o.kind !== "Pod") continue;
    const who = `${o.metadata?.namespace}/${o.metadata?.name}`;
    for (const ip of [o.status?.podIP, ...(o.status?.podIPs ?? []).map((p) => p.ip)]) if (ip && !pods.has(ip)) pods.set(ip, who);
  }
  const diagnostics: Diagnostic[] = [];
  const kept = (objects as EdgeObject[]).filter((o) => {
    const address = o.kind === "WorkloadEntry" ? o.spec?.address : undefined;
    const pod = address !== undefined ? pods.get(address) : undefined;
    if (pod === undefined) return true;
    const we = `${o.metadata?.namespace}/${o.metadata?.name}`;
    diagnostics.push({
      file: `kubernetes:WorkloadEntry/${we}`,
      line: 0,
      col: 0,
      severity: "error",
      rule: "duplicate-address",
      message: `WorkloadEntry ${we} has the address ${address} of Pod ${pod}: it is left out of the mesh (a WorkloadEntry never takes a pod's address); give it its VM's own address`,
    });
    return false;
  });
  // Reported with the model's other errors ("configuration loaded from the cluster", firstErrors).
  return { objects: kept, diagnostics };
}

function podKey(o: EdgeObject): string {
  return o.kind === "Pod" ? `${o.metadata?.namespace}/${o.metadata?.name}` : "";
}

/** "kubernetes:AuthorizationPolicy/shop/x" -> "AuthorizationPolicy" */
function kindOf(file: string): string {
  const m = /^kubernetes:([^/]+)/.exec(file);
  return m?.[1] ?? "";
}
