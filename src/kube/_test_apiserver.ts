/**
 * A Kubernetes API server for tests (private to src/kube and the tests in test/): HTTPS on loopback, with
 * the parts of the protocol the control role relies on, behaving as kube-apiserver does:
 * - one resourceVersion counter for every write (etcd's revision), uid/generation/creationTimestamp;
 * - lists with limit/continue (a consistent snapshot per continue token) whose items carry no apiVersion/kind;
 * - watches from a resourceVersion: ADDED/MODIFIED/DELETED in order, BOOKMARK events when asked
 *   (allowWatchBookmarks), the stream ending after timeoutSeconds, and, for a resourceVersion older than
 *   the last compaction, an ERROR event with a 410 Expired Status (what the real server streams);
 * - create (409 AlreadyExists), update with optimistic concurrency (409 Conflict), JSON merge patch, the
 *   status subresource (its writes change only status; spec writes bump generation), delete with the
 *   garbage collector's background cascade over ownerReferences;
 * - authentication by bearer token (an admin token, or service-account JWTs it signs itself) or by a client
 *   certificate signed by its CA; optional RBAC (rules per user, with namespaces for Roles), 403 otherwise;
 * - TokenReview: signature, expiry, audiences, and the bound pod still existing with the same uid; the
 *   user's extra carries pod-name, pod-uid and node-name as in Kubernetes 1.30+.
 * Errors are metav1.Status objects with reason and code. Not a general API server: no admission, no
 * defaulting beyond metadata, no validation of specs.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { writeFileSync } from "node:fs";
import { exportJWK, importJWK, jwtVerify, SignJWT } from "jose";
import { x509 } from "../identity/_test_x509.ts";
import type { KubeObject, ResourceType } from "./client.ts";
import {
  AUTHORIZATION_POLICIES,
  CONFIG_MAPS,
  DEPLOYMENTS,
  GATEWAYS,
  HTTP_ROUTES,
  NAMESPACES,
  PEER_AUTHENTICATIONS,
  PODS,
  REFERENCE_GRANTS,
  REQUEST_AUTHENTICATIONS,
  SERVICE_ACCOUNTS,
  SERVICES,
  TOKEN_REVIEWS,
  WORKLOAD_ENTRIES,
  SERVICE_ENTRIES,
  DESTINATION_RULES,
} from "./resources.ts";


const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
/** The issuer and default audience of the service-account tokens it signs (kube's defaults). */
export const API_AUDIENCE = "https://kubernetes.default.svc.cluster.local";

/** An RBAC PolicyRule as in a (Cluster)Role. */
export interface RbacRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Rules granted to one user, cluster-wide (ClusterRoleBinding) or in one namespace (RoleBinding). */
export interface RbacGrant {
  rules: RbacRule[];
  namespace?: string;
}

interface Stored {
  resource: ResourceType;
  obj: KubeObject;
}

interface HistoryEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  rkey: string;
  obj: KubeObject;
}

interface Watcher {
  rkey: string;
  namespace?: string;
  match: (o: KubeObject) => boolean;
  res: ServerResponse;
  served: ResourceType;
  bookmarks: boolean;
  sentRv: number;
}

export interface RecordedRequest {
  verb: string;
  method: string;
  path: string;
  query: Record<string, string>;
  user: string;
  /** "group/resource[/subresource]" as RBAC sees it */
  resource: string;
  namespace?: string;
  status: number;
}

export interface ServiceAccountTokenRequest {
  namespace: string;
  serviceAccount: string;
  /** The pod the token is bound to (a projected token). */
  pod?: { name: string; uid?: string };
  audiences?: string[];
  expirationSeconds?: number;
}

export interface FakeApiServerOptions {
  /** How often an open watch that asked for bookmarks gets one (default 1 s). */
  bookmarkIntervalMs?: number;
  /** RBAC per username; users not listed (besides the admin) are forbidden everything. Absent: no RBAC. */
  rbac?: Map<string, RbacGrant[]>;
}

