/**
 * Lint rules over the normalized model, reported at the exact place in the source that causes them.
 * Schema-level rules (unknown kind/field, apiVersion, duplicates, ignored kinds) live in ./load.ts; the
 * list of every rule id with its meaning is RULES in ./rules.ts.
 */
import type { Labels, MeshModel, PolicyScope, Service, ServiceEntry, Waypoint, Workload } from "../model/mod.ts";
import type { Diagnostic } from "./diagnostic.ts";
import type { ControllerEntry, Entry, KindName } from "./entry.ts";
import { isKind } from "./entry.ts";
import { conditionKeyKind, l7Attributes } from "./l7.ts";
import {
  bind,
  type BindContext,
  bindContext,
  isWaypointGateway,
  LABEL_USE_WAYPOINT,
  LABEL_USE_WAYPOINT_NAMESPACE,
  type Normalized,
  WAYPOINT_CLASS,
} from "./normalize.ts";
import { policyEnforcement, resolveTargetPort, scopeSelectsWorkload } from "../model/mod.ts";
import { isIpAddress, isIpBlock, isPortValue } from "./schema/mod.ts";
import { LabelIndex, selectorEvaluations } from "./label_index.ts";
import { egressRules } from "./lint_egress.ts";

type Path = (string | number)[];

class Reporter {
  readonly out: Diagnostic[] = [];
  at(e: Entry, path: Path, severity: Diagnostic["severity"], rule: string, message: string, key = false): void {
    this.out.push({ file: e.obj.file, ...e.obj.locate(path, { key }), severity, message, rule });
  }
}

export interface LintOptions {
  fileMode: boolean;
  /** Deployments and other controllers: not in the model, but their pod templates show intent. */
  controllers?: readonly ControllerEntry[];
}

/**
 * Every rule over one normalized model. Rules look objects up through maps and the label index, never by
 * scanning every workload or Service for each Service, policy or route: a mesh of 10 000 workloads is
 * rebuilt on every configuration change.
 */
export function lint(normalized: Normalized, entries: readonly Entry[], opts: LintOptions): Diagnostic[] {
  const { model, origins } = normalized;
  const r = new Reporter();
  // Every model object comes from one entry of its kind (normalize recorded which).
  const find: Find = (o, kind) => {
    const e = origins.get(o);
    return e && isKind(e, kind) ? e : undefined;
  };
  const bc = bindContext(model);
  const templates = (opts.controllers ?? []).map((e) => templateWorkload(e, bc));
  const index = templates.length ? new LabelIndex([...model.workloads, ...templates]) : normalized.workloads;
  const lookups = new Lookups(model, index);

  serviceRules(r, model, find, index);
  gatewayRules(r, entries);
  waypointLabelRules(r, model, entries);
  policyRules(r, model, entries, find, lookups);
  addressRules(r, model, origins);
  waypointAccountRules(r, model, find);
  routeRules(r, model, find, lookups);
  if (opts.fileMode) workloadRules(r, model, find);
  egressRules(r, model, find, entries);
  return r.out;
}

type Find = <K extends KindName>(modelObject: object, kind: K) => Extract<Entry, { kind: K }> | undefined;

/** Lookups several rules share, each built on first use (most configurations need few of them). */
class Lookups {
  #servicesOf?: Map<string, Service[]>;
  #services?: Map<string, Service>;
  #serviceEntries?: Map<string, ServiceEntry>;
  #waypoints?: Set<string>;
  #firstWaypointIn?: Map<string, Waypoint>;
  readonly #reach = new Map<string, Reach>();

  constructor(readonly model: MeshModel, readonly index: LabelIndex<Workload>) {}

  /** The Services whose selector selects a workload (or a controller's pod template), in model order. */
  servicesOf(uid: string): Service[] {
    if (!this.#servicesOf) {
      const m = new Map<string, Service[]>();
      for (const s of this.model.services) {
        if (!s.selector) continue;
        for (const w of this.index.select(s.namespace, s.selector)) {
          const l = m.get(w.uid);
          if (l) l.push(s);
          else m.set(w.uid, [s]);
        }
      }
      this.#servicesOf = m;
    }
    return this.#servicesOf.get(uid) ?? [];
  }

  service(namespace: string, name: string): Service | undefined {
    this.#services ??= firstByKey(this.model.services);
    return this.#services.get(`${namespace}/${name}`);
  }

