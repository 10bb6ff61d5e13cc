/**
 * Test support (not exported from mod.ts): turns the Gateway API conformance manifests into model objects
 * and maps the Gateway-profile topology onto a Service served by a waypoint.
 *
 * The mapping (conformance tests attach routes to a Gateway; a waypoint serves Services):
 * - Each Gateway becomes a frontend Service of the same name and namespace, with one port per distinct
 *   listener port. A request "to the Gateway" is a request to that Service on the listener's port.
 * - A route's Gateway parentRef becomes a Service parentRef with `port`, for every listener it would
 *   attach to on a Gateway: sectionName and port must match, the listener must be protocol HTTP (HTTPS and
 *   TLS listeners are out of scope: a waypoint receives HBONE, not client TLS), allow HTTPRoute kinds and
 *   the route's namespace (allowedRoutes from Same, All or Selector).
 * - Listener hostnames become route hostnames: the route gets the intersection of its own hostnames with
 *   the listener's (the Gateway's hostname intersection, computed here; the engine then matches hosts).
 * - A route in another namespace than its Gateway is, in GAMMA terms, a consumer route: requests are
 *   sent as from a client of that namespace.
 * Everything else (matching, precedence, filters, backends, grants) is the engine's, unmapped.
 */
import { parseAllDocuments } from "yaml";
import type {
  BackendRef,
  HttpRoute,
  HttpRouteFilter,
  HttpRouteMatch,
  Labels,
  ReferenceGrant,
  Service,
} from "../model/mod.ts";
import { hostnameMatches } from "./match.ts";

const GATEWAY_GROUP = "gateway.networking.k8s.io";

export interface GatewayListener {
  name: string;
  port: number;
  protocol: string;
  hostname?: string;
  from: "Same" | "All" | "Selector";
  selector?: Labels;
  kinds: string[];
}

export interface GatewayObject {
  name: string;
  namespace: string;
  listeners: GatewayListener[];
}

export interface ConformanceFixture {
  services: Service[];
  gateways: GatewayObject[];
  /** HTTPRoutes with their Gateway parentRefs as written. */
  routes: HttpRoute[];
  grants: ReferenceGrant[];
  namespaceLabels: Map<string, Labels>;
}

// deno-lint-ignore no-explicit-any
type Raw = any;

function service(doc: Raw): Service {
  const ns = doc.metadata.namespace ?? "default";
  const clusterIP = doc.spec?.clusterIP;
  return {
    name: doc.metadata.name,
    namespace: ns,
    hostname: `${doc.metadata.name}.${ns}.svc.cluster.local`,
    ...(clusterIP && clusterIP !== "None" ? { vip: clusterIP } : {}),
    ports: (doc.spec?.ports ?? []).map((p: Raw) => ({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: p.protocol ?? "TCP",
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    })),
    ...(doc.spec?.selector ? { selector: doc.spec.selector } : {}),
    endpoints: [],
    labels: doc.metadata.labels ?? {},
  };
}

function gateway(doc: Raw): GatewayObject {
  return {
    name: doc.metadata.name,
    namespace: doc.metadata.namespace ?? "default",
    listeners: (doc.spec?.listeners ?? []).map((l: Raw) => ({
      name: l.name,
      port: l.port,
      protocol: l.protocol,
      ...(l.hostname ? { hostname: l.hostname } : {}),
      from: l.allowedRoutes?.namespaces?.from ?? "Same",
      ...(l.allowedRoutes?.namespaces?.selector?.matchLabels
        ? { selector: l.allowedRoutes.namespaces.selector.matchLabels }
        : {}),
      kinds: (l.allowedRoutes?.kinds ?? [{ kind: "HTTPRoute" }]).map((k: Raw) => k.kind),
    })),
  };
}

