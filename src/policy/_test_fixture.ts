/**
 * Test support (not exported from mod.ts): the Istio conformance inputs in testdata/istio, a small
 * mesh that concretizes the integration tests' templates (destination app "b" in ns1, allowed source
 * ns1/a, denied source ns2/a, a waypoint serving b), and a client that sends one call through the mesh's
 * enforcement points exactly as the roles will (placement -> waypoint admission -> destination ztunnel).
 */
import { readFileSync } from "node:fs";
import { createLocalJWKSet } from "jose";
import type { JSONWebKeySet, JWTVerifyGetKey } from "jose";
import { parseAllDocuments } from "yaml";
import { emptyModel, indexModel } from "../model/mod.ts";
import type {
  AuthorizationPolicy,
  JwtRule,
  MeshModel,
  ObjectRef,
  PolicyScope,
  RequestAuthentication,
  Service,
  Workload,
} from "../model/mod.ts";
import { admitRequest } from "./admit.ts";
import { policyHasL7 } from "./attributes.ts";
import type { KeyResolver } from "./jwt.ts";
import { authorizeAtWaypoint, authorizeAtZtunnel, placement } from "./placement.ts";
import type { AuthzRequest } from "./request.ts";
import { service, waypoint, workload } from "../../test/support/mod.ts";

const DIR = new URL("./testdata/istio/", import.meta.url);

export function readTestdata(name: string): string {
  return readFileSync(new URL(name, DIR), "utf8");
}

export const TOKENS: Record<string, string> = Object.fromEntries(
  Object.entries(
    (JSON.parse(readTestdata("tokens.json")) as { tokens: Record<string, { token: string }> }).tokens,
  ).map(([k, v]) => [k, v.token]),
);

export const TEST_ISSUER_JWKS = readTestdata("test-issuer-jwks.json");

/** Keys for the test issuers; a jwksUri naming "not-exist" fails to fetch, like upstream's invalid-jwks test. */
export const testKeys: KeyResolver = (rule: JwtRule): JWTVerifyGetKey => {
  if (rule.jwksUri?.includes("not-exist")) throw new Error(`fetch ${rule.jwksUri}: 404`);
  return createLocalJWKSet(JSON.parse(rule.jwks ?? TEST_ISSUER_JWKS) as JSONWebKeySet);
};

// ---- the concretized integration-test mesh ----

export const IP = { allowed: "10.0.1.1", denied: "10.0.2.1", b: "10.0.0.2", waypoint: "10.0.9.9" };
export const PORTS = { http: 18080, http2: 18085, grpc: 17070, tcp: 19090 } as const;
export type PortName = keyof typeof PORTS;

const TEMPLATE_VALUES: Record<string, string> = {
  ".To.ServiceName": "b",
  ".To.NamespaceName": "ns1",
  ".To.ClusterLocalFQDN": "b.ns1.svc.cluster.local",
  "(.To.PortForName `http`).WorkloadPort": "18080",
  "(.To.PortForName `http2`).WorkloadPort": "18085",
  "(.To.PortForName `grpc`).WorkloadPort": "17070",
  "(.To.PortForName `tcp`).WorkloadPort": "19090",
  '(.To.PortForName "http").ServicePort': "80",
  ".Allowed.SpiffeIdentity": "cluster.local/ns/ns1/sa/a",
  ".Denied.SpiffeIdentity": "cluster.local/ns/ns2/sa/a",
  ".Allowed.NamespacedName": "ns1/a",
  ".Allowed.NamespaceName": "ns1",
  ".Denied.NamespaceName": "ns2",
  ".Allowed.MustWorkloads.Addresses | toJson": JSON.stringify([IP.allowed]),
  ".Denied.MustWorkloads.Addresses | toJson": JSON.stringify([IP.denied]),
  ".To.MustWorkloads.Addresses | toJson": JSON.stringify([IP.b]),
  ".JWTServer.JwksURI": "https://jwt-server.test/jwks.json",
  ".To.Config.ServiceWaypointProxy": "waypoint",
  ".Jwks": TEST_ISSUER_JWKS.replace(/\s+/g, " ").trim(),
  '.GatewayIstioLabel | default "ingressgateway"': "ingressgateway",
};