  serviceEntry(namespace: string, name: string): ServiceEntry | undefined {
    this.#serviceEntries ??= firstByKey(this.model.serviceEntries ?? []);
    return this.#serviceEntries.get(`${namespace}/${name}`);
  }

  isWaypoint(namespace: string, name: string): boolean {
    this.#waypoints ??= new Set(this.model.waypoints.map((w) => `${w.namespace}/${w.name}`));
    return this.#waypoints.has(`${namespace}/${name}`);
  }

  firstWaypointIn(namespace: string): Waypoint | undefined {
    if (!this.#firstWaypointIn) {
      const m = new Map<string, Waypoint>();
      for (const w of this.model.waypoints) if (!m.has(w.namespace)) m.set(w.namespace, w);
      this.#firstWaypointIn = m;
    }
    return this.#firstWaypointIn.get(namespace);
  }

  /**
   * The workloads a root, namespace or selector scope reaches, and which of them no waypoint serves.
   * Policies with the same scope in the same namespace share one answer.
   */
  reach(scope: Exclude<PolicyScope, { kind: "targetRefs" }>, namespace: string): Reach {
    const mc = this.model.meshConfig;
    const inRoot = namespace === mc.rootNamespace;
    const where = inRoot ? "\u0000" : namespace;
    const key = scope.kind === "selector" ? `${where}\u0000${JSON.stringify(scope.matchLabels)}` : where;
    let reach = this.#reach.get(key);
    if (!reach) {
      // The index narrows by namespace and label; the model's attachment rule decides.
      const pool = scope.kind === "selector"
        ? this.index.select(inRoot ? undefined : namespace, scope.matchLabels)
        : this.index.inNamespace(inRoot ? undefined : namespace);
      selectorEvaluations.count += pool.length;
      const workloads = pool.filter((w) => scopeSelectsWorkload(scope, namespace, w, mc));
      let unserved: Workload[] | undefined;
      reach = {
        workloads,
        unserved: () =>
          unserved ??= workloads.filter((w) => w.waypoint === undefined && !this.servicesOf(w.uid).some((s) => s.waypoint)),
      };
      this.#reach.set(key, reach);
    }
    return reach;
  }
}

interface Reach {
  workloads: Workload[];
  unserved(): Workload[];
}

/** By "namespace/name"; the first object wins, as Array.find would pick it. */
function firstByKey<T extends { namespace: string; name: string }>(list: readonly T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const o of list) {
    const k = `${o.namespace}/${o.name}`;
    if (!m.has(k)) m.set(k, o);
  }
  return m;
}

/**
 * A Deployment's (or other controller's) pod template as a workload without address or node, so that
 * Services and policies written for it are checked as the user meant them.
 */
function templateWorkload(e: ControllerEntry, bc: BindContext): Workload {
  const spec = e.kind === "CronJob" ? field(field(e.value.spec, "jobTemplate"), "spec") : e.value.spec;
  const tpl = field(spec, "template");
  const labels = stringValues(field(field(tpl, "metadata"), "labels"));
  const sa = field(field(tpl, "spec"), "serviceAccountName");
  const w: Workload = {
    uid: `${e.kind}/${e.namespace}/${e.name}`,
    kind: e.kind as Workload["kind"], // only displayed
    name: e.name,
    namespace: e.namespace,
    serviceAccount: typeof sa === "string" ? sa : "default",
    identity: "",
    node: "",
    addresses: [],
    labels,
    ambient: false,
    ports: [],
    ready: false,
  };
  const wp = bind(labels, e.namespace, "workload", "pod-label", bc);
  if (wp) w.waypoint = wp;
  return w;
}

/** `x[key]` when x is an object (controllers are not validated: any field may be anything). */
function field(x: unknown, key: string): unknown {
  return typeof x === "object" && x !== null ? (x as Record<string, unknown>)[key] : undefined;
}

/** A label map's string values (the only ones a selector can match). */
function stringValues(x: unknown): Labels {
  const out: Labels = {};
  if (typeof x !== "object" || x === null) return out;
  for (const [k, v] of Object.entries(x)) if (typeof v === "string") out[k] = v;
  return out;
}

// ---- Services ----

