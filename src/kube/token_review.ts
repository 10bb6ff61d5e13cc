/**
 * Authentication of proxies on Kubernetes: a ztunnel (DaemonSet) or a waypoint presents its projected
 * service-account token (audience istio-ca); the API server says, through a TokenReview, whose it is and
 * which pod it is bound to. Node authorization then holds exactly as with bootstrap tokens:
 * - the token must be bound to a pod (pod-name and pod-uid in the user's extra) that still exists with that
 *   uid and runs as that service account;
 * - a ztunnel's service account (by default mesh-system/ztunnel) becomes the node caller of THAT pod's
 *   spec.nodeName (never a node the proxy names itself), so it can get identities of its node only;
 * - a waypoint runs as the service account named after its Gateway (Istio's convention): that becomes the
 *   gateway caller of the istio-waypoint Gateway with that name in that namespace, but only for the
 *   waypoint's own pods (its Deployment's, ./waypoint_pod.ts): any pod can be given that service account,
 *   and the waypoint's certificate would let it bypass the waypoint at every destination ztunnel;
 * - any other service account is refused.
 * Successful reviews are cached briefly (by a hash of the token), so reconnect storms do not become
 * TokenReview storms.
 */
import { createHash } from "node:crypto";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { logger } from "../core/mod.ts";
import type { Caller } from "../identity/mod.ts";
import { type KubeClient, KubeApiError, type KubeObject } from "./client.ts";
import { PODS, TOKEN_REVIEWS } from "./resources.ts";
import { waypointPodProblem } from "./waypoint_pod.ts";

const log = logger("kube");

/** The audience Istio's proxies request for their control-plane token. */
export const PROXY_TOKEN_AUDIENCE = "istio-ca";

const EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid";

export interface TokenReviewerOptions {
  client: KubeClient;
  /** Default istio-ca. */
  audience?: string;
  /** "namespace/name" of the service accounts ztunnels run as. Default ["mesh-system/ztunnel"]. */
  ztunnelServiceAccounts?: string[];
  /** The pod as last seen by the watch (else it is fetched). */
  pod?: (namespace: string, name: string) => KubeObject | undefined;
  /** Is there a waypoint Gateway (class istio-waypoint) with this name in this namespace? */
  isWaypoint: (namespace: string, name: string) => boolean;
  /** The Gateway as last seen by the watch (to tell the waypoint's own pods from others). */
  gateway?: (namespace: string, name: string) => KubeObject | undefined;
  /**
   * The waypoint Deployment the control role made for that Gateway, as last seen by the watch. Without it
   * (or `gateway`) no pod can be shown to be the waypoint's: waypoint tokens are refused.
   */
  deployment?: (namespace: string, name: string) => KubeObject | undefined;
  /** How long a successful review is reused (default 60 s, never past the token's expiry). */
  cacheMs?: number;
  now?: () => number;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

export class TokenReviewer {
  #o: TokenReviewerOptions;
  #cache = new Map<string, { caller: Caller; until: number; pod: { namespace: string; name: string; uid: string } }>();

  constructor(opts: TokenReviewerOptions) {
    this.#o = opts;
  }

  get audience(): string {
    return this.#o.audience ?? PROXY_TOKEN_AUDIENCE;
  }

