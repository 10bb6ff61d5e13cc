/**
 * What a waypoint Gateway (class istio-waypoint) needs on a cluster, as Istio's deployment controller
 * makes it: a ServiceAccount named after the Gateway (its identity), a Deployment running
 * `mesh run --role waypoint` as that account with a projected token (audience istio-ca), and a ClusterIP
 * Service in front of it (15008 HBONE, 15021 status). Each is owned by the Gateway (ownerReferences with
 * controller: true), so deleting the Gateway deletes them through Kubernetes' garbage collector. Pure.
 *
 * The waypoint's pods are labelled istio.io/dataplane-mode: none: they carry mesh traffic already and must
 * not be captured by the ztunnel of their node.
 */
import type { KubeObject, OwnerReference } from "./client.ts";
import { LABEL_GATEWAY_NAME, LABEL_MANAGED_BY, MANAGED_BY } from "./resources.ts";

/** The ConfigMap with the mesh's trust bundle (root-cert.pem) that proxies mount as their --ca-cert. */
export const ROOT_CERT_CONFIGMAP = "mesh-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";
/** Where proxies find their projected token and the trust bundle. */
export const TOKEN_MOUNT = "/var/run/secrets/tokens";
export const TOKEN_FILE = "istio-token";
export const CA_MOUNT = "/var/run/mesh";
/** The uid/gid the proxies run as (Istio's 1337: its owner match exempts proxy traffic on VMs too). */
export const PROXY_UID = 1337;

export interface WaypointSettings {
  /** The container image holding /usr/local/bin/mesh. */
  image: string;
  /** HOST:15012 of the control role, as proxies in any namespace reach it. */
  controlPlane: string;
  imagePullPolicy?: string;
}

export interface WaypointObjects {
  serviceAccount: KubeObject;
  deployment: KubeObject;
  service: KubeObject;
}

export function ownerReference(gw: KubeObject): OwnerReference {
  return {
    apiVersion: gw.apiVersion ?? "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    name: gw.metadata.name,
    uid: gw.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The HBONE port of the Gateway's listener (15008 by convention). */
function hbonePort(gw: KubeObject): number {
  const ls = ((gw.spec as { listeners?: { protocol?: string; port?: number }[] } | undefined)?.listeners ?? []);
  return ls.find((l) => l.protocol === "HBONE")?.port ?? 15008;
}

export function waypointObjects(gw: KubeObject, s: WaypointSettings): WaypointObjects {
  const name = gw.metadata.name;
  const namespace = gw.metadata.namespace!;
  const labels = { [LABEL_GATEWAY_NAME]: name, [LABEL_MANAGED_BY]: MANAGED_BY };
  const infra = (gw.spec as { infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> } } | undefined)?.infrastructure;
  const metadata = { name, namespace, labels: { ...(infra?.labels ?? {}), ...labels }, ...(infra?.annotations ? { annotations: infra.annotations } : {}), ownerReferences: [ownerReference(gw)] };
  const port = hbonePort(gw);
  const podLabels = { ...(infra?.labels ?? {}), [LABEL_GATEWAY_NAME]: name, "istio.io/dataplane-mode": "none" };
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata,
    spec: {
      selector: { matchLabels: { [LABEL_GATEWAY_NAME]: name } },
      template: {
        metadata: { labels: podLabels },
        spec: {
          serviceAccountName: name,
          terminationGracePeriodSeconds: 30,
          containers: [{
            name: "waypoint",
            image: s.image,
            ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
            command: ["/usr/local/bin/mesh"],
            args: [
              "run",
              "--role",
              "waypoint",
              "--gateway",
              `${namespace}/${name}`,
              "--control-plane",
              s.controlPlane,
              "--ca-cert",
              `${CA_MOUNT}/${ROOT_CERT_KEY}`,
              "--token-file",
              `${TOKEN_MOUNT}/${TOKEN_FILE}`,
              "--hbone-addr",
              `0.0.0.0:${port}`,
              "--drain-timeout",
              "20s",
            ],
            ports: [
              { name: "hbone", containerPort: port, protocol: "TCP" },
              { name: "metrics", containerPort: 15020, protocol: "TCP" },
              { name: "status-port", containerPort: 15021, protocol: "TCP" },
            ],
            readinessProbe: { httpGet: { path: "/healthz/ready", port: 15021 }, periodSeconds: 5, failureThreshold: 3 },
            resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } },
            securityContext: {
              runAsUser: PROXY_UID,
              runAsGroup: PROXY_UID,
              runAsNonRoot: true,
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
            },
            volumeMounts: [
              { name: "istio-token", mountPath: TOKEN_MOUNT, readOnly: true },
              { name: "mesh-ca-root-cert", mountPath: CA_MOUNT, readOnly: true },
            ],
          }],
          volumes: [
            { name: "istio-token", projected: { sources: [{ serviceAccountToken: { audience: "istio-ca", expirationSeconds: 43200, path: TOKEN_FILE } }] } },
            { name: "mesh-ca-root-cert", configMap: { name: ROOT_CERT_CONFIGMAP } },
          ],
        },
      },
    },
  };
  const service: KubeObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata,
    spec: {
      type: "ClusterIP",
      selector: { [LABEL_GATEWAY_NAME]: name },
      ports: [
        { name: "mesh", port, targetPort: port, protocol: "TCP", appProtocol: "all" },
        { name: "status-port", port: 15021, targetPort: 15021, protocol: "TCP" },
      ],
    },
  };
  const serviceAccount: KubeObject = { apiVersion: "v1", kind: "ServiceAccount", metadata };
  return { serviceAccount, deployment, service };
}