function serviceRules(r: Reporter, model: MeshModel, find: Find, index: LabelIndex<Workload>): void {
  for (const s of model.services) {
    const e = find(s, "Service");
    if (!e || !s.selector) continue;
    const matching = index.select(s.namespace, s.selector);
    const selected = matching.filter((w) => w.kind === "Pod" || w.kind === "WorkloadEntry");
    if (!selected.length) {
      // Its Deployment was reported as ignored already; one warning is enough.
      if (matching.length) continue;
      const sel = Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(",");
      r.at(e, ["spec", "selector"], "warning", "service-selects-nothing", `Service ${s.namespace}/${s.name} selects no Pod or WorkloadEntry (selector ${sel}): it has no endpoints`, true);
      continue;
    }
    s.ports.forEach((sp, i) => {
      let ok: boolean;
      let shown: Workload[];
      if (typeof sp.targetPort === "string") {
        // A named port nobody declares leaves the port without any endpoint.
        ok = selected.some((w) => resolveTargetPort(sp, w) !== undefined);
        shown = selected;
      } else {
        // Only Pods that declare their ports can tell; WorkloadEntries take any port.
        const known = selected.filter((w) => w.kind === "Pod" && w.ports.length > 0);
        if (known.length < selected.length && selected.some((w) => w.kind === "WorkloadEntry")) return;
        if (!known.length) return;
        ok = known.some((w) => w.ports.some((p) => p.port === sp.targetPort));
        shown = known;
      }
      if (ok) return;
      const written = e.value.spec?.ports?.[i];
      const path: Path = written?.targetPort !== undefined ? ["spec", "ports", i, "targetPort"] : ["spec", "ports", i, "port"];
      const what = typeof sp.targetPort === "string" ? `a port named "${sp.targetPort}"` : `port ${sp.targetPort}`;
      const names = shown.slice(0, 3).map((w) => `${w.kind} ${w.name} (${w.ports.length ? w.ports.map((p) => (p.name ? `${p.name}:${p.port}` : p.port)).join(", ") : "no ports"})`).join("; ");
      r.at(e, path, "warning", "target-port", `Service ${s.namespace}/${s.name} port ${sp.port} targets ${what}, which no selected workload exposes: ${names}`);
    });
  }
}

// ---- Gateways ----

const CLASS_ANNOTATION = "gateway.networking.k8s.io/gateway-class";
const BIND_HINT = "label the namespace, Service or Pod that should use it with istio.io/use-waypoint: <gateway name>";

function gatewayRules(r: Reporter, entries: readonly Entry[]): void {
  for (const e of entries) {
    if (e.kind !== "Gateway") continue;
    const cls = e.value.spec.gatewayClassName;
    const annotations = e.value.metadata.annotations ?? {};
    const hasAnnotation = CLASS_ANNOTATION in annotations;
    const hbone = (e.value.spec.listeners ?? []).some((l) => l.protocol === "HBONE");
    (e.value.spec.addresses ?? []).forEach((a, i) => {
      if ((a.type === undefined || a.type === "IPAddress") && !isIpAddress(a.value)) {
        r.at(e, ["spec", "addresses", i, "value"], "error", "invalid-value", `Invalid value for "spec.addresses[${i}].value" in Gateway: "${a.value}" is not an IP address (type IPAddress)`);
      }
    });
    if (hasAnnotation && cls !== WAYPOINT_CLASS) {
      r.at(e, ["metadata", "annotations", CLASS_ANNOTATION], "error", "waypoint-class", `Gateway ${e.namespace}/${e.name}: the annotation ${CLASS_ANNOTATION} does not make a waypoint; set spec.gatewayClassName: ${WAYPOINT_CLASS} and ${BIND_HINT}`, true);
      if (cls === undefined) continue;
    }
    if (cls === undefined) {
      r.at(e, ["spec"], "error", "missing-field", `Missing field "spec.gatewayClassName" in Gateway ${e.namespace}/${e.name}: a waypoint needs gatewayClassName: ${WAYPOINT_CLASS}`, true);
    } else if (hbone && cls !== WAYPOINT_CLASS) {
      // An HBONE listener says "waypoint": the class is the mistake (the seed article's Gateway).
      r.at(e, ["spec", "gatewayClassName"], "error", "waypoint-class", `Gateway ${e.namespace}/${e.name} has gatewayClassName "${cls}"${cls === "istio" ? " (Istio's ingress gateway class)" : ""}: a waypoint needs gatewayClassName: ${WAYPOINT_CLASS}; then ${BIND_HINT}`);
    } else if (cls === "istio") {
      r.at(e, ["spec", "gatewayClassName"], "warning", "gateway-class", `Gateway ${e.namespace}/${e.name} has gatewayClassName "istio", Istio's ingress gateway class, which mesh does not run: it is ignored. For a waypoint use gatewayClassName: ${WAYPOINT_CLASS}`);
    } else if (cls !== WAYPOINT_CLASS) {
      r.at(e, ["spec", "gatewayClassName"], "warning", "gateway-class", `Gateway ${e.namespace}/${e.name} has gatewayClassName "${cls}": mesh only runs waypoints (gatewayClassName: ${WAYPOINT_CLASS}), so this Gateway is ignored`);
    } else if (!hbone) {
      r.at(e, ["spec", "listeners"], "warning", "waypoint-listener", `Waypoint ${e.namespace}/${e.name} has no HBONE listener; mesh listens on 15008 (HBONE) anyway. Declare: listeners: [{name: mesh, port: 15008, protocol: HBONE}]`, true);
    }
  }
}

