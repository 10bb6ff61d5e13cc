/**
 * `mesh describe`: everything the mesh knows about one Pod, WorkloadEntry or Service, in one answer. From
 * the configuration alone (offline), or with live facts from a running control plane (see ./live.ts):
 * is it captured and why, which ztunnel manages it (connected? ready? synced?), its identity and
 * certificate expiry, the Services it backs, the waypoint that serves it and through which label, the
 * policies that apply and where each is enforced, its PeerAuthentication mode, and its recent connections.
 *
 * Pure: the same placement and attachment functions the proxies run, no I/O.
 */
import { describeServiceEntry, type ServiceEntryDescription } from "./service_entry.ts";
import { ErrorCode, MeshError } from "../core/mod.ts";
import type { MeshModel, ModelIndex, Service, Workload } from "../model/mod.ts";
import { indexModel, peerAuthenticationChain, peerAuthenticationModeFor } from "../model/mod.ts";
import { routesForService } from "../route/mod.ts";
import { connectionsFor } from "./connections.ts";
import { certificateSummary, ztunnelSummary } from "./facts.ts";
import type { LiveFacts } from "./live.ts";
import { inboundPaths, placePath, policyRows, servicePortsText } from "./policies.ts";
import type {
  CaptureSummary,
  PeerAuthenticationSummary,
  ServiceDescription,
  ServiceRef,
  WorkloadDescription,
} from "./types.ts";
import { serviceWaypointNotes, waypointRef, workloadWaypoints } from "./waypoints.ts";
import { editDistance } from "../core/mod.ts";

export const DATAPLANE_LABEL = "istio.io/dataplane-mode";

export type DescribeTarget =
  | { kind: "Pod" | "WorkloadEntry"; namespace: string; name: string }
  | { kind: "Service"; namespace: string; name: string }
  | { kind: "ServiceEntry"; namespace: string; name: string };

export interface DescribeOptions {
  live?: LiveFacts;
  /** How many recent connections to list (default 20). */
  connections?: number;
}

/**
 * Parses the command line's target: `pod NS/NAME`, `workloadentry NS/NAME`, `service NAME.NS` (also
 * NS/NAME, and NAME.NS.svc.cluster.local).
 * @throws MeshError (MESH_USAGE) naming the expected form.
 */
export function parseTarget(kind: string, ref: string): DescribeTarget {
  const k = kind.toLowerCase();
  if (k === "pod" || k === "pods" || k === "po" || k === "workloadentry" || k === "workloadentries" || k === "we") {
    const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-.a-z0-9]*)$/.exec(ref);
    const what = k.startsWith("w") ? "WorkloadEntry" : "Pod";
    if (!m) throw new MeshError(ErrorCode.Usage, `Invalid ${what} "${ref}": expected NAMESPACE/NAME, e.g. ambient-ns/product-api`);
    return { kind: what, namespace: m[1]!, name: m[2]! };
  }
  if (k === "serviceentry" || k === "serviceentries" || k === "se") {
    const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-.a-z0-9]*)$/.exec(ref);
    if (!m) throw new MeshError(ErrorCode.Usage, `Invalid ServiceEntry "${ref}": expected NAMESPACE/NAME, e.g. shop/partner-api`);
    return { kind: "ServiceEntry", namespace: m[1]!, name: m[2]! };
  }
  if (k === "service" || k === "services" || k === "svc") {
    const slash = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9]*)$/.exec(ref);
    if (slash) return { kind: "Service", namespace: slash[1]!, name: slash[2]! };
    const m = /^([a-z0-9][-a-z0-9]*)\.([a-z0-9][-a-z0-9]*)(\.svc(\.[-.a-z0-9]+)?)?$/.exec(ref);
    if (!m) throw new MeshError(ErrorCode.Usage, `Invalid Service "${ref}": expected NAME.NAMESPACE, e.g. product-api.ambient-ns`);
    return { kind: "Service", namespace: m[2]!, name: m[1]! };
  }
  throw new MeshError(ErrorCode.Usage, `Cannot describe "${kind}": use pod NAMESPACE/NAME, service NAME.NAMESPACE, workloadentry NAMESPACE/NAME or serviceentry NAMESPACE/NAME`);
}

