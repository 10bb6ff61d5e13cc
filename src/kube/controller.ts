/**
 * The control role's writes to the cluster, reconciled from what the watches show (never from memory
 * alone, so a restart or someone else's edit converges): the waypoint objects of every istio-waypoint
 * Gateway (./waypoints.ts), the status of Gateways and AuthorizationPolicies (./status.ts), and the trust
 * bundle ConfigMap (mesh-ca-root-cert) that proxies mount as their --ca-cert, in the control role's namespace
 * and in every namespace with a waypoint. One reconcile runs at a time; triggers during a run coalesce into
 * one more run; a periodic resync repairs what no event announced. Write failures are logged and retried
 * at the next run: the mesh keeps serving meanwhile.
 */
import { logger } from "../core/mod.ts";
import type { KubeClient, KubeObject, ResourceType } from "./client.ts";
import { KubeApiError } from "./client.ts";
import { isWaypointGateway } from "./edge.ts";
import { AUTHORIZATION_POLICIES, CONFIG_MAPS, DEPLOYMENTS, GATEWAYS, LABEL_MANAGED_BY, MANAGED_BY, SERVICE_ACCOUNTS, SERVICES } from "./resources.ts";
import type { KubernetesSource } from "./source.ts";
import { type Condition, gatewayStatus, mergeConditions, policyConditions, sameConditions } from "./status.ts";
import { ownedBy, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY, updateFor, type WaypointSettings, waypointObjects } from "./waypoints.ts";

const log = logger("kube");
const POLICY_CONDITIONS = ["WaypointAccepted", "ZtunnelAccepted"];

export interface ClusterControllerOptions {
  client: KubeClient;
  source: KubernetesSource;
  /** The control role's own namespace (gets the trust bundle ConfigMap for the ztunnel DaemonSet). */
  namespace: string;
  /** How waypoints are deployed, or why they cannot be (shown in the Gateway's status). */
  waypoint: () => WaypointSettings | { problem: string };
  /** Default 60 s. */
  resyncMs?: number;
}

export class ClusterController {
  #o: ClusterControllerOptions;
  #running?: Promise<void>;
  #again = false;
  #stopped = false;
  #resync?: ReturnType<typeof setInterval>;
  #bundle?: string;
  /** namespace -> bundle last written there (forgotten at every resync, so drift is repaired). */
  #published = new Map<string, string>();
  #warned = new Set<string>();
  /** Completed reconcile runs (tests wait on it). */
  runs = 0;