/** Is `existing` ours to change: created by this control role for this Gateway? */
export function ownedBy(existing: KubeObject, gw: KubeObject): boolean {
  return !!existing.metadata.ownerReferences?.some((r) => r.kind === "Gateway" && r.uid === gw.metadata.uid);
}

/**
 * The update that brings `existing` to `desired`, or undefined when it is already there. Only the fields
 * this controller owns are compared and replaced; the rest (a Service's clusterIP, a Deployment's replicas
 * scaled by someone else, fields the API server defaults) is kept.
 */
export function updateFor(existing: KubeObject, desired: KubeObject): KubeObject | undefined {
  const md = existing.metadata;
  const labels = { ...(md.labels ?? {}), ...(desired.metadata.labels ?? {}) };
  const next: KubeObject = { ...existing, metadata: { ...md, labels, ownerReferences: desired.metadata.ownerReferences } };
  if (desired.metadata.annotations) next.metadata.annotations = { ...(md.annotations ?? {}), ...desired.metadata.annotations };
  const ds = desired.spec as Record<string, unknown> | undefined;
  const es = (existing.spec ?? {}) as Record<string, unknown>;
  if (desired.kind === "Service") {
    next.spec = { ...es, type: ds!.type, selector: ds!.selector, ports: ds!.ports };
  } else if (desired.kind === "Deployment") {
    next.spec = { ...es, selector: ds!.selector, template: ds!.template };
  }
  const same = JSON.stringify(pick(existing)) === JSON.stringify(pick(next));
  return same ? undefined : next;
}

function pick(o: KubeObject): unknown {
  const s = (o.spec ?? {}) as Record<string, unknown>;
  return {
    labels: sortKeys(o.metadata.labels ?? {}),
    annotations: sortKeys(o.metadata.annotations ?? {}),
    owners: o.metadata.ownerReferences ?? [],
    spec: o.kind === "Service"
      ? { type: s.type, selector: s.selector, ports: comparablePorts(s.ports) }
      : o.kind === "Deployment"
      ? { selector: s.selector, template: comparableTemplate(s.template) }
      : undefined,
  };
}

function sortKeys(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
}

function comparablePorts(ports: unknown): unknown {
  // The API server fills in nodePort-less defaults; compare what we set.
  return ((ports ?? []) as Record<string, unknown>[]).map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.protocol ?? "TCP", appProtocol: p.appProtocol }));
}

function comparableTemplate(t: unknown): unknown {
  // A real API server defaults many template fields (dnsPolicy, terminationMessagePath...): compare the
  // parts this controller writes.
  const tpl = (t ?? {}) as { metadata?: { labels?: Record<string, string> }; spec?: Record<string, unknown> };
  const spec = tpl.spec ?? {};
  const cs = ((spec.containers ?? []) as Record<string, unknown>[]).map((c) => ({
    name: c.name,
    image: c.image,
    command: c.command,
    args: c.args,
    securityContext: c.securityContext,
    volumeMounts: c.volumeMounts,
  }));
  return { labels: sortKeys(tpl.metadata?.labels ?? {}), serviceAccountName: spec.serviceAccountName, containers: cs, volumes: JSON.stringify(spec.volumes ?? []) };
}
