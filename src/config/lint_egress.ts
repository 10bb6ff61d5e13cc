/**
 * Lint rules for the mesh's edge: ServiceEntry and DestinationRule. Istio's own validation refuses the
 * first three (a host claimed twice, DNS resolution of a wildcard, no ports); the last warns about
 * DestinationRule fields mesh accepts but does not read, so nobody believes a connection pool or an
 * outlier detection is in force.
 */
import type { MeshModel, ServiceEntry } from "../model/mod.ts";
import type { Diagnostic } from "./diagnostic.ts";
import type { Entry, KindName } from "./entry.ts";

type Path = (string | number)[];
type Find = <K extends KindName>(modelObject: object, kind: K) => Extract<Entry, { kind: K }> | undefined;

interface Reporter {
  at(e: Entry, path: Path, severity: Diagnostic["severity"], rule: string, message: string, key?: boolean): void;
}

/** DestinationRule fields mesh reads (under trafficPolicy and each portLevelSettings item). */
const READ_POLICY_FIELDS = new Set(["tls", "portLevelSettings", "port"]);
const READ_TLS_FIELDS = new Set(["mode", "sni", "caCertificates"]);

export function egressRules(r: Reporter, model: MeshModel, find: Find, entries: readonly Entry[]): void {
  const owners = new Map<string, ServiceEntry>();
  const serviceHosts = new Set(model.services.map((s) => s.hostname));
  for (const se of model.serviceEntries ?? []) {
    const e = find(se, "ServiceEntry");
    if (!e) continue;
    const name = `ServiceEntry ${se.namespace}/${se.name}`;
    e.value.spec.hosts.forEach((written, i) => {
      const host = written.toLowerCase();
      const prev = owners.get(host);
      if (prev) {
        r.at(e, ["spec", "hosts", i], "error", "duplicate-host", `${name} declares host "${host}", already declared by ServiceEntry ${prev.namespace}/${prev.name}: a name must lead to one destination (merge the two entries or remove one)`);
      } else if (serviceHosts.has(host)) {
        r.at(e, ["spec", "hosts", i], "error", "duplicate-host", `${name} declares host "${host}", the name of a Service of this mesh: the Service already answers for it`);
      } else owners.set(host, se);
      if (se.resolution === "DNS" && host.startsWith("*.")) {
        r.at(e, ["spec", "hosts", i], "error", "dns-wildcard", `${name} resolves by DNS but declares the wildcard host "${host}": a wildcard cannot be looked up; use resolution NONE (with addresses) or list the hosts`);
      }
    });
    if (!se.ports.length) {
      r.at(e, ["spec", "hosts"], "error", "serviceentry-ports", `${name} declares no ports: nothing can reach its hosts; add spec.ports (number, name, protocol)`, true);
    }
  }
  for (const e of entries) {
    if (e.kind !== "DestinationRule") continue;
    const spec = e.value.spec;
    const name = `DestinationRule ${e.namespace}/${e.name}`;
    const warn = (path: Path, field: string) =>
      r.at(e, path, "warning", "unsupported-field", `${name}: ${field} is not supported by mesh and is ignored (mesh reads trafficPolicy.tls: mode SIMPLE, sni, caCertificates)`, true);
    for (const k of ["subsets", "exportTo", "workloadSelector"] as const) if (spec[k] !== undefined) warn(["spec", k], k);
    const tp = spec.trafficPolicy;
    if (!tp) continue;
    const tlsFields = (tls: Record<string, unknown> | undefined, base: Path) => {
      if (!tls) return;
      for (const k of Object.keys(tls)) if (!READ_TLS_FIELDS.has(k)) warn([...base, k], `${base.slice(1).join(".")}.${k}`);
      if (tls.mode === "MUTUAL" || tls.mode === "ISTIO_MUTUAL") warn([...base, "mode"], `TLS mode ${tls.mode}`);
    };
    for (const k of Object.keys(tp)) if (!READ_POLICY_FIELDS.has(k)) warn(["spec", "trafficPolicy", k], `trafficPolicy.${k}`);
    tlsFields(tp.tls, ["spec", "trafficPolicy", "tls"]);
    (tp.portLevelSettings ?? []).forEach((s, i) => {
      const base: Path = ["spec", "trafficPolicy", "portLevelSettings", i];
      for (const k of Object.keys(s)) if (!READ_POLICY_FIELDS.has(k)) warn([...base, k], `trafficPolicy.portLevelSettings[${i}].${k}`);
      tlsFields(s.tls, [...base, "tls"]);
    });
  }
}