/** Describes a target of a model (indexed once per call when given a model). */
export function describe(model: MeshModel | ModelIndex, target: DescribeTarget, opts: DescribeOptions = {}): WorkloadDescription | ServiceDescription | ServiceEntryDescription {
  const index = "workloadByUid" in model ? model : indexModel(model);
  if (target.kind === "ServiceEntry") {
    const se = (index.model.serviceEntries ?? []).find((x) => x.namespace === target.namespace && x.name === target.name);
    if (!se) throw notFound(index, target);
    return describeServiceEntry(index, se);
  }
  if (target.kind === "Service") {
    const s = index.serviceByName(target.namespace, target.name);
    if (!s) throw notFound(index, target);
    return describeService(index, s, opts);
  }
  const w = index.workloadByUid(`${target.kind}/${target.namespace}/${target.name}`);
  if (!w) throw notFound(index, target);
  return describeWorkload(index, w, opts);
}

function notFound(index: ModelIndex, t: DescribeTarget): MeshError {
  const names = t.kind === "ServiceEntry"
    ? (index.model.serviceEntries ?? []).map((s) => `${s.namespace}/${s.name}`)
    : t.kind === "Service"
    ? index.model.services.map((s) => `${s.name}.${s.namespace}`)
    : index.model.workloads.filter((w) => w.kind === t.kind).map((w) => `${w.namespace}/${w.name}`);
  const shown = t.kind === "Service" ? `${t.name}.${t.namespace}` : `${t.namespace}/${t.name}`;
  const near = names
    .map((n) => ({ n, d: editDistance(n, shown) }))
    .filter((x) => x.d <= Math.max(3, shown.length / 4))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => x.n);
  return new MeshError(
    ErrorCode.ConfigNotFound,
    `No ${t.kind} ${shown} in the configuration${near.length ? `: did you mean ${near.join(", ")}?` : names.length ? ` (it has ${names.length}: ${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""})` : ""}`,
  );
}

function sourceText(s: { file: string; line: number; col: number } | undefined): string | null {
  return s ? `${s.file}:${s.line}:${s.col}` : null;
}

function basedOn(live: LiveFacts | undefined): string {
  if (!live) return "the configuration only (offline: no proxy was asked)";
  return live.latestVersion !== undefined ? `${live.source}, configuration version ${live.latestVersion}` : live.source;
}

function captureOf(index: ModelIndex, w: Workload, ztunnelOk: boolean | null): CaptureSummary {
  const ns = index.namespace(w.namespace);
  const nsLabel = ns?.labels[DATAPLANE_LABEL] ?? null;
  const own = w.labels[DATAPLANE_LABEL] ?? null;
  const reasons: string[] = [];
  if (own === "none") reasons.push(`the ${w.kind} opts out: it is labelled ${DATAPLANE_LABEL}=none`);
  else if (own === "ambient") reasons.push(`the ${w.kind} itself is labelled ${DATAPLANE_LABEL}=ambient`);
  else if (!ns) reasons.push(`namespace ${w.namespace} is not declared, so it carries no ${DATAPLANE_LABEL} label (declare it with ${DATAPLANE_LABEL}: ambient to enroll it)`);
  else if (ns.ambient) reasons.push(`namespace ${w.namespace} is labelled ${DATAPLANE_LABEL}=ambient`);
  else if (nsLabel) reasons.push(`namespace ${w.namespace} is labelled ${DATAPLANE_LABEL}=${nsLabel}, not ambient`);
  else reasons.push(`namespace ${w.namespace} has no ${DATAPLANE_LABEL} label (label it ${DATAPLANE_LABEL}=ambient to enroll it)`);
  if (!w.node) reasons.push(`it has no node (${w.kind === "Pod" ? "spec.nodeName" : "label mesh.dev/node"} unset): no ztunnel owns it`);
  else if (w.ambient) reasons.push(`its node is ${w.node}: the ztunnel there captures its traffic`);
  if (!w.addresses.length) reasons.push(`it has no address yet (${w.kind === "Pod" ? "status.podIP" : "spec.address"}): nothing can be captured`);
  const captured = w.ambient && w.node !== "" && w.addresses.length > 0;
  if (captured && ztunnelOk === false) {
    reasons.push(`but the ztunnel of ${w.node} is not connected and ready: its captured traffic is refused until it is back (never sent in plaintext)`);
  }
  return {
    captured,
    reasons,
    namespace: { name: w.namespace, declared: ns !== undefined, label: nsLabel, enrolled: ns?.ambient ?? false },
    workloadLabel: own,
    effective: ztunnelOk === null ? null : captured && ztunnelOk,
  };
}

