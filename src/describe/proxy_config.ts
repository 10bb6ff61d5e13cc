/**
 * `mesh proxy-config`: what one proxy holds right now, read from its admin API (/config_dump, /certs,
 * /logging) and turned into rows. Pure: the CLI fetches the documents and passes them in.
 *
 * A ztunnel's /config_dump carries `node`, `version`, `localWorkloads` (what it captures) and `model`
 * (its view: every workload and Service, the policies placed on it); a waypoint's carries `gateway`,
 * `version` and `model` (with the policies and routes placed on it).
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import type { MeshModel, Workload } from "../model/mod.ts";
import { indexModel } from "../model/mod.ts";
import { policyKey, policyL7Attributes } from "../policy/mod.ts";
import { relative } from "./facts.ts";
import { scopeText } from "./policies.ts";
import { table } from "./table.ts";

export const PROXY_CONFIG_KINDS = ["workloads", "services", "policies", "certs", "routes"] as const;
export type ProxyConfigKind = (typeof PROXY_CONFIG_KINDS)[number];

/** The parts of a /config_dump this reads (either role). */
export interface ConfigDump {
  node?: string;
  gateway?: string;
  version?: number;
  ready?: boolean;
  localWorkloads?: { uid: string; identity: string; addresses: string[] }[];
  model?: MeshModel;
}

export interface ProxyConfig {
  /** "ztunnel/node-a" or "waypoint/ns/name" */
  proxy: string;
  kind: ProxyConfigKind;
  version: number | null;
  rows: Record<string, unknown>[];
}

export function proxyIdOfDump(d: ConfigDump): string {
  if (d.node) return `ztunnel/${d.node}`;
  if (d.gateway) return `waypoint/${d.gateway}`;
  return "unknown";
}

function modelOf(d: ConfigDump): MeshModel {
  if (!d.model || !Array.isArray(d.model.workloads)) {
    throw new MeshError(ErrorCode.Unreachable, `The proxy's /config_dump has no configuration yet (no "model"): it has not received one from the control plane`);
  }
  return d.model;
}

interface CertRecord {
  identity: string;
  state?: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  issuer?: string;
}

/** Both shapes of /certs: the ztunnel's {certificates: [...]} and the waypoint's [...]. */
export function certRecords(doc: unknown): CertRecord[] {
  const list = Array.isArray(doc) ? doc : (doc as { certificates?: unknown[] } | undefined)?.certificates ?? [];
  return list.map((x) => {
    const c = x as Record<string, unknown>;
    const chain = c.chain as { issuer?: string }[] | undefined;
    return {
      identity: String(c.identity ?? ""),
      state: typeof c.state === "string" ? c.state : undefined,
      serial: typeof c.serial === "string" ? c.serial : undefined,
      notBefore: c.notBefore !== undefined ? String(c.notBefore) : undefined,
      notAfter: c.notAfter !== undefined ? String(c.notAfter) : undefined,
      issuer: Array.isArray(chain) ? chain[0]?.issuer?.replace(/\n/g, ", ") : undefined,
    };
  });
}

function served(d: ConfigDump, m: MeshModel): { workloads: Set<string>; services: Set<string> } {
  const gw = d.gateway ?? "";
  const services = new Set(m.services.filter((s) => s.waypoint?.gateway === gw).map((s) => `${s.namespace}/${s.name}`));
  const workloads = new Set(m.workloads.filter((w) => w.waypoint?.gateway === gw).map((w) => w.uid));
  for (const s of m.services) if (services.has(`${s.namespace}/${s.name}`)) for (const e of s.endpoints) workloads.add(e.workloadUid);
  return { workloads, services };
}

/**
 * Rows of one kind. Workloads: a ztunnel's are the workloads of its node (`all`: every workload it
 * knows); a waypoint's are those it serves. Services: a waypoint's are those bound to it.
 */