// ---- istio.io/use-waypoint labels ----

const LABELLED_KINDS = new Set(["Namespace", "Service", "Pod", "WorkloadEntry", "ServiceEntry"]);

function waypointLabelRules(r: Reporter, model: MeshModel, entries: readonly Entry[]): void {
  const waypoints = new Map(model.waypoints.map((w) => [`${w.namespace}/${w.name}`, w]));
  const gateways = new Map(entries.filter((e) => e.kind === "Gateway").map((e) => [`${e.namespace}/${e.name}`, e]));
  for (const e of entries) {
    if (!LABELLED_KINDS.has(e.kind)) continue;
    const own = e.value.metadata?.labels;
    const spec = e.kind === "WorkloadEntry" ? e.value.spec.labels : undefined;
    if (!own?.[LABEL_USE_WAYPOINT] && !spec?.[LABEL_USE_WAYPOINT]) continue; // most objects
    const spots: { labels: Record<string, string>; path: Path }[] = [
      { labels: own ?? {}, path: ["metadata", "labels"] },
    ];
    if (e.kind === "WorkloadEntry") spots.push({ labels: spec ?? {}, path: ["spec", "labels"] });
    for (const { labels, path } of spots) {
      const value = labels[LABEL_USE_WAYPOINT];
      if (!value || value === "none") continue;
      const ownNs = e.kind === "Namespace" ? e.name : e.namespace;
      const key = `${labels[LABEL_USE_WAYPOINT_NAMESPACE] || ownNs}/${value}`;
      const at: Path = [...path, LABEL_USE_WAYPOINT];
      const who = e.kind === "Namespace" ? `Namespace ${e.name}` : `${e.kind} ${e.namespace}/${e.name}`;
      const w = waypoints.get(key);
      if (!w) {
        const g = gateways.get(key);
        const why = g
          ? `Gateway ${key} is not a waypoint (its gatewayClassName must be ${WAYPOINT_CLASS})`
          : `there is no Gateway ${key}; create one with gatewayClassName: ${WAYPOINT_CLASS}`;
        r.at(e, at, "error", "missing-waypoint", `${who} is labelled ${LABEL_USE_WAYPOINT}=${value}, but ${why}`);
        continue;
      }
      const target = e.kind === "Service" || e.kind === "ServiceEntry" ? "service" : e.kind === "Namespace" ? undefined : "workload";
      if (target && w.waypointFor !== "all" && w.waypointFor !== target) {
        r.at(e, at, "warning", "waypoint-for", `${who} is labelled ${LABEL_USE_WAYPOINT}=${value}, but waypoint ${key} serves ${w.waypointFor === "none" ? "no traffic" : `${w.waypointFor}s only`} (label istio.io/waypoint-for); the label has no effect`);
      }
    }
  }
}

// ---- policies ----

