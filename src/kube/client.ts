/**
 * A small Kubernetes API client over fetch (Bun's `tls: { ca, cert, key }` option): JSON requests, paginated
 * lists, and watch streams (newline-delimited JSON events). Errors become KubeApiError with the HTTP status
 * and the API's `reason` (NotFound, AlreadyExists, Conflict, Expired, Gone...), so callers decide on the
 * reason, never on message text.
 *
 * Written here rather than taken from @kubernetes/client-node: 2.x needs Node >= 22.19 (undici 8), 1.4 pulls
 * in request-era dependencies, and neither is a dependency of this project; the control role uses six verbs
 * (list, watch, get, create, update, merge-patch) on a dozen resources, which this file covers.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import type { ClusterConnection } from "./connection.ts";

/** One API resource: group "" is the core group (/api/v1). */
export interface ResourceType {
  group: string;
  version: string;
  /** URL segment: "pods", "authorizationpolicies" */
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** The parts of an object every kind has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

/** A metav1.Status as the API server returns it on failure (and in ERROR watch events). */
export interface ApiStatus {
  kind?: "Status";
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export class KubeApiError extends MeshError {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(ErrorCode.KubeApi, message);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
}

export function apiVersionOf(r: ResourceType): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The collection URL: /api/v1/pods, /api/v1/namespaces/NS/pods, /apis/GROUP/VERSION/... */
export function collectionPath(r: ResourceType, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  return r.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${base}/${r.plural}`;
}

export function objectPath(r: ResourceType, namespace: string | undefined, name: string, subresource?: string): string {
  return `${collectionPath(r, namespace)}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ""}`;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default application/json; merge patches use application/merge-patch+json. */
  contentType?: string;
  signal?: AbortSignal;
  /** Default: the client's timeout. Watches pass 0 (no timeout). */
  timeoutMs?: number;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size (the API server's continue tokens do the rest). Default 500. */
  limit?: number;
  signal?: AbortSignal;
}

export interface WatchOptions extends Omit<ListOptions, "limit"> {
  resourceVersion: string;
  /** The server ends the watch after this long (a client re-watches from the last resourceVersion). */
  timeoutSeconds?: number;
  /** No byte for this long (not even a bookmark) means a dead connection: default timeoutSeconds + 30 s. */
  idleMs?: number;
}

export interface KubeClientOptions {
  /** For non-watch requests. Default 15 s. */
  timeoutMs?: number;
  userAgent?: string;
}

export class KubeClient {
  readonly connection: ClusterConnection;
  #timeoutMs: number;
  #userAgent: string;

  constructor(connection: ClusterConnection, opts: KubeClientOptions = {}) {
    this.connection = connection;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#userAgent = opts.userAgent ?? "mesh-control";
  }

  async #fetch(method: string, path: string, o: RequestOptions): Promise<Response> {
    const url = new URL(this.connection.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#userAgent };
    const token = this.connection.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (o.body !== undefined) headers["content-type"] = o.contentType ?? "application/json";
    const timeout = o.timeoutMs ?? this.#timeoutMs;
    const signals = [o.signal, timeout > 0 ? AbortSignal.timeout(timeout) : undefined].filter((s): s is AbortSignal => !!s);
    const c = this.connection;
    const tls = c.server.startsWith("https:")
      ? {
        ca: c.caPem,
        cert: c.certPem,
        key: c.keyPem,
        rejectUnauthorized: !c.insecure,
        ...(c.serverName ? { serverName: c.serverName } : {}),
      }
      : undefined;
    try {
      return await fetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
        tls,
      } as RequestInit);
    } catch (e) {
      if (o.signal?.aborted) throw e;
      const err = e as Error & { code?: string };
      throw new KubeApiError(0, err.name === "TimeoutError" ? "Timeout" : "Unreachable", `${method} ${c.server}${path}: ${err.code ? `${err.code}: ` : ""}${err.message}`);
    }
  }

  /** One JSON request. Non-2xx answers throw KubeApiError with the Status's reason. */
  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.#fetch(method, path, o);
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) throw errorFrom(res.status, body, `${method} ${path}`, text);
    return body as T;
  }

  get<T extends KubeObject = KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>("GET", objectPath(r, namespace, name));
  }

  create<T extends KubeObject>(r: ResourceType, obj: T): Promise<T> {
    return this.request<T>("POST", collectionPath(r, obj.metadata.namespace), { body: withType(r, obj) });
  }

  /** PUT: fails with Conflict when metadata.resourceVersion is stale. */
  update<T extends KubeObject>(r: ResourceType, obj: T, subresource?: string): Promise<T> {
    return this.request<T>("PUT", objectPath(r, obj.metadata.namespace, obj.metadata.name, subresource), { body: withType(r, obj) });
  }

  /** JSON merge patch (RFC 7386), e.g. of the status subresource. */
  mergePatch<T extends KubeObject = KubeObject>(r: ResourceType, namespace: string | undefined, name: string, patch: unknown, subresource?: string): Promise<T> {
    return this.request<T>("PATCH", objectPath(r, namespace, name, subresource), { body: patch, contentType: "application/merge-patch+json" });
  }

  /** Every object of a collection, page by page, with the list's resourceVersion (to watch from). */
  async list(r: ResourceType, o: ListOptions = {}): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.request<{ items?: KubeObject[]; metadata?: { resourceVersion?: string; continue?: string } }>(
        "GET",
        collectionPath(r, o.namespace),
        { query: { labelSelector: o.labelSelector, fieldSelector: o.fieldSelector, limit: o.limit ?? 500, continue: cont }, signal: o.signal },
      );
      // List items carry no apiVersion/kind: the list's type says what they are.
      for (const it of page.items ?? []) items.push(withType(r, it));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  /**
   * A watch stream from `resourceVersion`, with bookmarks. Ends when the server closes it (timeoutSeconds)
   * or `signal` aborts; throws KubeApiError when the watch cannot start (410 Gone included) or the
   * connection goes idle. An ERROR event (e.g. 410 Expired inside the stream) is yielded as it came.
   */
  async *watch(r: ResourceType, o: WatchOptions): AsyncGenerator<WatchEvent> {
    const timeoutSeconds = o.timeoutSeconds ?? 300;
    const idleMs = o.idleMs ?? (timeoutSeconds + 30) * 1000;
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    let idleFired = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        ac.abort();
      }, idleMs);
    };
    try {
      arm();
      const path = collectionPath(r, o.namespace);
      const res = await this.#fetch("GET", path, {
        query: {
          watch: 1,
          resourceVersion: o.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: o.labelSelector,
          fieldSelector: o.fieldSelector,
        },
        signal: ac.signal,
        timeoutMs: 0,
      });
      if (!res.ok) {
        const text = await res.text();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch { /* not JSON */ }
        throw errorFrom(res.status, body, `watch ${path}`, text);
      }
      if (!res.body) return;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        buf += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line) as WatchEvent;
          } catch {
            throw new KubeApiError(0, "BadWatchEvent", `watch ${path}: a line that is not JSON: ${line.slice(0, 120)}`);
          }
          yield ev;
        }
      }
    } catch (e) {
      if (idleFired) throw new KubeApiError(0, "Idle", `watch ${r.plural}: no data for ${Math.round(idleMs / 1000)} s; reconnecting`);
      if (o.signal?.aborted) return;
      throw e;
    } finally {
      clearTimeout(idle);
      o.signal?.removeEventListener("abort", onAbort);
      ac.abort();
    }
  }
}

function withType<T extends KubeObject>(r: ResourceType, obj: T): T {
  if (obj.apiVersion && obj.kind) return obj;
  return { apiVersion: apiVersionOf(r), kind: r.kind, ...obj };
}

function errorFrom(status: number, body: unknown, what: string, text: string): KubeApiError {
  const s = (body ?? {}) as ApiStatus;
  const reason = s.reason || defaultReason(status);
  return new KubeApiError(status, reason, `${what}: ${status} ${reason}${s.message ? `: ${s.message}` : text ? `: ${text.slice(0, 200)}` : ""}`);
}

function defaultReason(status: number): string {
  switch (status) {
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    default:
      return status >= 500 ? "InternalError" : "Unknown";
  }
}
