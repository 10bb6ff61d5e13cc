/**
 * One resource's local copy, kept by list-then-watch (what client-go calls a reflector):
 * - list (paged) gives every object and a resourceVersion; the watch starts there, with bookmarks, so a
 *   quiet collection still advances its resourceVersion and a reconnect resumes without a relist;
 * - a watch that ends (the server's timeoutSeconds) resumes from the last resourceVersion seen;
 * - 410 Gone (the resourceVersion was compacted away, as an HTTP status or an ERROR event) relists;
 * - a failure (connection refused, 5xx, idle stream) retries with exponential backoff and jitter, while
 *   the last good copy keeps serving;
 * - a resource the cluster does not serve (404: its CRD is not installed) counts as empty and is retried
 *   now and then, so installing Istio's or the Gateway API's CRDs later is picked up.
 */
import { logger } from "../core/mod.ts";
import { type KubeClient, KubeApiError, type KubeObject, type ResourceType } from "./client.ts";

const log = logger("kube");

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export interface ReflectorOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called after the copy changed (a list or an event). Cheap: consumers debounce. */
  onChange: () => void;
  backoff?: Backoff;
  /** Server-side watch timeout (default 240-360 s, randomized so watches do not end together). */
  watchTimeoutSeconds?: number;
  /** How often a resource that is not served is looked for again (default 30 s). */
  missingRetryMs?: number;
  /** Versions to try when `resource.version` is not served (e.g. v1beta1 for Istio's kinds). */
  olderVersions?: readonly string[];
  /** Counts relists and watch restarts, by resource and reason. */
  onRestart?: (reason: "relist-gone" | "error" | "timeout") => void;
}

export type ReflectorState = "starting" | "synced" | "missing";

export class Reflector {
  readonly resource: ResourceType;
  #client: KubeClient;
  #o: ReflectorOptions;
  #store = new Map<string, KubeObject>();
  #rv = "";
  #state: ReflectorState = "starting";
  #stopped = false;
  #ac = new AbortController();
  #loop?: Promise<void>;
  #served: ResourceType;
  #wake?: () => void;
  lastError?: string;
  /** Lists done (the first, and one per 410 Gone). */
  lists = 0;

  constructor(client: KubeClient, resource: ResourceType, opts: ReflectorOptions) {
    this.#client = client;
    this.resource = resource;
    this.#served = resource;
    this.#o = opts;
  }

  get state(): ReflectorState {
    return this.#state;
  }

  /** Listed at least once (or known to be absent from this cluster). */
  get synced(): boolean {
    return this.#state !== "starting";
  }

  get resourceVersion(): string {
    return this.#rv;
  }

  /** The apiVersion the cluster actually serves this kind at. */
  get servedVersion(): string {
    return this.#served.version;
  }