function policyRules(r: Reporter, model: MeshModel, entries: readonly Entry[], find: Find, lookups: Lookups): void {
  const misclassedIn = new Map<string, string>();
  for (const g of entries) {
    if (g.kind === "Gateway" && !isWaypointGateway(g) && !misclassedIn.has(g.namespace)) misclassedIn.set(g.namespace, g.name);
  }
  const mc = model.meshConfig;
  const withEntries = <K extends KindName, P extends object>(kind: K, list: readonly P[]) =>
    list.flatMap((p) => {
      const e = find(p, kind);
      return e ? [{ kind, p, e }] : [];
    });
  const policies = [
    ...withEntries("AuthorizationPolicy", model.authorizationPolicies),
    ...withEntries("RequestAuthentication", model.requestAuthentications),
    ...withEntries("PeerAuthentication", model.peerAuthentications),
  ];
  for (const policy of policies) {
    const { kind, p, e } = policy;
    // Only whether they are there matters here (a PeerAuthentication has no targetRefs: an unknown field).
    const spec: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown } = e.value.spec ?? {};
    const name = `${kind} ${p.namespace}/${p.name}`;
    const hasRefs = spec.targetRefs !== undefined || spec.targetRef !== undefined;
    if (spec.selector !== undefined && hasRefs) {
      const key = spec.targetRefs !== undefined ? "targetRefs" : "targetRef";
      r.at(e, ["spec", key], "error", "selector-and-targetrefs", `${name} sets both selector and ${key}: use one (targetRefs for a Service or waypoint, selector for workloads)`, true);
    }

    // What the policy reaches: workloads (selector/namespace/root) or Services and waypoints (targetRefs).
    let reach: Reach | undefined;
    const unservedRefs: { path: Path; what: string }[] = [];
    if (p.scope.kind === "targetRefs") {
      const refsPath: Path = spec.targetRefs !== undefined ? ["spec", "targetRefs"] : ["spec", "targetRef"];
      p.scope.targetRefs.forEach((ref, i) => {
        const path = spec.targetRefs !== undefined ? [...refsPath, i] : refsPath;
        const ns = ref.namespace || p.namespace;
        if (ref.kind === "Service" && ref.group === "") {
          const s = lookups.service(ns, ref.name);
          if (!s) r.at(e, path, "warning", "policy-selects-nothing", `${name} targets Service ${ns}/${ref.name}, which does not exist`);
          else if (!s.waypoint) unservedRefs.push({ path, what: `Service ${ns}/${ref.name}` });
        } else if (ref.kind === "ServiceEntry" && ref.group === "networking.istio.io") {
          const se = lookups.serviceEntry(ns, ref.name);
          if (!se) r.at(e, path, "warning", "policy-selects-nothing", `${name} targets ServiceEntry ${ns}/${ref.name}, which does not exist`);
          else if (!se.waypoint) unservedRefs.push({ path, what: `ServiceEntry ${ns}/${ref.name}` });
        } else if (ref.kind === "Gateway" && ref.group === "gateway.networking.k8s.io") {
          if (!lookups.isWaypoint(ns, ref.name)) {
            r.at(e, path, "warning", "policy-selects-nothing", `${name} targets Gateway ${ns}/${ref.name}, which is not a waypoint in this configuration`);
          }
        } else if (!(ref.kind === "GatewayClass" && ref.name === WAYPOINT_CLASS)) {
          r.at(e, path, "warning", "policy-selects-nothing", `${name} targets ${ref.group ? `${ref.group}/` : ""}${ref.kind} ${ref.name}: mesh attaches policies to a Service (group ""), a ServiceEntry (group networking.istio.io) or a waypoint Gateway (group gateway.networking.k8s.io) only`);
        }
      });
    } else if (p.scope.kind === "selector") {
      reach = lookups.reach(p.scope, p.namespace);
      if (!reach.workloads.length) {
        const sel = Object.entries(p.scope.matchLabels).map(([k, v]) => `${k}=${v}`).join(",");
        r.at(e, ["spec", "selector"], "warning", "policy-selects-nothing", `${name} selects no workload (selector ${sel}${mc.rootNamespace === p.namespace ? "" : ` in namespace ${p.namespace}`})`, true);
      }
    }
    // Which workloads the policy reaches matters only to the rules below that need a waypoint.
    const scope = p.scope;
    const reached = () => scope.kind === "targetRefs" ? NOWHERE : reach ??= lookups.reach(scope, p.namespace);
    const misclassed = misclassedIn.get(p.namespace);

    if (policy.kind === "AuthorizationPolicy") {
      const ap = policy.p;
      ap.rules.forEach((rule, i) =>
        rule.when?.forEach((c, j) => {
          if (conditionKeyKind(c.key) !== "unknown") return;
          r.at(e, ["spec", "rules", i, "when", j, "key"], "warning", "unknown-condition", `${name}: condition key "${c.key}" is not one mesh knows (source.*, destination.*, remote.ip, connection.sni, request.headers[...], request.auth.*): it never matches in an ALLOW rule and always matches in a DENY rule`);
        })
      );
      conditionValueRules(r, policy.e);
      // The same decision the proxies take (policyEnforcement), for each target no waypoint serves.
      const unservedFate = policyEnforcement(ap, false);
      if (unservedFate.at !== "fail-closed") continue;
      const unserved = reached().unserved();
      const targets = [
        ...unserved.map((w) => `${w.kind} ${w.namespace}/${w.name}`),
        ...unservedRefs.map((u) => u.what),
      ];
      if (!targets.length) continue;
      const shown = targets.length > 3 ? `${targets.slice(0, 3).join(", ")} and ${targets.length - 3} more` : targets.join(", ");
      const advice = bindAdvice(lookups, p.namespace, unserved, unservedRefs.map((u) => u.what), misclassed);
      if (ap.hasL7) {
        const attrs = l7Attributes(ap.rules);
        const at: Path = ["spec", ...attrs[0]!.path];
        const names = [...new Set(attrs.map((a) => a.name))].join(", ");
        r.at(e, at, "error", "l7-without-waypoint", `${name} uses L7 attributes (${names}) but no waypoint serves ${shown}: the ztunnel cannot evaluate them and will deny every request. ${advice}`, true);
      } else {
        r.at(e, unservedRefs[0]!.path, "error", "targetrefs-without-waypoint", `${name} targets ${shown}, which no waypoint serves: a targetRefs policy is applied by a waypoint, so the ztunnel of every workload behind it will deny every connection (fail closed). ${advice}, or select the workloads with spec.selector`, true);
      }
    } else if (policy.kind === "RequestAuthentication") {
      jwtRules(r, policy.e, name);
      const { workloads } = reached();
      const unserved = reached().unserved();
      const targets = [...unserved.map((w) => `${w.kind} ${w.namespace}/${w.name}`), ...unservedRefs.map((u) => u.what)];
      if (targets.length && (workloads.length || unservedRefs.length)) {
        r.at(e, ["spec", "jwtRules"], "warning", "jwt-without-waypoint", `${name} has no effect on ${targets.slice(0, 3).join(", ")}${targets.length > 3 ? " and more" : ""}: tokens are validated by a waypoint and none serves ${targets.length > 1 ? "them" : "it"}. ${bindAdvice(lookups, p.namespace, unserved, unservedRefs.map((u) => u.what), misclassed)}`, true);
      }
    }
  }
}

