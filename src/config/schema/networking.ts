/**
 * networking.istio.io ServiceEntry and DestinationRule, with the fields of Istio's own API. Every field of
 * Istio's DestinationRule is accepted (a real manifest checks clean); mesh reads only the TLS settings
 * (`trafficPolicy.tls`, per port too), and the lint rule `unsupported-field` warns about the rest.
 */
import * as v from "valibot";
import { ignored, labels, nonEmpty, port, resource, stringList, workloadSelector } from "./common.ts";

/** A ServiceEntry host: a DNS name, or `*.` followed by one (a wildcard). */
export function isServiceEntryHost(h: string): boolean {
  const name = h.startsWith("*.") ? h.slice(2) : h;
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(name) && name.length <= 253;
}

const host = v.pipe(
  v.string(),
  v.check(isServiceEntryHost, (i) => `${JSON.stringify(i.input)} is not a host name (a DNS name such as api.example.com, or a wildcard such as *.example.com)`),
);

const servicePort = v.strictObject({
  number: port,
  protocol: v.optional(v.picklist(["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS", "UDP"])),
  name: v.optional(v.string()),
  targetPort: v.optional(port),
});

const endpoint = v.strictObject({
  address: v.optional(nonEmpty),
  ports: v.optional(v.record(v.string(), port)),
  labels: v.optional(labels),
  network: ignored,
  locality: ignored,
  weight: ignored,
  serviceAccount: ignored,
});

export const serviceEntrySchema = resource(v.strictObject({
  hosts: v.pipe(v.array(host), v.minLength(1, "A ServiceEntry needs at least one host")),
  addresses: v.optional(stringList),
  ports: v.optional(v.array(servicePort)),
  location: v.optional(v.picklist(["MESH_EXTERNAL", "MESH_INTERNAL"])),
  resolution: v.optional(v.picklist(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"])),
  endpoints: v.optional(v.array(endpoint)),
  workloadSelector: v.optional(workloadSelector),
  exportTo: ignored,
  subjectAltNames: ignored,
}));

const clientTls = v.strictObject({
  mode: v.optional(v.picklist(["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"])),
  sni: v.optional(v.string()),
  caCertificates: v.optional(v.string()),
  clientCertificate: ignored,
  privateKey: ignored,
  credentialName: ignored,
  subjectAltNames: ignored,
  insecureSkipVerify: ignored,
  caCrl: ignored,
});

/** The TrafficPolicy fields Istio has; only `tls` is read. */
const policyFields = {
  tls: v.optional(clientTls),
  loadBalancer: ignored,
  connectionPool: ignored,
  outlierDetection: ignored,
  proxyProtocol: ignored,
  tunnel: ignored,
  retryBudget: ignored,
};

const trafficPolicy = v.strictObject({
  ...policyFields,
  portLevelSettings: v.optional(v.array(v.strictObject({
    port: v.strictObject({ number: port }),
    tls: v.optional(clientTls),
    loadBalancer: ignored,
    connectionPool: ignored,
    outlierDetection: ignored,
  }))),
});

export const destinationRuleSchema = resource(v.strictObject({
  host: nonEmpty,
  trafficPolicy: v.optional(trafficPolicy),
  subsets: ignored,
  exportTo: ignored,
  workloadSelector: ignored,
}));