export function proxyConfig(kind: ProxyConfigKind, dump: ConfigDump, certs: unknown, opts: { all?: boolean; now?: number } = {}): ProxyConfig {
  const proxy = proxyIdOfDump(dump);
  const version = dump.version ?? null;
  const now = opts.now ?? Date.now();
  const certList = certRecords(certs);
  if (kind === "certs") {
    return {
      proxy,
      kind,
      version,
      rows: certList.map((c) => ({
        identity: c.identity,
        state: c.state ?? (c.notAfter ? (Date.parse(c.notAfter) > now ? "valid" : "expired") : "pending"),
        serial: c.serial ?? null,
        notBefore: c.notBefore ?? null,
        notAfter: c.notAfter ?? null,
        expires: c.notAfter ? relative(c.notAfter, now) : null,
        issuer: c.issuer ?? null,
      })),
    };
  }
  const m = modelOf(dump);
  const index = indexModel(m);
  const isZtunnel = dump.node !== undefined;
  const waypointView = isZtunnel ? undefined : served(dump, m);
  switch (kind) {
    case "workloads": {
      const local = new Set((dump.localWorkloads ?? []).map((w) => w.uid));
      const certOf = (w: Workload) => certList.find((c) => c.identity === w.identity);
      const list = m.workloads.filter((w) =>
        opts.all || (isZtunnel ? w.node === dump.node : waypointView!.workloads.has(w.uid))
      );
      return {
        proxy,
        kind,
        version,
        rows: list.map((w) => {
          const c = certOf(w);
          return {
            namespace: w.namespace,
            name: w.name,
            kind: w.kind,
            node: w.node,
            addresses: w.addresses,
            identity: w.identity,
            // A ztunnel captures only its own node's workloads.
            captured: isZtunnel ? (w.node === dump.node ? local.has(w.uid) : null) : w.ambient,
            waypoint: w.waypoint?.gateway ?? index.servicesOfWorkload(w.uid).find((s) => s.waypoint)?.waypoint?.gateway ?? null,
            certificate: isZtunnel && w.node === dump.node && local.has(w.uid) ? (c ? (c.state ?? "valid") : "none") : null,
            certificateNotAfter: isZtunnel && local.has(w.uid) ? c?.notAfter ?? null : null,
          };
        }),
      };
    }
    case "services": {
      const list = m.services.filter((s) => opts.all || isZtunnel || waypointView!.services.has(`${s.namespace}/${s.name}`));
      return {
        proxy,
        kind,
        version,
        rows: list.map((s) => ({
          namespace: s.namespace,
          name: s.name,
          hostname: s.hostname,
          vip: s.vip ?? null,
          ports: s.ports.map((p) => `${p.port}->${p.targetPort}`),
          endpoints: s.endpoints.map((e) => index.workloadByUid(e.workloadUid)?.addresses[0] ?? e.workloadUid),
          waypoint: s.waypoint?.gateway ?? null,
        })),
      };
    }
    case "policies": {
      const root = m.meshConfig.rootNamespace;
      const rows: Record<string, unknown>[] = [];
      for (const p of m.authorizationPolicies) {
        rows.push({
          kind: "AuthorizationPolicy",
          policy: policyKey(p),
          action: p.action,
          layer: p.hasL7 || policyL7Attributes(p).length ? "L7" : "L4",
          scope: scopeText(p.scope, p.namespace, root),
          // At a ztunnel an L7 policy cannot be read: it denies everything for the workloads it selects.
          enforcement: isZtunnel && (p.hasL7 || policyL7Attributes(p).length) && p.action !== "AUDIT" ? "fail closed (needs a waypoint)" : "enforced",
        });
      }
      for (const p of m.requestAuthentications) {
        rows.push({ kind: "RequestAuthentication", policy: policyKey(p), action: null, layer: "L7", scope: scopeText(p.scope, p.namespace, root), enforcement: isZtunnel ? "ignored (no HTTP at a ztunnel)" : "enforced" });
      }
      for (const p of m.peerAuthentications) {
        rows.push({ kind: "PeerAuthentication", policy: policyKey(p), action: p.mode, layer: "L4", scope: scopeText(p.scope, p.namespace, root), enforcement: isZtunnel ? "enforced" : "not applicable at a waypoint" });
      }
      return { proxy, kind, version, rows };
    }
    case "routes": {
      return {
        proxy,
        kind,
        version,
        rows: m.httpRoutes.map((r) => ({
          route: `${r.namespace}/${r.name}`,
          parents: r.parentRefs.map((p) => `${p.kind} ${p.namespace || r.namespace}/${p.name}${p.port ? `:${p.port}` : ""}`),
          hostnames: r.hostnames,
          rules: r.rules.length,
          backends: [...new Set(r.rules.flatMap((x) => x.backendRefs.map((b) => `${b.name}.${b.namespace ?? r.namespace}${b.port ? `:${b.port}` : ""}${b.weight !== undefined ? ` (weight ${b.weight})` : ""}`)))],
        })),
      };
    }
  }
}

const cell = (v: unknown): string => (v === null || v === undefined ? "-" : Array.isArray(v) ? (v.length ? v.join(",") : "-") : String(v));

const COLUMNS: Record<ProxyConfigKind, [string, string][]> = {
  workloads: [["namespace", "NAMESPACE"], ["name", "NAME"], ["kind", "KIND"], ["node", "NODE"], ["addresses", "ADDRESS"], ["captured", "CAPTURED"], ["waypoint", "WAYPOINT"], ["certificate", "CERT"], ["identity", "IDENTITY"]],
  services: [["namespace", "NAMESPACE"], ["name", "NAME"], ["vip", "VIP"], ["ports", "PORTS"], ["endpoints", "ENDPOINTS"], ["waypoint", "WAYPOINT"]],
  policies: [["kind", "KIND"], ["policy", "POLICY"], ["action", "ACTION/MODE"], ["layer", "LAYER"], ["scope", "SCOPE"], ["enforcement", "HERE"]],
  certs: [["identity", "IDENTITY"], ["state", "STATE"], ["serial", "SERIAL"], ["notAfter", "NOT AFTER"], ["expires", "EXPIRES"]],
  routes: [["route", "ROUTE"], ["parents", "PARENTS"], ["hostnames", "HOSTNAMES"], ["rules", "RULES"], ["backends", "BACKENDS"]],
};

export function formatProxyConfig(c: ProxyConfig): string {
  const head = `${c.proxy}${c.version !== null ? `, configuration version ${c.version}` : ""}: ${c.rows.length} ${c.kind}\n`;
  if (!c.rows.length) return head;
  const cols = COLUMNS[c.kind];
  return head + table([cols.map(([, h]) => h), ...c.rows.map((r) => cols.map(([k]) => cell(r[k])))]);
}

/** `proxy-config log`: the levels per scope. */
export function formatLogLevels(proxy: string, levels: Record<string, string>): string {
  return `${proxy}: log levels\n` + table([["SCOPE", "LEVEL"], ...Object.entries(levels).map(([k, v]) => [k, v])]);
}