function backendRef(b: Raw): BackendRef {
  const out: BackendRef = { name: b.name };
  if (b.group !== undefined) out.group = b.group;
  if (b.kind !== undefined) out.kind = b.kind;
  if (b.namespace !== undefined) out.namespace = b.namespace;
  if (b.port !== undefined) out.port = b.port;
  if (b.weight !== undefined) out.weight = b.weight;
  if (b.filters !== undefined) out.filters = b.filters.map(filter);
  return out;
}

function filter(f: Raw): HttpRouteFilter {
  if (f.type === "RequestMirror") {
    return { type: "RequestMirror", requestMirror: { ...f.requestMirror, backendRef: backendRef(f.requestMirror.backendRef) } };
  }
  return f as HttpRouteFilter;
}

function match(m: Raw): HttpRouteMatch {
  const out: HttpRouteMatch = {};
  if (m.path) out.path = { type: m.path.type ?? "PathPrefix", value: m.path.value ?? "/" };
  if (m.headers) out.headers = m.headers.map((h: Raw) => ({ type: h.type ?? "Exact", name: h.name, value: h.value }));
  if (m.queryParams) out.queryParams = m.queryParams.map((q: Raw) => ({ type: q.type ?? "Exact", name: q.name, value: q.value }));
  if (m.method) out.method = m.method;
  return out;
}

function httpRoute(doc: Raw): HttpRoute {
  const ns = doc.metadata.namespace ?? "default";
  const spec = doc.spec ?? {};
  return {
    name: doc.metadata.name,
    namespace: ns,
    parentRefs: (spec.parentRefs ?? []).map((p: Raw) => ({
      group: p.group ?? GATEWAY_GROUP,
      kind: p.kind ?? "Gateway",
      name: p.name,
      namespace: p.namespace ?? ns,
      ...(p.port !== undefined ? { port: p.port } : {}),
      ...(p.sectionName !== undefined ? { sectionName: p.sectionName } : {}),
    })),
    hostnames: spec.hostnames ?? [],
    rules: (spec.rules ?? []).map((r: Raw) => ({
      ...(r.name !== undefined ? { name: r.name } : {}),
      matches: (r.matches ?? []).map(match),
      filters: (r.filters ?? []).map(filter),
      backendRefs: (r.backendRefs ?? []).map(backendRef),
      ...(r.timeouts ? { timeouts: r.timeouts } : {}),
      ...(r.retry ? { retry: r.retry } : {}),
    })),
  };
}

function grant(doc: Raw): ReferenceGrant {
  return {
    name: doc.metadata.name,
    namespace: doc.metadata.namespace ?? "default",
    from: doc.spec.from.map((f: Raw) => ({ group: f.group, kind: f.kind, namespace: f.namespace })),
    to: doc.spec.to.map((t: Raw) => ({ group: t.group, kind: t.kind, ...(t.name ? { name: t.name } : {}) })),
  };
}

/** Reads manifests in order; a later object with the same kind, namespace and name replaces the earlier (kubectl apply). */
export function loadFixture(texts: string[]): ConformanceFixture {
  const byKey = new Map<string, Raw>();
  for (const text of texts) {
    for (const d of parseAllDocuments(text)) {
      const doc = d.toJS();
      if (!doc || !doc.kind || !doc.metadata) continue;
      byKey.set(`${doc.kind}/${doc.metadata.namespace ?? ""}/${doc.metadata.name}`, doc);
    }
  }
  const fx: ConformanceFixture = { services: [], gateways: [], routes: [], grants: [], namespaceLabels: new Map() };
  for (const doc of byKey.values()) {
    switch (doc.kind) {
      case "Service":
        fx.services.push(service(doc));
        break;
      case "Gateway":
        fx.gateways.push(gateway(doc));
        break;
      case "HTTPRoute":
        fx.routes.push(httpRoute(doc));
        break;
      case "ReferenceGrant":
        fx.grants.push(grant(doc));
        break;
      case "Namespace":
        fx.namespaceLabels.set(doc.metadata.name, doc.metadata.labels ?? {});
        break;
    }
  }
  return fx;
}

