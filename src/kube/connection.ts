/**
 * How to reach the API server: in-cluster (the pod's service-account token and CA, KUBERNETES_SERVICE_HOST
 * and _PORT) or a kubeconfig file (--kubeconfig, else KUBECONFIG, else ~/.kube/config). Resolved once at
 * start-up into a ClusterConnection; the bearer token is re-read from its file, because the kubelet rotates
 * projected service-account tokens.
 *
 * Kubeconfig support: the current context (or --context), its cluster's server, certificate-authority(-data),
 * insecure-skip-tls-verify and tls-server-name; its user's token, tokenFile, client-certificate(-data) and
 * client-key(-data). Exec and auth-provider plugins are refused with a message (they run other programs).
 * KUBECONFIG with several files: the first that exists is used (no merging).
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { readText } from "../platform/mod.ts";

/** The service-account files every pod gets (unless automountServiceAccountToken: false). */
export const IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface ClusterConnection {
  /** "https://10.96.0.1:443" */
  server: string;
  /** PEM of the CA that signed the API server's certificate (absent: the system roots). */
  caPem?: string;
  /** Client certificate authentication. */
  certPem?: string;
  keyPem?: string;
  /** Skip server certificate verification (kubeconfig insecure-skip-tls-verify). */
  insecure?: boolean;
  /** Name to verify the server certificate against, when it differs from the URL's host. */
  serverName?: string;
  /** The bearer token to send now (re-read from its file when it came from one), if any. */
  token(): string | undefined;
  /** The namespace this process runs in (in-cluster) or the context's namespace (kubeconfig). */
  namespace: string;
  /** Where it came from, for log lines: "in-cluster" or the kubeconfig path. */
  origin: string;
}

export interface ResolveOptions {
  /** --kubeconfig */
  kubeconfig?: string;
  /** Environment (tests); default process.env. */
  env?: Record<string, string | undefined>;
  /** The in-cluster service-account directory (tests); default IN_CLUSTER_DIR. */
  inClusterDir?: string;
  /** Namespace when neither the pod nor the context names one. */
  defaultNamespace?: string;
}

/** --kubeconfig, else in-cluster when running in a pod, else KUBECONFIG, else ~/.kube/config. */
export function resolveConnection(opts: ResolveOptions = {}): ClusterConnection {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) return fromKubeconfig(opts.kubeconfig, opts);
  const dir = opts.inClusterDir ?? IN_CLUSTER_DIR;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(dir, "token"))) return inCluster(opts);
  const candidates = (env.KUBECONFIG ?? "").split(":").filter(Boolean);
  const home = env.HOME ?? homedir();
  candidates.push(join(home, ".kube", "config"));
  const found = candidates.find((p) => existsSync(p));
  if (found) return fromKubeconfig(found, opts);
  throw new MeshError(
    ErrorCode.ConfigNotFound,
    "No Kubernetes API to talk to: not in a pod (KUBERNETES_SERVICE_HOST and the service-account token are absent) and no kubeconfig found; pass --kubeconfig FILE or set KUBECONFIG",
  );
}

/** In a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the mounted token and CA. */
export function inCluster(opts: ResolveOptions = {}): ClusterConnection {
  const env = opts.env ?? process.env;
  const dir = opts.inClusterDir ?? IN_CLUSTER_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT || "443";
  if (!host) throw new MeshError(ErrorCode.ConfigNotFound, "KUBERNETES_SERVICE_HOST is not set: not running in a pod (use --kubeconfig)");
  const tokenPath = join(dir, "token");
  const token = tokenFromFile(tokenPath);
  token(); // fail now, not at the first request
  const nsFile = join(dir, "namespace");
  const namespace = existsSync(nsFile) ? readFileSync(nsFile, "utf8").trim() : opts.defaultNamespace ?? "default";
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caPem: readText(join(dir, "ca.crt"), "the in-cluster CA"),
    token,
    namespace,
    origin: "in-cluster",
  };
}

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value?: T;
}

/** Reads a kubeconfig file (its current context). */
export function fromKubeconfig(path: string, opts: ResolveOptions & { context?: string } = {}): ClusterConnection {
  const text = readText(path, "the kubeconfig");
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(text) ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw new MeshError(ErrorCode.ConfigInvalid, `Cannot parse the kubeconfig "${path}": ${(e as Error).message}`);
  }
  const base = dirname(path);
  const bad = (what: string) => new MeshError(ErrorCode.ConfigInvalid, `Kubeconfig "${path}": ${what}`);
  const ctxName = opts.context ?? (doc["current-context"] as string | undefined);
  const contexts = (doc.contexts ?? []) as Named<unknown>[];
  const ctx = ctxName
    ? contexts.find((c) => c.name === ctxName)
    : contexts.length === 1
    ? contexts[0]
    : undefined;
  if (!ctx) throw bad(ctxName ? `no context named "${ctxName}"` : "no current-context");
  const c = (ctx.context ?? {}) as Record<string, string | undefined>;
  const cluster = ((doc.clusters ?? []) as Named<unknown>[]).find((x) => x.name === c.cluster)?.cluster as
    | Record<string, unknown>
    | undefined;
  if (!cluster) throw bad(`context "${ctx.name}" names cluster "${c.cluster}", which is not defined`);
  const user = (((doc.users ?? []) as Named<unknown>[]).find((x) => x.name === c.user)?.user ?? {}) as Record<string, unknown>;
  if (user.exec || user["auth-provider"]) {
    throw bad(`user "${c.user}" authenticates with an exec or auth-provider plugin, which mesh does not run: use a token, tokenFile or client certificate (e.g. a service-account token)`);
  }
  const file = (p: unknown) => (typeof p === "string" ? (isAbsolute(p) ? p : join(base, p)) : undefined);
  const data = (d: unknown) => (typeof d === "string" ? Buffer.from(d, "base64").toString("utf8") : undefined);
  const pem = (inline: unknown, ref: unknown, what: string) => data(inline) ?? (file(ref) ? readText(file(ref)!, `the ${what}`) : undefined);
  const server = cluster.server;
  if (typeof server !== "string" || !/^https?:\/\//.test(server)) throw bad(`cluster "${c.cluster}" has no https server URL`);
  let token: () => string | undefined = () => undefined;
  if (typeof user.token === "string") {
    const t = user.token;
    token = () => t;
  } else if (typeof user.tokenFile === "string") token = tokenFromFile(file(user.tokenFile)!);
  const conn: ClusterConnection = {
    server: server.replace(/\/+$/, ""),
    caPem: pem(cluster["certificate-authority-data"], cluster["certificate-authority"], "kubeconfig certificate-authority"),
    certPem: pem(user["client-certificate-data"], user["client-certificate"], "kubeconfig client-certificate"),
    keyPem: pem(user["client-key-data"], user["client-key"], "kubeconfig client-key"),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    serverName: typeof cluster["tls-server-name"] === "string" ? cluster["tls-server-name"] : undefined,
    token,
    namespace: c.namespace || opts.defaultNamespace || "default",
    origin: path,
  };
  if (Boolean(conn.certPem) !== Boolean(conn.keyPem)) throw bad(`user "${c.user}" has a client certificate without its key, or a key without its certificate`);
  return conn;
}

/** A token read from a file, at most once a minute (the kubelet rewrites projected tokens well before expiry). */
function tokenFromFile(path: string): () => string {
  let value = "";
  let readAt = 0;
  return () => {
    const now = Date.now();
    if (now - readAt > 60_000 || !value) {
      value = readText(path, "the token file").trim();
      readAt = now;
    }
    return value;
  };
}
