/**
 * Outbound (15001): a connection a local workload made, captured by the node's (or host's) rules.
 * The source workload is the one at the connection's source address: a pod cannot choose whose
 * certificate is presented for it. The original destination decides the plan (./outbound_plan.ts):
 * HBONE to the destination's node (or waypoint) with the source's certificate, the same checks
 * in-process for a destination on this node, plain TCP for destinations outside the mesh, or a refusal.
 */
import { formatForwarded, formatHostPort, logger } from "../core/mod.ts";
import type { Workload } from "../model/mod.ts";
import { newTraceparent, traceIdOf } from "../telemetry/mod.ts";
import { decideHboneInbound } from "./inbound_decision.ts";
import { type ProxyInputs, proxy, refuse, statusOf } from "./inputs.ts";
import { type ExternalPlan, type HbonePlan, planOutbound } from "./outbound_plan.ts";
import type { SocketStream } from "../stream/mod.ts";
import type { ConnectionView, ExternalDestination } from "./telemetry.ts";
import type { RegistryHost } from "../model/mod.ts";

const log = logger("ztunnel");

const baggageCache = new WeakMap<Workload, string>();

/** W3C baggage describing the source workload (docs/hbone.md §3), for the destination's telemetry. */
export function baggageOf(w: Workload): string {
  let b = baggageCache.get(w);
  if (b === undefined) baggageCache.set(w, (b = buildBaggage(w)));
  return b;
}

function buildBaggage(w: Workload): string {
  const parts = [`k8s.namespace.name=${w.namespace}`, `k8s.${w.kind === "Pod" ? "pod" : "workloadentry"}.name=${w.name}`];
  const app = w.labels["service.istio.io/canonical-name"] ?? w.labels.app;
  if (app) parts.push(`service.name=${app}`);
  const version = w.labels["service.istio.io/canonical-revision"] ?? w.labels.version;
  if (version) parts.push(`service.version=${version}`);
  return parts.join(",");
}

export function handleOutbound(inputs: ProxyInputs, client: SocketStream): void {
  const started = performance.now();
  const srcAddress = client.remoteAddress;
  const dst = inputs.originalDestination(client);
  // One trace per connection, sent on the CONNECT: the waypoint and the destination ztunnel log its id too.
  const traceparent = newTraceparent();
  const base: ConnectionView = {
    reporter: "source",
    direction: "outbound",
    srcAddress,
    dstAddress: dst ? formatHostPort(dst.address, dst.port) : "unknown",
    securityPolicy: "none",
    traceId: traceIdOf(traceparent),
  };
  if (!inputs.accepting()) {
    return refuse(inputs, client, [base], "DENY", "ztunnel is not ready (or draining): captured traffic is refused", started);
  }
  if (!dst) {
    return refuse(inputs, client, [base], "DENY", "connection reached the outbound port without being captured", started);
  }
  const src = inputs.state.localWorkloadAt(srcAddress);
  if (!src) {
    return refuse(inputs, client, [base], "DENY", `source ${srcAddress} is not an ambient workload of node ${inputs.state.node}`, started);
  }
  const index = inputs.state.index;
  const plan = planOutbound(index, inputs.state.node, dst, inputs.rr);
  const view: ConnectionView = {
    ...base,
    srcWorkload: src,
    srcIdentity: src.identity,
    dstWorkload: plan.kind === "external" ? undefined : plan.workload,
    service: plan.kind === "external" ? undefined : plan.service,
    external: "external" in plan && plan.external ? externalOf(plan.external) : undefined,
  };
  if (plan.kind === "deny") return refuse(inputs, client, [view], "DENY", plan.reason, started);
  if (plan.kind === "external") return external(inputs, client, plan, view, started);
  if (plan.kind === "passthrough") {
    inputs.dial(plan.address, plan.port).then(
      (upstream) => proxy(inputs, client, upstream, [view], started),
      (e) => refuse(inputs, client, [view], "UF", `passthrough to ${formatHostPort(plan.address, plan.port)} failed: ${(e as Error).message}`, started),
    );
    return;
  }
  const tunneled: ConnectionView = {
    ...view,
    dstIdentity: plan.waypoint ? plan.waypoint.identity : plan.workload?.identity,
    hboneAddress: formatHostPort(plan.hboneAddress, plan.hbonePort),
    waypoint: plan.waypoint ? `${plan.waypoint.namespace}/${plan.waypoint.name}` : undefined,
    securityPolicy: "mutual_tls",
  };
  if (plan.sameNode && !plan.waypoint) return sameNode(inputs, client, src, plan, tunneled, started);
  inputs.hbone.connect({
    address: plan.hboneAddress,
    port: plan.hbonePort,
    authority: plan.authority,
    headers: {
      // host= names the Service the client addressed (telemetry only: the destination trusts nothing else in it).
      forwarded: formatForwarded({ ip: srcAddress, port: client.socket.remotePort }, plan.service?.hostname ?? plan.external?.host),
      baggage: baggageOf(src),
      traceparent,
    },
    sourceIdentity: src.identity,
    expectedIdentities: plan.expectedIdentities,
  }).then(
    (tunnel) => proxy(inputs, client, tunnel, [tunneled], started),
    (e) => {
      const status = statusOf(e);
      const reason = `HBONE to ${plan.authority} via ${tunneled.hboneAddress} ${status ? `refused with ${status}` : "failed"}: ${(e as Error).message}`;
      if (status !== 401) log.warn("outbound tunnel failed", { src: srcAddress, dst: tunneled.dstAddress, reason, trace_id: tunneled.traceId });
      refuse(inputs, client, [tunneled], status === 401 ? "DENY" : "UF", reason, started);
    },
  );
}