  constructor(opts: ClusterControllerOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#resync = setInterval(() => {
      this.#published.clear();
      this.trigger();
    }, this.#o.resyncMs ?? 60_000);
    this.trigger();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#resync);
    await this.#running;
  }

  /** The trust bundle changed (or is known for the first time): publish it. */
  setTrustBundle(pem: string): void {
    if (pem === this.#bundle) return;
    this.#bundle = pem;
    this.#published.clear();
    this.trigger();
  }

  trigger(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#reconcile();
        } catch (e) {
          log.error("reconcile failed; retrying at the next change or resync", { error: String(e) });
        }
        this.runs++;
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#running = undefined));
  }

  /** Resolves when no reconcile is running or queued (tests). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #reconcile(): Promise<void> {
    const src = this.#o.source;
    if (!src.synced) return;
    const gateways = src.items("Gateway").filter((g) => isWaypointGateway(g) && !g.metadata.deletionTimestamp);
    const namespaces = new Set([this.#o.namespace]);
    for (const gw of gateways) {
      namespaces.add(gw.metadata.namespace!);
      await this.#waypoint(gw);
    }
    if (this.#bundle) for (const ns of namespaces) await this.#publishBundle(ns, this.#bundle);
    await this.#policies();
  }

  async #waypoint(gw: KubeObject): Promise<void> {
    const src = this.#o.source;
    const ns = gw.metadata.namespace!;
    const name = gw.metadata.name;
    const settings = this.#o.waypoint();
    let problem: string | undefined;
    if ("problem" in settings) {
      problem = settings.problem;
    } else {
      const want = waypointObjects(gw, settings);
      // A ServiceAccount of that name made by someone else is fine: it is the identity the Gateway asks for.
      if (!src.get("ServiceAccount", ns, name)) await this.#write(() => this.#o.client.create(SERVICE_ACCOUNTS, want.serviceAccount), `ServiceAccount ${ns}/${name}`);
      problem = (await this.#ensure(SERVICES, want.service, src.get("Service", ns, name), gw)) ??
        (await this.#ensure(DEPLOYMENTS, want.deployment, src.get("Deployment", ns, name), gw));
    }
    const st = gatewayStatus({ gateway: gw, service: src.get("Service", ns, name), deployment: src.get("Deployment", ns, name), problem });
    const cur = (gw.status ?? {}) as { addresses?: unknown[]; conditions?: Condition[]; listeners?: { name: string; conditions?: Condition[]; attachedRoutes?: number }[] };
    const now = new Date().toISOString();
    const sameListeners = st.listeners.length === (cur.listeners ?? []).length &&
      st.listeners.every((l) => {
        const c = cur.listeners?.find((x) => x.name === l.name);
        return c && c.attachedRoutes === l.attachedRoutes && sameConditions(c.conditions, l.conditions);
      });
    if (sameConditions(cur.conditions?.filter((c) => c.type === "Accepted" || c.type === "Programmed"), st.conditions) && sameListeners && JSON.stringify(cur.addresses ?? []) === JSON.stringify(st.addresses)) return;
    const patch = {
      status: {
        addresses: st.addresses,
        conditions: mergeConditions(cur.conditions, st.conditions, now),
        listeners: st.listeners.map((l) => ({ ...l, conditions: mergeConditions(cur.listeners?.find((x) => x.name === l.name)?.conditions, l.conditions, now) })),
      },
    };
    await this.#write(() => this.#o.client.mergePatch(GATEWAYS, ns, name, patch, "status"), `Gateway ${ns}/${name} status`);
  }

  /** Creates or updates one owned object; returns a problem when a same-named object belongs to someone else. */
  async #ensure(r: ResourceType, desired: KubeObject, existing: KubeObject | undefined, gw: KubeObject): Promise<string | undefined> {
    const what = `${desired.kind} ${desired.metadata.namespace}/${desired.metadata.name}`;
    if (!existing) {
      const r1 = await this.#write(() => this.#o.client.create(r, desired), what);
      // Not in our watch but present: someone else's object (ours would carry our label and be watched).
      return r1 === "exists" && desired.kind === "Deployment" ? `${what} exists and does not belong to this Gateway: rename it or delete it` : undefined;
    }
    if (!ownedBy(existing, gw)) {
      if ((existing.metadata.labels ?? {})[LABEL_MANAGED_BY] !== MANAGED_BY) {
        return `${what} exists and does not belong to this Gateway: rename it or delete it`;
      }
    }
    const next = updateFor(existing, desired);
    if (next) await this.#write(() => this.#o.client.update(r, next), what);
    return undefined;
  }

  async #policies(): Promise<void> {
    const src = this.#o.source;
    const model = src.lastGood;
    if (!model) return;
    const now = new Date().toISOString();
    for (const obj of src.items("AuthorizationPolicy")) {
      const ns = obj.metadata.namespace!;
      const p = model.authorizationPolicies.find((x) => x.namespace === ns && x.name === obj.metadata.name);
      if (!p) continue;
      const ours = policyConditions(p, model, obj.metadata.generation);
      const existing = ((obj.status ?? {}) as { conditions?: Condition[] }).conditions;
      const existingOurs = existing?.filter((c) => POLICY_CONDITIONS.includes(c.type));
      if (sameConditions(existingOurs, ours)) continue;
      // Drop a condition type that no longer applies (a policy moved from selector to targetRefs).
      const kept = existing?.filter((c) => !POLICY_CONDITIONS.includes(c.type) || ours.some((o) => o.type === c.type));
      const conditions = mergeConditions(kept, ours, now);
      await this.#write(() => this.#o.client.mergePatch(AUTHORIZATION_POLICIES, ns, obj.metadata.name, { status: { conditions } }, "status"), `AuthorizationPolicy ${ns}/${obj.metadata.name} status`);
    }
  }

  async #publishBundle(ns: string, pem: string): Promise<void> {
    if (this.#published.get(ns) === pem) return;
    const c = this.#o.client;
    const desired: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: ROOT_CERT_CONFIGMAP, namespace: ns, labels: { [LABEL_MANAGED_BY]: MANAGED_BY } },
      data: { [ROOT_CERT_KEY]: pem },
    };
    const ok = await this.#write(async () => {
      let cur: KubeObject | undefined;
      try {
        cur = await c.get(CONFIG_MAPS, ns, ROOT_CERT_CONFIGMAP);
      } catch (e) {
        if (!(e instanceof KubeApiError && e.status === 404)) throw e;
      }
      if (!cur) return await c.create(CONFIG_MAPS, desired);
      if ((cur.data as Record<string, string> | undefined)?.[ROOT_CERT_KEY] === pem) return cur;
      return await c.update(CONFIG_MAPS, { ...cur, data: { ...(cur.data as Record<string, string> | undefined), [ROOT_CERT_KEY]: pem } });
    }, `ConfigMap ${ns}/${ROOT_CERT_CONFIGMAP}`);
    if (ok === "ok") this.#published.set(ns, pem);
  }

  async #write(f: () => Promise<unknown>, what: string): Promise<"ok" | "exists" | "conflict" | "failed"> {
    try {
      await f();
      log.info("written", { object: what });
      return "ok";
    } catch (e) {
      // The watch has not caught up yet: its event triggers the next run, which sees the current object.
      if (e instanceof KubeApiError && e.reason === "AlreadyExists") return "exists";
      if (e instanceof KubeApiError && e.reason === "Conflict") return "conflict";
      const forbidden = e instanceof KubeApiError && e.status === 403;
      const key = `${what}:${forbidden}`;
      if (!this.#warned.has(key)) {
        this.#warned.add(key);
        log.error(forbidden ? "write forbidden: the control role's RBAC (k8s/rbac.yaml) does not allow it" : "write failed", { object: what, error: (e as Error).message });
      }
      return "failed";
    }
  }
}