  items(): KubeObject[] {
    return [...this.#store.values()];
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#store.get(key(namespace, name));
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#ac.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    const b = this.#o.backoff ?? { initialMs: 250, maxMs: 30_000 };
    let delay = b.initialMs;
    let needList = true;
    const fail = async (e: unknown, what: string) => {
      this.lastError = (e as Error).message;
      this.#o.onRestart?.("error");
      log.warn(`${what} failed; retrying (the last good copy keeps serving)`, { resource: this.resource.plural, error: this.lastError, retryMs: Math.round(delay) });
      await this.#sleep(delay * (0.8 + Math.random() * 0.4));
      delay = Math.min(b.maxMs, delay * 2);
    };
    while (!this.#stopped) {
      if (needList) {
        try {
          await this.#list();
          needList = false;
          delay = b.initialMs;
        } catch (e) {
          if (this.#stopped) return;
          if (e instanceof KubeApiError && e.status === 404) {
            this.#markMissing();
            await this.#sleep(this.#o.missingRetryMs ?? 30_000);
            continue;
          }
          await fail(e, "list");
          continue;
        }
      }
      const timeoutSeconds = this.#o.watchTimeoutSeconds ?? Math.round(240 + Math.random() * 120);
      let events = 0;
      const watchStarted = Date.now();
      try {
        for await (
          const ev of this.#client.watch(this.#served, {
            resourceVersion: this.#rv,
            namespace: this.#o.namespace,
            labelSelector: this.#o.labelSelector,
            fieldSelector: this.#o.fieldSelector,
            timeoutSeconds,
            signal: this.#ac.signal,
          })
        ) {
          events++;
          if (ev.type === "ERROR") {
            const st = ev.object as { code?: number; reason?: string; message?: string };
            throw new KubeApiError(st.code ?? 500, st.reason ?? "InternalError", `watch ${this.resource.plural}: ${st.message ?? "error event"}`);
          }
          this.#apply(ev.type, ev.object);
        }
        if (this.#stopped) return;
        // A normal end (timeoutSeconds): resume from the last resourceVersion at once.
        this.#o.onRestart?.("timeout");
        if (events > 0) delay = b.initialMs;
        else if (Date.now() - watchStarted < 1000) {
          // Ended at once with nothing in it (a proxy in the way?): not a reason to spin.
          await this.#sleep(delay);
          delay = Math.min(b.maxMs, delay * 2);
        }
      } catch (e) {
        if (this.#stopped) return;
        if (e instanceof KubeApiError && (e.status === 410 || e.reason === "Expired" || e.reason === "Gone")) {
          log.info("resourceVersion too old (410 Gone): listing again", { resource: this.resource.plural, resourceVersion: this.#rv });
          this.#o.onRestart?.("relist-gone");
          needList = true;
          continue;
        }
        if (e instanceof KubeApiError && e.status === 404) {
          needList = true; // the CRD went away: the list will say so
          continue;
        }
        await fail(e, "watch");
      }
    }
  }

  async #list(): Promise<void> {
    const versions = [this.resource.version, ...(this.#o.olderVersions ?? [])];
    let lastErr: unknown;
    for (const version of versions) {
      const r = { ...this.resource, version };
      try {
        const { items, resourceVersion } = await this.#client.list(r, {
          namespace: this.#o.namespace,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
          signal: this.#ac.signal,
        });
        const next = new Map<string, KubeObject>();
        for (const it of items) next.set(key(it.metadata.namespace, it.metadata.name), slim(it));
        this.#store = next;
        this.#rv = resourceVersion;
        this.#served = r;
        this.lists++;
        const was = this.#state;
        this.#state = "synced";
        this.lastError = undefined;
        if (was !== "synced") log.info("listed", { resource: this.resource.plural, version, items: items.length, resourceVersion });
        this.#o.onChange();
        return;
      } catch (e) {
        lastErr = e;
        if (!(e instanceof KubeApiError && e.status === 404)) throw e;
      }
    }
    throw lastErr;
  }

  #markMissing(): void {
    if (this.#state !== "missing") {
      log.warn("resource not served by this cluster (CRD not installed?): treated as empty until it appears", { resource: `${this.resource.plural}.${this.resource.group || "core"}` });
    }
    const had = this.#store.size > 0 || this.#state !== "missing";
    this.#store = new Map();
    this.#state = "missing";
    if (had) this.#o.onChange();
  }

  #apply(type: string, obj: KubeObject): void {
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    if (type === "BOOKMARK") return;
    if (!obj.apiVersion || !obj.kind) Object.assign(obj, { apiVersion: this.#served.group ? `${this.#served.group}/${this.#served.version}` : this.#served.version, kind: this.resource.kind });
    const k = key(obj.metadata.namespace, obj.metadata.name);
    if (type === "DELETED") this.#store.delete(k);
    else this.#store.set(k, slim(obj));
    this.#o.onChange();
  }
}

/** managedFields are server-side-apply bookkeeping, often the largest part of an object: not kept. */
function slim(o: KubeObject): KubeObject {
  if (o.metadata?.managedFields !== undefined) delete o.metadata.managedFields;
  return o;
}

function key(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}