function peerAuthOf(index: ModelIndex, w: Workload): PeerAuthenticationSummary {
  const mode = peerAuthenticationModeFor(index, w);
  const chain = peerAuthenticationChain(index, w);
  const levels: [string, typeof chain.workload][] = [["selector", chain.workload], ["namespace", chain.namespace], ["mesh-wide", chain.root]];
  const decider = levels.find(([, pa]) => pa && pa.mode !== "UNSET");
  const decidedBy = decider ? `${decider[1]!.namespace}/${decider[1]!.name} (${decider[0]})` : "default (no PeerAuthentication sets a mode)";
  const ports = Object.entries(chain.workload?.portLevelMtls ?? {}).map(([p]) => ({ port: Number(p), mode: peerAuthenticationModeFor(index, w, Number(p)) }));
  const meaning = !w.ambient
    ? "not in the mesh: no ztunnel applies it"
    : mode === "STRICT"
    ? "plaintext from outside the mesh is refused by its ztunnel (only mTLS over HBONE)"
    : mode === "DISABLE"
    ? "plaintext from outside the mesh is accepted (DISABLE acts as PERMISSIVE for ambient workloads)"
    : "plaintext from outside the mesh is accepted by its ztunnel (port 15006), mesh traffic is mTLS";
  return { mode, decidedBy, ports, meaning };
}

function serviceRef(index: ModelIndex, s: Service, w: Workload | undefined, live: LiveFacts | undefined): ServiceRef {
  return {
    host: `${s.name}.${s.namespace}`,
    namespace: s.namespace,
    name: s.name,
    vip: s.vip ?? null,
    ports: servicePortsText(s, w),
    waypoint: s.waypoint ? waypointRef(index, s.waypoint, s, `Service ${s.name}.${s.namespace}`, live) : null,
  };
}

export function describeWorkload(index: ModelIndex, w: Workload, opts: DescribeOptions = {}): WorkloadDescription {
  const live = opts.live;
  const services = index.servicesOfWorkload(w.uid);
  const zt = w.node ? ztunnelSummary(w.node, live) : null;
  const ztOk = live?.proxies ? (zt ? zt.connected === true && zt.ready !== false : false) : null;
  const capture = captureOf(index, w, ztOk);
  const { waypoints, notes } = workloadWaypoints(index, w, services, live);
  const paths = inboundPaths(index, w, services);
  const warnings: string[] = [];
  for (const wp of waypoints) if (!wp.exists) warnings.push(`waypoint ${wp.gateway} (${wp.via}) does not exist: every connection ${wp.servesFor === "the workload itself (traffic to its address)" ? "to it" : `through ${wp.servesFor}`} is denied`);
  if (live?.proxies && zt && zt.connected === false && capture.captured) warnings.push(`the ztunnel of ${w.node} is not connected to the control plane`);
  if (zt?.nack) warnings.push(`the ztunnel of ${w.node} refused configuration v${zt.nack.version}: ${zt.nack.reason}`);
  const cert = certificateSummary(w.identity, `ztunnel/${w.node}`, live);
  if (live?.proxies && capture.captured && cert.issued === false) warnings.push(`no certificate issued for ${w.identity} yet: its ztunnel cannot serve it`);
  if (cert.expires?.startsWith("EXPIRED")) warnings.push(`the certificate of ${w.identity} has expired`);
  return {
    kind: w.kind,
    namespace: w.namespace,
    name: w.name,
    uid: w.uid,
    addresses: w.addresses,
    node: w.node,
    serviceAccount: w.serviceAccount,
    identity: w.identity,
    ready: w.ready,
    labels: w.labels,
    source: sourceText(w.source),
    capture,
    ztunnel: zt,
    certificate: cert,
    services: services.map((s) => serviceRef(index, s, w, live)),
    waypoints,
    waypointNotes: notes,
    inbound: paths.map((p) => p.path),
    policies: policyRows(index, w, paths),
    peerAuthentication: peerAuthOf(index, w),
    connections: live?.accessLog
      ? connectionsFor(live.accessLog, {
        namespace: w.namespace,
        workloads: [w.name],
        addresses: w.addresses,
        serviceHosts: services.map((s) => s.hostname),
      }, opts.connections)
      : null,
    basedOn: basedOn(live),
    warnings,
  };
}