/** Resources the fake serves; versions older than the storage version are served too (Istio's v1beta1). */
const SERVED: readonly (ResourceType & { also?: string[] })[] = [
  NAMESPACES,
  PODS,
  SERVICES,
  SERVICE_ACCOUNTS,
  CONFIG_MAPS,
  DEPLOYMENTS,
  { ...WORKLOAD_ENTRIES, also: ["v1beta1", "v1alpha3"] },
  { ...SERVICE_ENTRIES, also: ["v1beta1", "v1alpha3"] },
  { ...DESTINATION_RULES, also: ["v1beta1", "v1alpha3"] },
  { ...AUTHORIZATION_POLICIES, also: ["v1beta1"] },
  { ...REQUEST_AUTHENTICATIONS, also: ["v1beta1"] },
  { ...PEER_AUTHENTICATIONS, also: ["v1beta1"] },
  { ...GATEWAYS, also: ["v1beta1"] },
  { ...HTTP_ROUTES, also: ["v1beta1"] },
  { ...REFERENCE_GRANTS, also: ["v1"] },
];

function rkeyOf(r: { group: string; plural: string }): string {
  return `${r.group}/${r.plural}`;
}

function clone<T>(x: T): T {
  return structuredClone(x);
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

export class FakeApiServer {
  readonly caPem: string;
  readonly adminToken = `admin-${crypto.randomUUID()}`;
  /** A client certificate (signed by the CA) the server maps to the admin user. */
  readonly clientCert: { cert: string; key: string };
  readonly requests: RecordedRequest[] = [];
  #server!: Server;
  #port = 0;
  #store = new Map<string, Stored>();
  #history: HistoryEvent[] = [];
  #rv = 100;
  #compactedRv = 0;
  #watchers = new Set<Watcher>();
  #snapshots = new Map<string, { items: KubeObject[]; rv: number }>();
  #unserved = new Set<string>();
  #unavailable = false;
  #bookmarkTimer?: ReturnType<typeof setInterval>;
  #signKey!: CryptoKey;
  #verifyKey!: CryptoKey;
  #o: FakeApiServerOptions;
  #serverTls: { cert: string; key: string };

  private constructor(ca: string, serverTls: { cert: string; key: string }, clientCert: { cert: string; key: string }, o: FakeApiServerOptions) {
    this.caPem = ca;
    this.#serverTls = serverTls;
    this.clientCert = clientCert;
    this.#o = o;
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const caKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
    const now = Date.now();
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=fake-kubernetes-ca",
      keys: caKeys,
      signingAlgorithm: ALG,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 86400_000),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const leaf = async (subject: string, sans: { type: "ip" | "dns"; value: string }[]) => {
      const k = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
      const c = await x509.X509CertificateGenerator.create({
        serialNumber: Math.floor(Math.random() * 1e9).toString(16),
        subject,
        issuer: root.subject,
        publicKey: k.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: ALG,
        notBefore: new Date(now - 3600_000),
        notAfter: new Date(now + 86400_000),
        extensions: [
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
        ],
      });
      return { cert: c.toString("pem") + "\n", key: pemKey(await crypto.subtle.exportKey("pkcs8", k.privateKey)) };
    };
    const caPem = root.toString("pem") + "\n";
    const s = new FakeApiServer(
      caPem,
      await leaf("CN=kube-apiserver", [{ type: "ip", value: "127.0.0.1" }, { type: "dns", value: "localhost" }]),
      await leaf("CN=kubernetes-admin, O=system:masters", []),
      opts,
    );
    const sk = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
    s.#signKey = sk.privateKey;
    s.#verifyKey = (await importJWK({ ...(await exportJWK(sk.publicKey)) }, "ES256")) as CryptoKey;
    await s.#listen(0);
    s.#bookmarkTimer = setInterval(() => s.#sendBookmarks(), opts.bookmarkIntervalMs ?? 1000);
    // Namespaces the API server always has.
    for (const ns of ["default", "kube-system"]) s.put({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    return s;
  }

  async #listen(port: number): Promise<void> {
    this.#server = createServer({ ...this.#serverTls, ca: this.caPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      void this.#handle(req, res).catch((e) => {
        if (!res.headersSent) this.#status(res, 500, "InternalError", String(e));
        else res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#port = (this.#server.address() as { port: number }).port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  /** Writes a kubeconfig for this server (admin user: token or client certificate, or a given token). */
  writeKubeconfig(path: string, auth: { kind: "token"; token?: string } | { kind: "cert" } = { kind: "token" }, namespace = "mesh-system"): string {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const user = auth.kind === "cert"
      ? `    client-certificate-data: ${b64(this.clientCert.cert)}\n    client-key-data: ${b64(this.clientCert.key)}`
      : `    token: ${auth.token ?? this.adminToken}`;
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: fake\n  cluster:\n    server: ${this.url}\n    certificate-authority-data: ${b64(this.caPem)}\n` +
        `contexts:\n- name: test\n  context:\n    cluster: fake\n    user: tester\n    namespace: ${namespace}\nusers:\n- name: tester\n  user:\n${user}\n`,
    );
    return path;
  }

  // ---- test controls ----

  /** Creates or replaces an object directly (as another client would), with a new resourceVersion. */
  put(obj: KubeObject): KubeObject {
    const r = this.#resourceOfObject(obj);
    const ns = r.namespaced ? obj.metadata.namespace ?? "default" : undefined;
    const key = this.#key(r, ns, obj.metadata.name);
    const prev = this.#store.get(key)?.obj;
    const o = clone(obj);
    o.apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
    o.kind = r.kind;
    if (ns) o.metadata.namespace = ns;
    o.metadata.uid = prev?.metadata.uid ?? o.metadata.uid ?? crypto.randomUUID();
    o.metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? new Date().toISOString();
    o.metadata.generation = prev ? (prev.metadata.generation ?? 1) + (JSON.stringify(prev.spec) !== JSON.stringify(o.spec) ? 1 : 0) : 1;
    this.#write(r, key, o, prev ? "MODIFIED" : "ADDED");
    return clone(o);
  }

  /** The stored object, or undefined. */
  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const r = SERVED.find((x) => x.kind === kind);
    if (!r) return undefined;
    const s = this.#store.get(this.#key(r, r.namespaced ? namespace : undefined, name));
    return s && clone(s.obj);
  }

  list(kind: string): KubeObject[] {
    return [...this.#store.values()].filter((s) => s.resource.kind === kind).map((s) => clone(s.obj));
  }

  /** Deletes an object as `kubectl delete` would (dependents follow through the garbage collector). */
  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const r = SERVED.find((x) => x.kind === kind)!;
    return this.#delete(r, r.namespaced ? namespace : undefined, name);
  }

  /** Forgets the history up to now: a watch from an older resourceVersion gets 410 Expired. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
    this.#snapshots.clear();
  }

  /** Ends every open watch (an API server restart or a load balancer cutting connections). */
  dropWatches(): void {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
  }

  /** Answers 503 to everything (and ends the watches) while true. */
  setUnavailable(down: boolean): void {
    this.#unavailable = down;
    if (down) this.dropWatches();
  }

  /** Stops serving a group's resources (its CRDs uninstalled): lists answer 404. */
  unserve(group: string): void {
    this.#unserved.add(group);
  }

  serve(group: string): void {
    this.#unserved.delete(group);
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  /** A service-account token as the kubelet would project it (a JWT signed by this server). */
  async serviceAccountToken(req: ServiceAccountTokenRequest): Promise<string> {
    const sa = this.get("ServiceAccount", req.namespace, req.serviceAccount);
    const claims: Record<string, unknown> = {
      "kubernetes.io": {
        namespace: req.namespace,
        serviceaccount: { name: req.serviceAccount, uid: sa?.metadata.uid ?? crypto.randomUUID() },
      },
    };
    if (req.pod) {
      const pod = this.get("Pod", req.namespace, req.pod.name);
      const uid = req.pod.uid ?? pod?.metadata.uid;
      if (!uid) throw new Error(`no pod ${req.namespace}/${req.pod.name} to bind a token to`);
      const k = claims["kubernetes.io"] as Record<string, unknown>;
      k.pod = { name: req.pod.name, uid };
      const node = (pod?.spec as { nodeName?: string } | undefined)?.nodeName;
      if (node) k.node = { name: node, uid: `node-${node}` };
    }
    const iat = Math.floor(Date.now() / 1000);
    return await new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: "fake" })
      .setIssuer(API_AUDIENCE)
      .setSubject(`system:serviceaccount:${req.namespace}:${req.serviceAccount}`)
      .setAudience(req.audiences ?? [API_AUDIENCE])
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + (req.expirationSeconds ?? 3600))
      .sign(this.#signKey);
  }

  async close(): Promise<void> {
    clearInterval(this.#bookmarkTimer);
    this.dropWatches();
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- storage ----

  #resourceOfObject(obj: KubeObject): ResourceType {
    const r = SERVED.find((x) => x.kind === obj.kind);
    if (!r) throw new Error(`the fake API server does not serve kind ${obj.kind}`);
    return r;
  }

  #key(r: ResourceType, ns: string | undefined, name: string): string {
    return `${rkeyOf(r)}/${ns ?? ""}/${name}`;
  }

  #write(r: ResourceType, key: string, obj: KubeObject, type: HistoryEvent["type"]): void {
    this.#rv++;
    obj.metadata.resourceVersion = String(this.#rv);
    if (type === "DELETED") this.#store.delete(key);
    else this.#store.set(key, { resource: r, obj });
    const ev: HistoryEvent = { rv: this.#rv, type, rkey: rkeyOf(r), obj: clone(obj) };
    this.#history.push(ev);
    for (const w of this.#watchers) this.#deliver(w, ev);
  }

  #delete(r: ResourceType, ns: string | undefined, name: string): boolean {
    const key = this.#key(r, ns, name);
    const s = this.#store.get(key);
    if (!s) return false;
    const obj = clone(s.obj);
    this.#write(r, key, obj, "DELETED");
    // The garbage collector: dependents whose owner is gone are deleted too (background propagation).
    const uid = obj.metadata.uid;
    for (const d of [...this.#store.values()]) {
      if (d.obj.metadata.ownerReferences?.some((o) => o.uid === uid)) {
        this.#delete(d.resource, d.obj.metadata.namespace, d.obj.metadata.name);
      }
    }
    return true;
  }

  /** The service IP allocator: a ClusterIP Service without one gets the next free 10.96.x.y. */
  #allocateClusterIP(o: KubeObject): void {
    const spec = (o.spec ??= {}) as { type?: string; clusterIP?: string; clusterIPs?: string[] };
    if ((spec.type ?? "ClusterIP") === "ExternalName" || spec.clusterIP) return;
    const used = new Set([...this.#store.values()].map((s) => (s.obj.spec as { clusterIP?: string } | undefined)?.clusterIP));
    for (let i = 100; i < 65000; i++) {
      const ip = `10.96.${i >> 8}.${i & 255}`;
      if (!used.has(ip)) {
        spec.clusterIP = ip;
        spec.clusterIPs = [ip];
        return;
      }
    }
  }

  // ---- watches ----

  #render(w: { served: ResourceType }, obj: KubeObject): KubeObject {
    const o = clone(obj);
    o.apiVersion = w.served.group ? `${w.served.group}/${w.served.version}` : w.served.version;
    return o;
  }

  #deliver(w: Watcher, ev: HistoryEvent): void {
    if (ev.rkey !== w.rkey || ev.rv <= w.sentRv) return;
    if (w.namespace && ev.obj.metadata.namespace !== w.namespace) return;
    if (!w.match(ev.obj)) return;
    w.sentRv = ev.rv;
    w.res.write(JSON.stringify({ type: ev.type, object: this.#render(w, ev.obj) }) + "\n");
  }

  #sendBookmarks(): void {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      w.sentRv = this.#rv;
      w.res.write(JSON.stringify({
        type: "BOOKMARK",
        object: { kind: w.served.kind, apiVersion: this.#render(w, { metadata: { name: "" } }).apiVersion, metadata: { resourceVersion: String(this.#rv) } },
      }) + "\n");
    }
  }

  // ---- HTTP ----

  #status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code }));
  }

  #json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  async #user(req: IncomingMessage): Promise<string | undefined> {
    const h = req.headers.authorization;
    if (h) {
      const m = /^Bearer (.+)$/.exec(h);
      if (!m) return undefined;
      if (m[1] === this.adminToken) return "kubernetes-admin";
      const v = await this.#verifyToken(m[1]!, [API_AUDIENCE]);
      return v.ok ? v.username : undefined;
    }
    if ((req.socket as { authorized?: boolean }).authorized) return "kubernetes-admin";
    return undefined;
  }

  async #verifyToken(token: string, audiences: string[]): Promise<
    | { ok: true; username: string; uid: string; groups: string[]; extra: Record<string, string[]>; audiences: string[] }
    | { ok: false; error: string }
  > {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#verifyKey, { issuer: API_AUDIENCE, algorithms: ["ES256"] }) as { payload: Record<string, unknown> });
    } catch (e) {
      return { ok: false, error: `invalid bearer token, ${(e as Error).message}` };
    }
    const aud = ([] as string[]).concat(payload.aud as string | string[]);
    const matched = aud.filter((a) => audiences.includes(a));
    if (!matched.length) return { ok: false, error: "token audiences do not match the requested audiences" };
    const k = payload["kubernetes.io"] as {
      namespace: string;
      serviceaccount: { name: string; uid: string };
      pod?: { name: string; uid: string };
      node?: { name: string; uid: string };
    };
    const extra: Record<string, string[]> = {};
    if (k.pod) {
      // A bound token dies with its pod (the API server checks the object still exists, same uid).
      const pod = this.get("Pod", k.namespace, k.pod.name);
      if (!pod || pod.metadata.uid !== k.pod.uid) return { ok: false, error: `pod "${k.pod.name}" (uid ${k.pod.uid}) no longer exists` };
      extra["authentication.kubernetes.io/pod-name"] = [k.pod.name];
      extra["authentication.kubernetes.io/pod-uid"] = [k.pod.uid];
    }
    if (k.node) {
      extra["authentication.kubernetes.io/node-name"] = [k.node.name];
      extra["authentication.kubernetes.io/node-uid"] = [k.node.uid];
    }
    return {
      ok: true,
      username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
      uid: k.serviceaccount.uid,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${k.namespace}`, "system:authenticated"],
      extra,
      audiences: matched,
    };
  }

  #allowed(user: string, verb: string, group: string, resource: string, namespace: string | undefined, name: string | undefined): boolean {
    const rbac = this.#o.rbac;
    if (!rbac || user === "kubernetes-admin") return true;
    for (const g of rbac.get(user) ?? []) {
      if (g.namespace && g.namespace !== namespace) continue;
      for (const r of g.rules) {
        const groups = r.apiGroups ?? [""];
        if (!groups.includes("*") && !groups.includes(group)) continue;
        if (!(r.resources ?? []).some((x) => x === "*" || x === resource)) continue;
        if (!r.verbs.includes("*") && !r.verbs.includes(verb)) continue;
        if (r.resourceNames?.length && (!name || !r.resourceNames.includes(name))) continue;
        return true;
      }
    }
    return false;
  }

  async #body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? JSON.parse(text) : undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const q = Object.fromEntries(url.searchParams);
    const rec: RecordedRequest = { verb: "", method: req.method ?? "GET", path: url.pathname, query: q, user: "", resource: "", status: 0 };
    this.requests.push(rec);
    const send = (code: number, reason: string, message: string) => {
      rec.status = code;
      this.#status(res, code, reason, message);
    };
    if (this.#unavailable) return send(503, "ServiceUnavailable", "the server is currently unable to handle the request");
    const user = await this.#user(req);
    if (!user) return send(401, "Unauthorized", "Unauthorized");
    rec.user = user;

    // /api/v1/... or /apis/GROUP/VERSION/...
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let group: string, version: string, rest: string[];
    if (parts[0] === "api") [group, version, rest] = ["", parts[1] ?? "", parts.slice(2)];
    else if (parts[0] === "apis") [group, version, rest] = [parts[1] ?? "", parts[2] ?? "", parts.slice(3)];
    else return send(404, "NotFound", "the server could not find the requested resource");
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    if (group === TOKEN_REVIEWS.group && plural === TOKEN_REVIEWS.plural && version === "v1") {
      rec.verb = "create";
      rec.resource = `${group}/tokenreviews`;
      if (req.method !== "POST") return send(405, "MethodNotAllowed", "only create is allowed on tokenreviews");
      if (!this.#allowed(user, "create", group, "tokenreviews", undefined, undefined)) return send(403, "Forbidden", `tokenreviews.authentication.k8s.io is forbidden: User "${user}" cannot create resource "tokenreviews"`);
      return await this.#tokenReview(req, res, rec);
    }
    const def = SERVED.find((r) => r.group === group && r.plural === plural && (r.version === version || r.also?.includes(version)));
    if (!def || this.#unserved.has(group)) return send(404, "NotFound", "the server could not find the requested resource");
    const served: ResourceType = { ...def, version };
    if (!def.namespaced) namespace = undefined;
    const watch = q.watch === "1" || q.watch === "true";
    const verb = req.method === "GET" ? (name ? "get" : watch ? "watch" : "list")
      : req.method === "POST" ? "create"
      : req.method === "PUT" ? "update"
      : req.method === "PATCH" ? "patch"
      : req.method === "DELETE" ? "delete"
      : "";
    rec.verb = verb;
    rec.resource = `${group}/${plural}${sub ? `/${sub}` : ""}`;
    rec.namespace = namespace;
    const rbacResource = sub ? `${plural}/${sub}` : plural!;
    if (!this.#allowed(user, verb, group, rbacResource, namespace, name)) {
      return send(403, "Forbidden", `${plural}${group ? `.${group}` : ""} is forbidden: User "${user}" cannot ${verb} resource "${rbacResource}" in API group "${group}"${namespace ? ` in the namespace "${namespace}"` : " at the cluster scope"}`);
    }
    const matcher = selectorMatcher(q.labelSelector, q.fieldSelector);
    if (matcher === undefined) return send(400, "BadRequest", `unable to parse requirement: ${q.labelSelector ?? q.fieldSelector}`);
    const render = (o: KubeObject) => this.#render({ served }, o);
    rec.status = 200;

    if (verb === "list") {
      let snap: { items: KubeObject[]; rv: number };
      let offset = 0;
      if (q.continue) {
        const [id, off] = Buffer.from(q.continue, "base64").toString("utf8").split(":");
        const s = this.#snapshots.get(id!);
        if (!s) return send(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
        snap = s;
        offset = Number(off);
      } else {
        const items = [...this.#store.values()]
          .filter((s) => rkeyOf(s.resource) === rkeyOf(def) && (!namespace || s.obj.metadata.namespace === namespace) && matcher(s.obj))
          .map((s) => s.obj)
          .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
        snap = { items: items.map(clone), rv: this.#rv };
      }
      const limit = q.limit ? Number(q.limit) : Infinity;
      const page = snap.items.slice(offset, offset + limit);
      const metadata: Record<string, string> = { resourceVersion: String(snap.rv) };
      if (offset + page.length < snap.items.length) {
        const id = crypto.randomUUID();
        this.#snapshots.set(id, snap);
        metadata.continue = Buffer.from(`${id}:${offset + page.length}`).toString("base64");
      }
      // Items of a list carry no apiVersion/kind: the list's own type names them.
      const items = page.map((o) => {
        const { apiVersion: _a, kind: _k, ...restObj } = render(o);
        return restObj;
      });
      return this.#json(res, 200, { kind: `${def.kind}List`, apiVersion: served.group ? `${served.group}/${version}` : version, metadata, items });
    }

    if (verb === "watch") {
      const from = q.resourceVersion ? Number(q.resourceVersion) : 0;
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      const w: Watcher = { rkey: rkeyOf(def), namespace, match: matcher, res, served, bookmarks: q.allowWatchBookmarks === "true", sentRv: from };
      if (from > 0 && from < this.#compactedRv) {
        res.end(JSON.stringify({
          type: "ERROR",
          object: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: `too old resource version: ${from} (${this.#compactedRv})`, reason: "Expired", code: 410 },
        }) + "\n");
        return;
      }
      if (from === 0) {
        // "0" or absent: the current state as ADDED events first.
        for (const s of this.#store.values()) {
          if (rkeyOf(s.resource) !== w.rkey || (namespace && s.obj.metadata.namespace !== namespace) || !matcher(s.obj)) continue;
          res.write(JSON.stringify({ type: "ADDED", object: render(s.obj) }) + "\n");
        }
        w.sentRv = this.#rv;
      } else {
        for (const ev of this.#history) this.#deliver(w, ev);
      }
      this.#watchers.add(w);
      const timeout = setTimeout(() => {
        this.#watchers.delete(w);
        res.end();
      }, Number(q.timeoutSeconds ?? 1800) * 1000);
      res.on("close", () => {
        clearTimeout(timeout);
        this.#watchers.delete(w);
      });
      return;
    }

    if (verb === "get") {
      const s = this.#store.get(this.#key(def, namespace, name!));
      if (!s) return send(404, "NotFound", `${plural}${group ? `.${group}` : ""} "${name}" not found`);
      return this.#json(res, 200, render(s.obj));
    }

    if (verb === "delete") {
      if (!this.#delete(def, namespace, name!)) return send(404, "NotFound", `${plural} "${name}" not found`);
      return this.#json(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" });
    }

    const body = (await this.#body(req)) as KubeObject | undefined;
    if (!body || typeof body !== "object") return send(400, "BadRequest", "the request body is not a JSON object");

    if (verb === "create") {
      if (name) return send(405, "MethodNotAllowed", "POST to an object URL");
      const ns = def.namespaced ? namespace ?? body.metadata?.namespace : undefined;
      if (def.namespaced && !ns) return send(400, "BadRequest", "the namespace of the object is not set");
      if (def.namespaced && !this.#store.has(this.#key(NAMESPACES, undefined, ns!))) return send(404, "NotFound", `namespaces "${ns}" not found`);
      if (!body.metadata?.name) return send(422, "Invalid", "metadata.name: Required value");
      const key = this.#key(def, ns, body.metadata.name);
      if (this.#store.has(key)) return send(409, "AlreadyExists", `${plural}${group ? `.${group}` : ""} "${body.metadata.name}" already exists`);
      const o = clone(body);
      o.apiVersion = def.group ? `${def.group}/${def.version}` : def.version;
      o.kind = def.kind;
      o.metadata = { ...o.metadata, uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString(), generation: 1 };
      if (ns) o.metadata.namespace = ns;
      if (def.kind === "Service") this.#allocateClusterIP(o);
      this.#write(def, key, o, "ADDED");
      rec.status = 201;
      return this.#json(res, 201, render(o));
    }

    const key = this.#key(def, namespace, name!);
    const cur = this.#store.get(key)?.obj;
    if (!cur) return send(404, "NotFound", `${plural}${group ? `.${group}` : ""} "${name}" not found`);
    let next: KubeObject;
    if (verb === "update") {
      const rv = body.metadata?.resourceVersion;
      if (rv !== undefined && rv !== cur.metadata.resourceVersion) {
        return send(409, "Conflict", `Operation cannot be fulfilled on ${plural}${group ? `.${group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      next = clone(body);
    } else {
      const ct = String(req.headers["content-type"] ?? "");
      if (!ct.startsWith("application/merge-patch+json")) return send(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (this fake), not ${ct}`);
      next = mergePatch(clone(cur), body) as KubeObject;
    }
    // Identity and server-owned metadata do not change through writes.
    next.apiVersion = cur.apiVersion;
    next.kind = cur.kind;
    next.metadata = { ...next.metadata, name: cur.metadata.name, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp };
    if (cur.metadata.namespace) next.metadata.namespace = cur.metadata.namespace;
    if (sub === "status") {
      next = { ...clone(cur), status: next.status };
    } else if (sub) {
      return send(404, "NotFound", `no subresource ${sub}`);
    } else if ("status" in cur || "status" in next) {
      // The main resource ignores status (it has a status subresource).
      next.status = clone(cur.status);
      if (next.status === undefined) delete next.status;
    }
    next.metadata.generation = (cur.metadata.generation ?? 1) + (JSON.stringify(cur.spec) !== JSON.stringify(next.spec) ? 1 : 0);
    this.#write(def, key, next, "MODIFIED");
    return this.#json(res, 200, render(next));
  }

  async #tokenReview(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest): Promise<void> {
    const body = (await this.#body(req)) as { spec?: { token?: string; audiences?: string[] } } | undefined;
    const token = body?.spec?.token ?? "";
    const audiences = body?.spec?.audiences?.length ? body.spec.audiences : [API_AUDIENCE];
    const v = await this.#verifyToken(token, audiences);
    const status = v.ok
      ? { authenticated: true, user: { username: v.username, uid: v.uid, groups: v.groups, extra: v.extra }, audiences: v.audiences }
      : { authenticated: false, error: v.error, user: {} };
    rec.status = 201;
    this.#json(res, 201, { kind: "TokenReview", apiVersion: "authentication.k8s.io/v1", metadata: { creationTimestamp: null }, spec: body?.spec ?? {}, status });
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Equality-based label selectors (a=b, a!=b, a, !a) and the field selectors the mesh uses; undefined if unparsable. */
function selectorMatcher(labelSel?: string, fieldSel?: string): ((o: KubeObject) => boolean) | undefined {
  const tests: ((o: KubeObject) => boolean)[] = [];
  for (const raw of (labelSel ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*!=\s*([\w.-]*)$/.exec(raw))) {
      const [k, v] = [m[1]!, m[2]!];
      tests.push((o) => o.metadata.labels?.[k] !== v);
    } else if ((m = /^([\w./-]+)\s*==?\s*([\w.-]*)$/.exec(raw))) {
      const [k, v] = [m[1]!, m[2]!];
      tests.push((o) => o.metadata.labels?.[k] === v);
    } else if ((m = /^!([\w./-]+)$/.exec(raw))) {
      const k = m[1]!;
      tests.push((o) => !(k in (o.metadata.labels ?? {})));
    } else if ((m = /^([\w./-]+)$/.exec(raw))) {
      const k = m[1]!;
      tests.push((o) => k in (o.metadata.labels ?? {}));
    } else return undefined;
  }
  for (const raw of (fieldSel ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(raw);
    if (!m) return undefined;
    const [path, op, value] = [m[1]!, m[2]!, m[3]!];
    const get = (o: KubeObject) => path.split(".").reduce<unknown>((x, k) => (x as Record<string, unknown> | undefined)?.[k], o);
    tests.push((o) => (op === "!=" ? String(get(o) ?? "") !== value : String(get(o) ?? "") === value));
  }
  return (o) => tests.every((t) => t(o));
}