/**
 * A destination on this node: the tunnel would leave and come back through the same ztunnel, so the
 * destination side runs here, with the same decision as HBONE arriving on 15008 (policies, waypoint
 * bypass) and both reports (source and destination).
 */
function sameNode(
  inputs: ProxyInputs,
  client: SocketStream,
  src: Workload,
  plan: HbonePlan,
  view: ConnectionView,
  started: number,
): void {
  const d = decideHboneInbound(inputs.state.index, inputs.state.node, {
    authority: plan.authority,
    peerIdentity: src.identity,
    peerIp: client.remoteAddress,
  });
  const inbound: ConnectionView = { ...view, reporter: "destination", direction: "inbound", dstWorkload: d.workload ?? view.dstWorkload };
  if (!d.ok) return refuse(inputs, client, [view, inbound], "DENY", `${d.status}: ${d.reason}`, started);
  inputs.dial(d.ip, d.port).then(
    (upstream) => proxy(inputs, client, upstream, [view, inbound], started),
    (e) => refuse(inputs, client, [view, inbound], "UF", `connect to ${plan.authority} failed: ${(e as Error).message}`, started),
  );
}

function externalOf(at: RegistryHost): ExternalDestination {
  return { host: at.host, name: at.entry.name, namespace: at.entry.namespace };
}

/**
 * A ServiceEntry destination without a waypoint: plain TCP from the ztunnel to a STATIC endpoint, the
 * original address (NONE), or the host's addresses from the upstream resolver (DNS, cached for the
 * record's TTL), tried in order.
 */
function external(inputs: ProxyInputs, client: SocketStream, plan: ExternalPlan, view: ConnectionView, started: number): void {
  const addresses = plan.address
    ? Promise.resolve([plan.address])
    : inputs.resolver
    ? inputs.resolver.resolve(plan.resolveHost!)
    : Promise.reject(new Error("this ztunnel has no resolver"));
  addresses.then(
    async (list) => {
      let last: unknown;
      for (const address of list) {
        try {
          const upstream = await inputs.dial(address, plan.port);
          return proxy(inputs, client, upstream, [view], started);
        } catch (e) {
          last = e;
        }
      }
      refuse(inputs, client, [view], "UF", `connect to ${plan.external.host} (${list.join(", ")}) port ${plan.port} failed: ${(last as Error)?.message}`, started);
    },
    (e) => refuse(inputs, client, [view], "UF", `cannot resolve ${plan.resolveHost}: ${(e as Error).message}`, started),
  );
}