export function describeService(index: ModelIndex, s: Service, opts: DescribeOptions = {}): ServiceDescription {
  const live = opts.live;
  const endpoints = s.endpoints.map((e) => index.workloadByUid(e.workloadUid)).filter((w): w is Workload => w !== undefined);
  const warnings: string[] = [];
  if (!s.endpoints.length) warnings.push(`no workload matches its selector${s.selector ? ` (${Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(",")})` : ""}: connections to it fail`);
  const rowsByPolicy = new Map<string, ReturnType<typeof policyRows>[number]>();
  for (const w of endpoints) {
    for (const r of policyRows(index, w, [placePath(index, w, s)])) {
      const key = `${r.kind}|${r.policy}`;
      const prev = rowsByPolicy.get(key);
      if (!prev) rowsByPolicy.set(key, { ...r, enforcedAt: r.enforcedAt.map((x) => x.replace(/( \(traffic to Service [^)]*\))$/, "")) });
      else {
        for (const x of r.enforcedAt) {
          const short = x.replace(/( \(traffic to Service [^)]*\))$/, "");
          if (!prev.enforcedAt.includes(short)) prev.enforcedAt.push(short);
        }
      }
    }
  }
  const wp = s.waypoint ? waypointRef(index, s.waypoint, s, `Service ${s.name}.${s.namespace}`, live) : null;
  if (wp && !wp.exists) warnings.push(`waypoint ${wp.gateway} does not exist: every connection to the Service is denied`);
  const routes = index.model.httpRoutes
    .filter((r) => s.ports.some((p) => routesForService([r], s, p.port).length > 0 || routesForService([r], s, p.port, { sourceNamespace: r.namespace }).length > 0))
    .map((r) => ({
      route: `${r.namespace}/${r.name}`,
      effect: wp?.exists ? `applied by waypoint ${wp.gateway}` : "not applied: HTTPRoutes act at a waypoint, and this Service has none",
      source: sourceText(r.source),
    }));
  return {
    kind: "Service",
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vip: s.vip ?? null,
    ports: servicePortsText(s),
    selector: s.selector ?? null,
    labels: s.labels,
    source: sourceText(s.source),
    waypoint: wp,
    waypointNotes: serviceWaypointNotes(index, s),
    endpoints: endpoints.map((w) => ({
      workload: `${w.namespace}/${w.name}`,
      kind: w.kind,
      node: w.node,
      addresses: w.addresses,
      ports: servicePortsText(s, w),
      captured: w.ambient && w.node !== "" && w.addresses.length > 0,
      ready: w.ready,
      path: placePath(index, w, s).path,
    })),
    policies: [...rowsByPolicy.values()],
    routes,
    connections: live?.accessLog
      ? connectionsFor(live.accessLog, {
        namespace: s.namespace,
        workloads: [],
        addresses: s.vip ? [s.vip] : [],
        serviceHosts: [s.hostname],
      }, opts.connections)
      : null,
    basedOn: basedOn(live),
    warnings,
  };
}
