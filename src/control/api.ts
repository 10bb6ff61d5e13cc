/**
 * The unary part of 15012 (hono): bootstrap (token -> control-plane client certificate), workload CSRs
 * under node authorization, and the status report. The listener (./listener.ts) has already terminated
 * TLS and says who the peer's client certificate names, if anyone (`c.env.peer`).
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { logger } from "../core/mod.ts";
import {
  type Caller,
  type CertificateAuthority,
  describeCaller,
  mayIssue,
  TOKEN_ISSUER,
  verifyBootstrapToken,
} from "../identity/mod.ts";
import type { Counter } from "../telemetry/mod.ts";
import { CsrRequestSchema, parseWith, PATHS, type ProxyId, type StatusReport } from "../xds/mod.ts";
import type { XdsServer } from "../xds/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { flowRoutes } from "./flow_api.ts";
import type { FlowStore } from "./flows.ts";

const log = logger("control");

/** What the listener knows about the connection a request came on. */
export interface PeerInfo {
  /** Named by a valid control-plane client certificate. */
  caller?: Caller;
  clientCertNotAfter?: Date;
  remote: string;
}

export type ApiEnv = { Bindings: { peer: PeerInfo } };

export interface ApiDeps {
  ca: () => CertificateAuthority;
  xds: XdsServer;
  /** The configuration CSRs are authorized against (the last good one). */
  model: () => MeshModel | undefined;
  status: () => StatusReport;
  csrTotal: Counter;
  clientCertTtlSeconds: number;
  /**
   * On Kubernetes (--kubernetes): the caller a projected service-account token proves, through a TokenReview
   * (src/kube). Bootstrap tokens (issuer mesh-control) are still verified locally.
   */
  serviceAccountToken?: (token: string) => Promise<Caller>;
  /** Where reported flows go (and `mesh observe` reads them). */
  flows?: { store: FlowStore; received: Counter };
}

export function proxyIdOf(c: Caller): ProxyId | undefined {
  if (c.kind === "node") return { kind: "ztunnel", node: c.node };
  if (c.kind === "gateway") return { kind: "waypoint", namespace: c.namespace, name: c.name };
  return undefined;
}

function fail(c: Context<ApiEnv>, status: 400 | 401 | 403 | 413 | 503, code: string, error: string) {
  return c.json({ error, code }, status);
}

async function tokenCaller(
  c: Context<ApiEnv>,
  ca: CertificateAuthority,
  serviceAccountToken?: (token: string) => Promise<Caller>,
): Promise<Caller | undefined> {
  const h = c.req.header("authorization");
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new MeshError(ErrorCode.TokenInvalid, 'Malformed Authorization header: use "Bearer <token>"');
  if (serviceAccountToken && issuerOf(m[1]!) !== TOKEN_ISSUER) return await serviceAccountToken(m[1]!);
  return await verifyBootstrapToken(ca, m[1]!);
}

/** The unverified `iss` of a JWT: only to pick which verifier to ask. */
function issuerOf(token: string): string | undefined {
  try {
    return (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { iss?: string }).iss;
  } catch {
    return undefined;
  }
}

async function jsonBody(c: Context<ApiEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    return undefined;
  }
}