const NOWHERE: Reach = { workloads: [], unserved: () => [] };

const IP_CONDITIONS = new Set(["source.ip", "remote.ip", "destination.ip"]);

/**
 * Values of address and port conditions must be readable: the policy engine evaluates an unreadable one
 * fail closed (a DENY then matches everything), which is not what its author meant.
 */
function conditionValueRules(r: Reporter, e: Entry<"AuthorizationPolicy">): void {
  const rules = e.value.spec?.rules ?? [];
  rules.forEach((rule, i) =>
    rule?.when?.forEach((c, j) => {
      const ip = IP_CONDITIONS.has(c.key);
      if (!ip && c.key !== "destination.port") return;
      for (const list of ["values", "notValues"] as const) {
        c[list]?.forEach((value, k) => {
          if (ip ? isIpBlock(value) : isPortValue(value)) return;
          const what = ip ? "an IP address or a CIDR block such as 10.0.0.0/16" : "a port number from 1 to 65535, written as digits only";
          r.at(e, ["spec", "rules", i, "when", j, list, k], "error", "invalid-value", `Invalid value for "spec.rules[${i}].when[${j}].${list}[${k}]" in AuthorizationPolicy: "${value}" is not ${what} (condition ${c.key})`);
        });
      }
    })
  );
}