  /**
   * The caller a service-account token proves.
   * @throws MeshError (MESH_TOKEN_INVALID) with the reason when the token is not accepted, or
   * (MESH_UNREACHABLE) when the API server cannot be asked.
   */
  async authenticate(token: string): Promise<Caller> {
    const now = this.#o.now?.() ?? Date.now();
    const h = createHash("sha256").update(token).digest("hex");
    const hit = this.#cache.get(h);
    if (hit && hit.until > now) {
      // The pod may be gone since: the watch knows without asking the API server again.
      const p = this.#o.pod?.(hit.pod.namespace, hit.pod.name);
      if (p && p.metadata.uid === hit.pod.uid) return hit.caller;
      this.#cache.delete(h);
    }
    let status: TokenReviewStatus;
    try {
      const r = await this.#o.client.request<{ status?: TokenReviewStatus }>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        body: { apiVersion: "authentication.k8s.io/v1", kind: TOKEN_REVIEWS.kind, spec: { token, audiences: [this.audience] } },
      });
      status = r.status ?? {};
    } catch (e) {
      throw new MeshError(ErrorCode.Unreachable, `Cannot review the token with the Kubernetes API: ${(e as Error).message}`, { cause: e });
    }
    const refuse = (why: string) => new MeshError(ErrorCode.TokenInvalid, `Service-account token refused: ${why}`);
    if (!status.authenticated) throw refuse(status.error ? `the API server did not authenticate it (${status.error})` : "the API server did not authenticate it");
    if (status.audiences && !status.audiences.includes(this.audience)) throw refuse(`its audiences ${JSON.stringify(status.audiences)} do not include "${this.audience}"`);
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user?.username ?? "");
    if (!m) throw refuse(`"${status.user?.username}" is not a service account`);
    const [namespace, serviceAccount] = [m[1]!, m[2]!];
    const podName = status.user?.extra?.[EXTRA_POD_NAME]?.[0];
    const podUid = status.user?.extra?.[EXTRA_POD_UID]?.[0];
    if (!podName || !podUid) throw refuse(`the token of ${namespace}/${serviceAccount} is not bound to a pod: mount a projected serviceAccountToken (audience ${this.audience})`);
    const pod = await this.#pod(namespace, podName);
    if (!pod || pod.metadata.uid !== podUid) throw refuse(`pod ${namespace}/${podName} (uid ${podUid}) named in the token does not exist`);
    const spec = (pod.spec ?? {}) as { serviceAccountName?: string; nodeName?: string };
    if ((spec.serviceAccountName ?? "default") !== serviceAccount) throw refuse(`pod ${namespace}/${podName} does not run as ${serviceAccount}`);
    let caller: Caller;
    const ztunnels = this.#o.ztunnelServiceAccounts ?? ["mesh-system/ztunnel"];
    if (ztunnels.includes(`${namespace}/${serviceAccount}`)) {
      if (!spec.nodeName) throw refuse(`ztunnel pod ${namespace}/${podName} is not scheduled on a node yet`);
      caller = { kind: "node", node: spec.nodeName };
    } else if (this.#o.isWaypoint(namespace, serviceAccount)) {
      const problem = waypointPodProblem(pod, this.#o.gateway?.(namespace, serviceAccount), this.#o.deployment?.(namespace, serviceAccount));
      if (problem) {
        throw refuse(`${problem}; only the waypoint's own pods (its Deployment's) act as waypoint ${namespace}/${serviceAccount}`);
      }
      caller = { kind: "gateway", namespace, name: serviceAccount };
    } else {
      throw refuse(`service account ${namespace}/${serviceAccount} is neither a ztunnel's (${ztunnels.join(", ")}) nor a waypoint's (a Gateway of class istio-waypoint named after it)`);
    }
    const exp = expiryOf(token);
    const until = Math.min(now + (this.#o.cacheMs ?? 60_000), exp ?? Infinity);
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(h, { caller, until, pod: { namespace, name: podName, uid: podUid } });
    log.info("service-account token accepted", { serviceAccount: `${namespace}/${serviceAccount}`, pod: podName, caller: caller.kind === "node" ? `node/${caller.node}` : `gateway/${namespace}/${serviceAccount}` });
    return caller;
  }

  async #pod(namespace: string, name: string): Promise<KubeObject | undefined> {
    const seen = this.#o.pod?.(namespace, name);
    if (seen) return seen;
    // A pod created a moment ago may not have reached the watch yet.
    try {
      return await this.#o.client.get(PODS, namespace, name);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw new MeshError(ErrorCode.Unreachable, `Cannot read pod ${namespace}/${name}: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** The `exp` of a JWT in ms, without verifying it (only to bound the cache). */
function expiryOf(token: string): number | undefined {
  try {
    const p = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: number };
    return typeof p.exp === "number" ? p.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** True when a token looks like a mesh bootstrap token (issuer mesh-control) rather than a Kubernetes one. */
export function isBootstrapToken(token: string): boolean {
  try {
    const p = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { iss?: string };
    return p.iss === "mesh-control";
  } catch {
    return false;
  }
}