export function controlApi(d: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post(PATHS.bootstrap, async (c) => {
    const ca = d.ca();
    let caller: Caller | undefined;
    try {
      caller = (await tokenCaller(c, ca, d.serviceAccountToken)) ?? c.env.peer.caller;
    } catch (e) {
      log.warn("bootstrap refused", { remote: c.env.peer.remote, reason: (e as Error).message });
      // The API server could not be asked (TokenReview): try again later, the token may be fine.
      const unreachable = (e as MeshError).code === ErrorCode.Unreachable;
      return fail(c, unreachable ? 503 : 401, (e as MeshError).code ?? ErrorCode.TokenInvalid, (e as Error).message);
    }
    if (!caller) {
      return fail(c, 401, ErrorCode.TokenInvalid, "Missing credentials: send Authorization: Bearer <token from mesh token create>");
    }
    const cert = await ca.issueClientCertificate(caller, { ttlSeconds: d.clientCertTtlSeconds });
    log.info("client certificate issued", { caller: describeCaller(caller), remote: c.env.peer.remote, notAfter: cert.notAfter.toISOString() });
    return c.json({
      certPem: cert.certPem,
      chainPem: cert.chainPem,
      keyPem: cert.keyPem,
      notAfter: cert.notAfter.toISOString(),
      trustBundlePem: ca.trustBundlePem,
      caller,
      trustDomain: ca.trustDomain,
    });
  });

  app.post(PATHS.csr, async (c) => {
    const caller = c.env.peer.caller;
    const proxy = caller && proxyIdOf(caller);
    if (!caller || !proxy) {
      d.csrTotal.inc({ result: "refused" });
      log.warn("certificate refused", { remote: c.env.peer.remote, reason: "no node or gateway client certificate" });
      return fail(c, 401, ErrorCode.TokenInvalid, "A CSR needs a node or gateway client certificate (POST /v1/bootstrap with a token first)");
    }
    const body = parseWith(CsrRequestSchema, await jsonBody(c));
    if (!body.ok) {
      d.csrTotal.inc({ result: "invalid" });
      return fail(c, 400, ErrorCode.CertificateInvalid, `Invalid CSR request: ${body.error}`);
    }
    const { csr, identity } = body.value;
    const model = d.model();
    if (!model) {
      d.csrTotal.inc({ result: "refused" });
      return fail(c, 503, ErrorCode.ConfigInvalid, "No valid configuration loaded yet: cannot authorize certificates (see mesh status)");
    }
    const decision = mayIssue(caller, identity, model);
    if (!decision.ok) {
      d.csrTotal.inc({ result: "refused" });
      log.warn("certificate refused", { caller: describeCaller(caller), identity, remote: c.env.peer.remote, reason: decision.reason });
      return fail(c, 403, ErrorCode.NodeNotAuthorized, `Certificate refused: ${decision.reason}`);
    }
    const ttl = Math.min(body.value.ttlSeconds ?? model.meshConfig.certTtlSeconds, model.meshConfig.certTtlSeconds);
    const ca = d.ca();
    try {
      const signed = await ca.signCsr(csr, { identity, ttlSeconds: ttl });
      d.csrTotal.inc({ result: "issued" });
      d.xds.recordCertificate(proxy, identity, signed.notAfter);
      log.info("certificate issued", { caller: describeCaller(caller), identity, serial: signed.serial, notAfter: signed.notAfter.toISOString() });
      return c.json({ certPem: signed.certPem, chainPem: signed.chainPem, notAfter: signed.notAfter.toISOString(), trustBundlePem: ca.trustBundlePem });
    } catch (e) {
      if (!(e instanceof MeshError)) throw e;
      d.csrTotal.inc({ result: "invalid" });
      log.warn("certificate refused: invalid CSR", { caller: describeCaller(caller), identity, reason: e.message });
      return fail(c, 400, e.code, e.message);
    }
  });

  /** For operators' endpoints: a 401 unless the caller is an admin (token, or the local data-dir credential). */
  const refuseNonAdmin = async (c: Context<ApiEnv>, refusal: string) => {
    let caller: Caller | undefined = c.env.peer.caller;
    try {
      caller = (await tokenCaller(c, d.ca())) ?? caller;
    } catch (e) {
      return fail(c, 401, (e as MeshError).code ?? ErrorCode.TokenInvalid, (e as Error).message);
    }
    return caller?.kind === "admin" ? undefined : fail(c, 401, ErrorCode.TokenInvalid, refusal);
  };

  app.get(PATHS.status, async (c) => {
    const refused = await refuseNonAdmin(c, "Status needs an admin token (mesh token create --admin) or local access to the data dir (mesh status --data-dir DIR)");
    if (refused) return refused;
    return c.json(d.status());
  });

  // The configuration being served, for operators' tools (`mesh describe`, `mesh proxy-status`).
  app.get(PATHS.config, async (c) => {
    const refused = await refuseNonAdmin(c, "The configuration needs an admin token (mesh token create --admin) or local access to the data dir");
    if (refused) return refused;
    return c.json({ version: d.status().version, model: d.model() ?? null });
  });

  if (d.flows) flowRoutes(app, { flows: d.flows.store, received: d.flows.received, proxyOf: proxyIdOf, refuseNonAdmin });

  app.notFound((c) => c.json({ error: `No such endpoint: ${c.req.method} ${c.req.path}`, code: ErrorCode.Usage }, 404));
  app.onError((e, c) => {
    log.error("request failed", { path: c.req.path, error: String(e) });
    return c.json({ error: "Internal error: see the control plane's log", code: "MESH_INTERNAL" }, 500);
  });
  return app;
}