/** How to bind a waypoint, naming a waypoint of that namespace when there is one. */
function bindAdvice(lookups: Lookups, namespace: string, unserved: Workload[], refs: string[], misclassed?: string): string {
  const wp = lookups.firstWaypointIn(namespace);
  const gw = wp ? wp.name : "<gateway>";
  const svc = unserved.map((w) => lookups.servicesOf(w.uid)[0]).find((s) => s !== undefined);
  const example = refs[0]
    ? `on ${refs[0]}`
    : svc
    ? `on Service ${svc.namespace}/${svc.name} (or its Pods, or namespace ${namespace})`
    : `on namespace ${namespace}, the Service or the Pod`;
  const create = wp ? "" : ` after creating a Gateway with gatewayClassName: ${WAYPOINT_CLASS}${misclassed ? ` (Gateway ${namespace}/${misclassed} is not one: fix its gatewayClassName)` : ""}`;
  return `Bind a waypoint: set the label ${LABEL_USE_WAYPOINT}=${gw} ${example}${create}`;
}

function jwtRules(r: Reporter, e: Entry<"RequestAuthentication">, name: string): void {
  const rules = e.value.spec?.jwtRules ?? [];
  rules.forEach((jr, i) => {
    if (jr.jwks === undefined && jr.jwksUri === undefined) {
      r.at(e, ["spec", "jwtRules", i], "error", "jwt-no-jwks", `${name}: the JWT rule for issuer "${jr.issuer}" has neither jwks nor jwksUri, so no token can be verified; inline the JWKS document as a string in jwks (or give a jwksUri the waypoint can reach)`);
      return;
    }
    if (jr.jwks !== undefined) {
      let ok = false;
      try {
        const doc = JSON.parse(jr.jwks) as { keys?: unknown };
        ok = Array.isArray(doc.keys) && doc.keys.length > 0;
      } catch {
        ok = false;
      }
      if (!ok) r.at(e, ["spec", "jwtRules", i, "jwks"], "error", "invalid-jwks", `${name}: jwks for issuer "${jr.issuer}" is not a JWKS document (a JSON text with a non-empty "keys" array)`);
    }
  });
}

// ---- addresses ----

type AddressOwner = { kind: "workload"; o: Workload } | { kind: "service"; o: Service } | { kind: "waypoint"; o: Waypoint };

function ownerName(a: AddressOwner): string {
  const { namespace, name } = a.o;
  return a.kind === "workload" ? `${a.o.kind} ${namespace}/${name}` : `${a.kind === "service" ? "Service" : "waypoint"} ${namespace}/${name}`;
}

function addressRules(r: Reporter, model: MeshModel, origins: ReadonlyMap<object, Entry>): void {
  // Names are formatted only for a message: there are as many addresses as workloads.
  const owners = new Map<string, AddressOwner>();
  const claim = (addr: string, who: AddressOwner, path: () => Path) => {
    const prev = owners.get(addr);
    const e = prev && origins.get(who.o);
    if (prev && e) r.at(e, path(), "error", "duplicate-address", `Address ${addr} of ${ownerName(who)} is already used by ${ownerName(prev)}`);
    else owners.set(addr, who);
  };
  for (const w of model.workloads) {
    const who: AddressOwner = { kind: "workload", o: w };
    for (const a of w.addresses) claim(a, who, () => (w.kind === "Pod" ? ["status", "podIP"] : ["spec", "address"]));
  }
  for (const s of model.services) {
    if (s.vip) claim(s.vip, { kind: "service", o: s }, () => ["spec", "clusterIP"]);
  }
  for (const w of model.waypoints) {
    w.addresses.forEach((a, i) => claim(a, { kind: "waypoint", o: w }, () => ["spec", "addresses", i, "value"]));
  }
}

// ---- waypoint identities ----

/**
 * A waypoint's identity (its Gateway's service account) belongs to the waypoint alone: the destination
 * ztunnel admits a waypoint-served workload's traffic only from it and believes the client address it
 * forwards. A Pod or WorkloadEntry running as that account would hold that power; the CA never issues it
 * one (src/identity mayIssue), so it cannot work in the mesh either.
 */
