/** Core Kubernetes kinds the mesh reads: Namespace, ServiceAccount, Service, Pod (apiVersion v1). */
import * as v from "valibot";
import { ignored, ipAddress, isIpAddress, labels, metadata, nonEmpty, port, resource, resourceWithStatus, status } from "./common.ts";

export const namespaceSchema = v.strictObject({
  apiVersion: v.string(),
  kind: v.string(),
  metadata,
  spec: ignored,
  status,
});

export const serviceAccountSchema = v.strictObject({
  apiVersion: v.string(),
  kind: v.string(),
  metadata,
  secrets: ignored,
  imagePullSecrets: ignored,
  automountServiceAccountToken: ignored,
});

const intOrString = v.union([port, nonEmpty], "Must be a port number or a port name");

const servicePort = v.strictObject({
  name: v.optional(v.string()),
  port,
  targetPort: v.optional(intOrString),
  protocol: v.optional(v.picklist(["TCP", "UDP", "SCTP"])),
  appProtocol: v.optional(v.string()),
  nodePort: ignored,
});

export const serviceSchema = resource(v.optional(v.strictObject({
  selector: v.optional(labels),
  clusterIP: v.optional(v.pipe(
    v.string(),
    v.check((s) => s === "" || s === "None" || isIpAddress(s), "Must be an IP address, or None for a headless Service"),
  )),
  clusterIPs: v.optional(v.array(v.string())),
  type: v.optional(v.picklist(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"])),
  ports: v.optional(v.array(servicePort)),
  externalName: ignored,
  externalIPs: ignored,
  sessionAffinity: ignored,
  sessionAffinityConfig: ignored,
  loadBalancerIP: ignored,
  loadBalancerSourceRanges: ignored,
  loadBalancerClass: ignored,
  externalTrafficPolicy: ignored,
  internalTrafficPolicy: ignored,
  healthCheckNodePort: ignored,
  publishNotReadyAddresses: ignored,
  ipFamilies: ignored,
  ipFamilyPolicy: ignored,
  allocateLoadBalancerNodePorts: ignored,
  trafficDistribution: ignored,
})));

const containerPort = v.strictObject({
  name: v.optional(v.string()),
  containerPort: port,
  protocol: v.optional(v.picklist(["TCP", "UDP", "SCTP"])),
  hostPort: ignored,
  hostIP: ignored,
});

const container = v.strictObject({
  name: v.optional(v.string()),
  image: v.optional(v.string()),
  command: v.optional(v.array(v.string())),
  args: v.optional(v.array(v.string())),
  ports: v.optional(v.array(containerPort)),
  workingDir: ignored,
  env: ignored,
  envFrom: ignored,
  resources: ignored,
  resizePolicy: ignored,
  restartPolicy: ignored,
  volumeMounts: ignored,
  volumeDevices: ignored,
  livenessProbe: ignored,
  readinessProbe: ignored,
  startupProbe: ignored,
  lifecycle: ignored,
  terminationMessagePath: ignored,
  terminationMessagePolicy: ignored,
  imagePullPolicy: ignored,
  securityContext: ignored,
  stdin: ignored,
  stdinOnce: ignored,
  tty: ignored,
});

export const podSchema = resourceWithStatus(v.strictObject({
  nodeName: v.optional(v.string()),
  serviceAccountName: v.optional(nonEmpty),
  serviceAccount: v.optional(nonEmpty),
  containers: v.pipe(v.array(container), v.minLength(1, "A Pod needs at least one container")),
  hostNetwork: v.optional(v.boolean()),
  initContainers: ignored,
  ephemeralContainers: ignored,
  volumes: ignored,
  restartPolicy: ignored,
  terminationGracePeriodSeconds: ignored,
  activeDeadlineSeconds: ignored,
  dnsPolicy: ignored,
  dnsConfig: ignored,
  nodeSelector: ignored,
  automountServiceAccountToken: ignored,
  securityContext: ignored,
  imagePullSecrets: ignored,
  hostname: ignored,
  subdomain: ignored,
  affinity: ignored,
  schedulerName: ignored,
  tolerations: ignored,
  hostAliases: ignored,
  priorityClassName: ignored,
  priority: ignored,
  readinessGates: ignored,
  runtimeClassName: ignored,
  enableServiceLinks: ignored,
  preemptionPolicy: ignored,
  overhead: ignored,
  topologySpreadConstraints: ignored,
  setHostnameAsFQDN: ignored,
  os: ignored,
  hostPID: ignored,
  hostIPC: ignored,
  hostUsers: ignored,
  shareProcessNamespace: ignored,
  schedulingGates: ignored,
  resourceClaims: ignored,
  resources: ignored,
}), v.optional(v.looseObject({
  podIP: v.optional(ipAddress),
  podIPs: v.optional(v.array(v.looseObject({ ip: ipAddress }))),
  phase: v.optional(v.string()),
  conditions: v.optional(v.array(v.looseObject({ type: v.string(), status: v.string() }))),
})));