/** Render one of Istio's Go templates with the concrete values above; an unknown expression throws. */
export function renderTemplate(name: string): string {
  return readTestdata(`templates/${name}.yaml.tmpl`).replace(/\{\{(.*?)\}\}/g, (_all, expr: string) => {
    const key = expr.trim().replace(/\(\s+/g, "(").replace(/\s+\)/g, ")");
    const v = TEMPLATE_VALUES[key];
    if (v === undefined) throw new Error(`template ${name}: no value for {{${expr}}}`);
    return v;
  });
}

interface RawObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: Record<string, unknown>;
}

function scopeOf(spec: Record<string, unknown>, ns: string, root: string): PolicyScope {
  const refs = (spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : undefined)) as Partial<ObjectRef>[] | undefined;
  if (refs?.length) {
    return {
      kind: "targetRefs",
      targetRefs: refs.map((r) => ({
        group: r.group ?? "",
        kind: r.kind ?? "",
        name: r.name ?? "",
        namespace: r.namespace ?? ns,
      })),
    };
  }
  const sel = (spec.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels;
  if (sel) return { kind: "selector", matchLabels: sel };
  return ns === root ? { kind: "root" } : { kind: "namespace" };
}

/** Convert AuthorizationPolicy and RequestAuthentication documents (other kinds are ignored). */
export function policiesFromYaml(
  text: string,
  namespace: string,
  root = "istio-system",
): { authorizationPolicies: AuthorizationPolicy[]; requestAuthentications: RequestAuthentication[] } {
  const authorizationPolicies: AuthorizationPolicy[] = [];
  const requestAuthentications: RequestAuthentication[] = [];
  for (const doc of parseAllDocuments(text)) {
    const o = doc.toJS() as RawObject | null;
    if (!o?.kind) continue;
    const ns = o.metadata?.namespace ?? namespace;
    const spec = o.spec ?? {};
    const name = o.metadata?.name ?? "unnamed";
    if (o.kind === "AuthorizationPolicy") {
      const p: AuthorizationPolicy = {
        name,
        namespace: ns,
        action: (spec.action as AuthorizationPolicy["action"]) ?? "ALLOW",
        scope: scopeOf(spec, ns, root),
        rules: (spec.rules as AuthorizationPolicy["rules"]) ?? [],
        hasL7: false,
      };
      p.hasL7 = policyHasL7(p);
      authorizationPolicies.push(p);
    } else if (o.kind === "RequestAuthentication") {
      requestAuthentications.push({
        name,
        namespace: ns,
        scope: scopeOf(spec, ns, root),
        jwtRules: (spec.jwtRules as JwtRule[]) ?? [],
      });
    }
  }
  return { authorizationPolicies, requestAuthentications };
}

function pod(ns: string, name: string, sa: string, ip: string, labels: Record<string, string>): Workload {
  return workload(name, ns, ip, "node-1", { serviceAccount: sa, labels, ports: Object.entries(PORTS).map(([name, port]) => ({ name, port })) });
}

export interface MeshOptions {
  /** A waypoint ns1/waypoint serves Service b (default true). */
  waypoint?: boolean;
  /** Workload b is enrolled in ambient (default true). */
  ambient?: boolean;
}

/** ns1/a (allowed source), ns2/a (denied source), ns1/b behind Service b, optionally a waypoint for b. */
export function testMesh(opts: MeshOptions = {}): MeshModel {
  const m = emptyModel();
  m.namespaces.push(
    { name: "istio-system", labels: {}, ambient: false },
    { name: "ns1", labels: {}, ambient: true },
    { name: "ns2", labels: {}, ambient: true },
  );
  const b = pod("ns1", "b-0", "b", IP.b, { app: "b" });
  b.ambient = opts.ambient ?? true;
  m.workloads.push(
    pod("ns1", "a-0", "a", IP.allowed, { app: "a" }),
    pod("ns2", "a-0", "a", IP.denied, { app: "a" }),
    b,
  );
  const svc = service("b", "ns1", "10.96.0.10", [
    { name: "http", port: 80, targetPort: PORTS.http },
    { name: "http2", port: 85, targetPort: PORTS.http2 },
    { name: "grpc", port: 7070, targetPort: PORTS.grpc },
    { name: "tcp", port: 9090, targetPort: PORTS.tcp },
  ], [b], { selector: { app: "b" } });
  if (opts.waypoint ?? true) {
    svc.waypoint = { gateway: "ns1/waypoint", via: "service-label" };
    m.waypoints.push(waypoint("waypoint", "ns1", IP.waypoint));
  }
  m.services.push(svc);
  return m;
}