function waypointAccountRules(r: Reporter, model: MeshModel, find: Find): void {
  if (!model.waypoints.length) return;
  const byIdentity = new Map(model.waypoints.map((w) => [w.identity, w]));
  for (const w of model.workloads) {
    const wp = byIdentity.get(w.identity);
    if (!wp) continue;
    const e = find(w, w.kind);
    if (!e) continue;
    const written = e.kind === "Pod" && e.value.spec.serviceAccountName !== undefined
      ? "serviceAccountName"
      : e.value.spec.serviceAccount !== undefined
      ? "serviceAccount"
      : undefined;
    const path: Path = written ? ["spec", written] : ["spec"];
    r.at(e, path, "error", "waypoint-service-account", `${w.kind} ${w.namespace}/${w.name} runs as service account ${w.namespace}/${w.serviceAccount}, the identity of waypoint ${wp.namespace}/${wp.name}: only the waypoint may hold it (the ztunnel trusts it to have enforced policy), so this workload gets no certificate. Give it its own service account`, !written);
  }
}

// ---- file-mode workload completeness ----

function workloadRules(r: Reporter, model: MeshModel, find: Find): void {
  const declared = new Set(model.namespaces.map((n) => n.name));
  const reported = new Set<string>();
  for (const w of model.workloads) {
    const e = find(w, w.kind);
    if (!e) continue;
    const who = () => `${w.kind} ${w.namespace}/${w.name}`; // for the few that are reported
    if (!declared.has(w.namespace) && !reported.has(w.namespace) && !w.ambient) {
      reported.add(w.namespace);
      r.at(e, ["metadata", "namespace"], "warning", "undeclared-namespace", `Namespace ${w.namespace} is not declared, so ${who()} and the other workloads in it are outside the mesh (no mTLS, no policy); declare it with the label istio.io/dataplane-mode: ambient to enroll them`);
    }
    if (w.kind === "Pod" && !w.node) {
      r.at(e, ["spec"], "warning", "pod-placement", `${who()} has no spec.nodeName: no ztunnel owns it, so it gets no identity`, true);
    }
    if (!w.addresses.length) {
      const path: Path = w.kind === "Pod" ? ["metadata", "name"] : ["spec"];
      r.at(e, path, "warning", "pod-placement", `${who()} has no address (${w.kind === "Pod" ? "status.podIP" : "spec.address"}): the mesh cannot route to it or recognise its traffic`, w.kind !== "Pod");
    }
  }
}

// ---- HTTPRoute ----

function routeRules(r: Reporter, model: MeshModel, find: Find, lookups: Lookups): void {
  for (const rt of model.httpRoutes) {
    const e = find(rt, "HTTPRoute");
    if (!e) continue;
    (e.value.spec.rules ?? []).forEach((rule, i) => {
      const check = (fs: readonly { type: string }[] | undefined, base: Path) =>
        fs?.forEach((f, j) => {
          if (f.type === "ExtensionRef" || f.type === "CORS") {
            r.at(e, [...base, j, "type"], "warning", "unsupported-filter", `HTTPRoute ${rt.namespace}/${rt.name}: filter ${f.type} is not supported by mesh and is ignored`);
          }
        });
      check(rule.filters, ["spec", "rules", i, "filters"]);
      rule.backendRefs?.forEach((b, k) => check(b.filters, ["spec", "rules", i, "backendRefs", k, "filters"]));
    });
    rt.parentRefs.forEach((p, i) => {
      if (p.kind === "Service" && (p.group === "" || p.group === "core")) {
        const s = lookups.service(p.namespace, p.name);
        if (!s) {
          r.at(e, ["spec", "parentRefs", i], "warning", "route-parent", `HTTPRoute ${rt.namespace}/${rt.name} attaches to Service ${p.namespace}/${p.name}, which does not exist`);
        } else if (!s.waypoint) {
          r.at(e, ["spec", "parentRefs", i], "warning", "route-parent", `HTTPRoute ${rt.namespace}/${rt.name} attaches to Service ${p.namespace}/${p.name}, which no waypoint serves: the route has no effect until the Service (or its namespace) is labelled ${LABEL_USE_WAYPOINT}=<gateway>`);
        }
      } else if (p.kind === "ServiceEntry" && p.group === "networking.istio.io") {
        const se = lookups.serviceEntry(p.namespace, p.name);
        const why = !se ? "which does not exist" : !se.waypoint ? `which no egress waypoint serves: the route has no effect until the ServiceEntry is labelled ${LABEL_USE_WAYPOINT}=<gateway>` : undefined;
        if (why) r.at(e, ["spec", "parentRefs", i], "warning", "route-parent", `HTTPRoute ${rt.namespace}/${rt.name} attaches to ServiceEntry ${p.namespace}/${p.name}, ${why}`);
      }
    });
  }
}