const isWildcard = (h: string) => h.startsWith("*.");

/** Gateway hostname intersection: null when none, [] when both sides allow any host. */
export function intersectHostnames(listener: string | undefined, route: string[]): string[] | null {
  if (!listener) return route;
  if (route.length === 0) return [listener];
  const out: string[] = [];
  for (const h of route) {
    if (h === listener) out.push(h);
    else if (isWildcard(listener) && !isWildcard(h) && hostnameMatches(listener, h)) out.push(h);
    else if (!isWildcard(listener) && isWildcard(h) && hostnameMatches(h, listener)) out.push(listener);
    else if (isWildcard(listener) && isWildcard(h)) {
      if (h.endsWith(listener.slice(1))) out.push(h);
      else if (listener.endsWith(h.slice(1))) out.push(listener);
    }
  }
  return out.length > 0 ? out : null;
}

function allowsNamespace(l: GatewayListener, gw: GatewayObject, routeNs: string, labels: Map<string, Labels>): boolean {
  if (l.from === "All") return true;
  if (l.from === "Same") return routeNs === gw.namespace;
  const have = labels.get(routeNs) ?? {};
  return Object.entries(l.selector ?? {}).every(([k, v]) => have[k] === v);
}

/** The waypoint view of one Gateway: its frontend Service and the routes re-attached to it. */
export interface MeshView {
  frontend: Service;
  routes: HttpRoute[];
  /** Set when the attached routes live in one other namespace: requests come from a client there. */
  sourceNamespace?: string;
}

/** Maps one Gateway and the routes attached to it onto a Service (see the file comment). */
export function gatewayAsService(fx: ConformanceFixture, namespace: string, name: string): MeshView {
  const gw = fx.gateways.find((g) => g.namespace === namespace && g.name === name);
  if (!gw) throw new Error(`no Gateway ${namespace}/${name} in the fixture`);
  const ports = new Map<number, string>();
  for (const l of gw.listeners) if (!ports.has(l.port)) ports.set(l.port, l.name);
  const frontend: Service = {
    name: gw.name,
    namespace: gw.namespace,
    hostname: `${gw.name}.${gw.namespace}.svc.cluster.local`,
    ports: [...ports].map(([port, pname]) => ({ name: pname, port, targetPort: port, protocol: "TCP" as const })),
    endpoints: [],
    labels: {},
  };
  const routes: HttpRoute[] = [];
  for (const r of fx.routes) {
    const perPort = new Map<number, { any: boolean; hosts: Set<string> }>();
    for (const p of r.parentRefs) {
      if (p.group !== GATEWAY_GROUP || p.kind !== "Gateway" || p.name !== gw.name || p.namespace !== gw.namespace) continue;
      for (const l of gw.listeners) {
        if (p.sectionName !== undefined && p.sectionName !== l.name) continue;
        if (p.port !== undefined && p.port !== l.port) continue;
        if (l.protocol !== "HTTP" || !l.kinds.includes("HTTPRoute")) continue;
        if (!allowsNamespace(l, gw, r.namespace, fx.namespaceLabels)) continue;
        const hosts = intersectHostnames(l.hostname, r.hostnames);
        if (hosts === null) continue;
        const slot = perPort.get(l.port) ?? { any: false, hosts: new Set<string>() };
        if (hosts.length === 0) slot.any = true;
        for (const h of hosts) slot.hosts.add(h);
        perPort.set(l.port, slot);
      }
    }
    for (const [port, slot] of perPort) {
      routes.push({
        ...r,
        parentRefs: [{ group: "", kind: "Service", name: gw.name, namespace: gw.namespace, port }],
        hostnames: slot.any ? [] : [...slot.hosts],
      });
    }
  }
  const foreign = [...new Set(routes.map((r) => r.namespace).filter((ns) => ns !== gw.namespace))];
  return { frontend, routes, ...(foreign.length === 1 ? { sourceNamespace: foreign[0] } : {}) };
}