/** One client call to Service b. */
export interface Call {
  /** "ns1/a", "ns2/a", or "none" for a client without mesh identity. */
  from: "ns1/a" | "ns2/a" | "none";
  port: PortName;
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  /** Sent as "Authorization: Bearer <token>". */
  jwt?: string;
  sni?: string;
}

export interface CallResult {
  /** 200 reached the backend; 401 bad token; 403 denied (an L4 deny closes the connection: reported as 403). */
  status: 200 | 401 | 403;
  /** Which point decided and why, for failure messages. */
  trace: string[];
  /** What the backend receives (after the waypoint's header changes), lower-case names. */
  backendHeaders?: Record<string, string>;
}

function clientOf(from: Call["from"]): { ip: string; principal?: string } {
  if (from === "ns1/a") return { ip: IP.allowed, principal: "spiffe://cluster.local/ns/ns1/sa/a" };
  if (from === "ns2/a") return { ip: IP.denied, principal: "spiffe://cluster.local/ns/ns2/sa/a" };
  return { ip: IP.denied };
}

/**
 * Send `call` through the mesh's enforcement points for `model`: the waypoint (authentication, then
 * authorization with the client's identity) and then the destination ztunnel (which must admit the
 * waypoint), or the destination ztunnel alone when no waypoint serves b.
 */
export async function callB(
  model: MeshModel,
  call: Call,
  keys: KeyResolver = testKeys,
  now?: Date,
): Promise<CallResult> {
  const index = indexModel(model);
  const b = model.workloads.find((w) => w.name === "b-0")!;
  const svc = index.serviceByName("ns1", "b");
  const port = PORTS[call.port];
  const client = clientOf(call.from);
  const grpc = call.port === "grpc";
  const headers: Record<string, string> = { ...(call.headers ?? {}) };
  if (call.jwt) headers["authorization"] = `Bearer ${call.jwt}`;
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const http: AuthzRequest["http"] = call.port === "tcp" ? undefined : {
    method: grpc ? "POST" : call.method ?? "GET",
    path: grpc ? "/proto.EchoTestService/Echo" : call.path || "/",
    host: call.host ?? "b.ns1.svc.cluster.local",
    headers: lower,
  };
  const req: AuthzRequest = { source: client, destination: { ip: IP.b, port }, http, sni: call.sni };
  const pl = placement(index, { workload: b, service: svc });
  const trace = [`placement: ${pl.summary}`];
  let backendHeaders: Record<string, string> | undefined;
  if (pl.point === "waypoint" && pl.waypoint) {
    const wp = pl.waypoint;
    if (req.http) {
      const adm = await admitRequest(index, wp, { workload: b, service: svc }, { ...req, http: req.http }, keys, now);
      trace.push(`waypoint: ${adm.status} ${adm.reason}`);
      if (adm.status !== 200) return { status: adm.status, trace };
      backendHeaders = { ...lower };
      for (const h of adm.stripHeaders) delete backendHeaders[h];
      Object.assign(backendHeaders, adm.addHeaders);
    } else {
      const d = authorizeAtWaypoint(index, wp, { workload: b, service: svc }, req);
      trace.push(`waypoint: ${d.allowed ? "allow" : "deny"} ${d.reason}`);
      if (!d.allowed) return { status: 403, trace };
    }
    const hop = authorizeAtZtunnel(index, b, {
      source: { ip: wp.addresses[0], principal: wp.identity },
      destination: req.destination,
    });
    trace.push(`ztunnel: ${hop.allowed ? "allow" : "deny"} ${hop.reason}`);
    return hop.allowed ? { status: 200, trace, backendHeaders } : { status: 403, trace };
  }
  if (pl.point === "none") return { status: 200, trace, backendHeaders: lower };
  const d = authorizeAtZtunnel(index, b, req);
  trace.push(`ztunnel: ${d.allowed ? "allow" : "deny"} ${d.reason}`);
  return d.allowed ? { status: 200, trace, backendHeaders: lower } : { status: 403, trace };
}
