/**
 * How `mesh explain` describes the last leg to a ServiceEntry host, as the proxies take it: where the
 * connection goes by the entry's resolution, and whether TLS is originated for it (a DestinationRule
 * with tls mode SIMPLE, read by the egress waypoint only).
 */
import type { ModelIndex, RegistryHost } from "../model/mod.ts";

/** "ServiceEntry shop/partner (api.partner.example)" */
export function entryName(at: RegistryHost): string {
  return `ServiceEntry ${at.entry.namespace}/${at.entry.name} (${at.host})`;
}

/** Where the connection to `at` on service port `port` goes, and how; `byWaypoint`: the egress waypoint connects. */
export function externalLeg(index: ModelIndex, at: RegistryHost, port: number, byWaypoint: boolean): { target: string; targetPort: number; steps: string[] } {
  const se = at.entry;
  const p = se.ports.find((x) => x.number === port);
  const targetPort = p?.targetPort ?? port;
  const target = se.resolution === "STATIC"
    ? `its endpoints (${se.endpoints.map((e) => e.address).join(", ") || "none"})`
    : se.resolution === "DNS"
    ? `the addresses of ${at.host} from the resolver (cached for the record's TTL)`
    : "the address the client dialed (resolution NONE)";
  const steps = [`connects to ${target}, port ${targetPort}, outside the mesh (${se.location})`];
  const tls = byWaypoint ? index.registry.clientTls(at.host, port) : undefined;
  if (tls && tls.tls.mode === "SIMPLE") {
    steps.push(
      `originates TLS (DestinationRule ${tls.rule.namespace}/${tls.rule.name}): SNI ${tls.tls.sni || at.host}, the server's certificate verified against ${tls.tls.caCertificates ?? "the system's roots"}`,
    );
  } else steps.push("as plain TCP: the bytes leave as the client sent them");
  return { target, targetPort, steps };
}
