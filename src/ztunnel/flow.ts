/**
 * A finished connection as a flow record for the control role's traffic map and `mesh observe`.
 */
import type { Workload } from "../model/mod.ts";
import { policyOfReason } from "../proxy/mod.ts";
import type { FlowRecord } from "../xds/mod.ts";
import type { ConnectionOutcome, ConnectionView } from "./telemetry.ts";

const name = (w: Workload | undefined) => (w ? `${w.namespace}/${w.name}` : undefined);

export function flowOfConnection(proxy: string, v: ConnectionView, o: ConnectionOutcome): FlowRecord {
  const [dstIp, dstPort] = splitHostPort(v.dstAddress);
  return {
    time: Date.now(),
    proxy,
    reporter: v.reporter,
    l7: false,
    src: { workload: name(v.srcWorkload), namespace: v.srcWorkload?.namespace, identity: v.srcIdentity, address: v.srcAddress },
    dst: {
      workload: name(v.dstWorkload),
      namespace: v.dstWorkload?.namespace ?? v.service?.namespace,
      identity: v.dstIdentity,
      address: dstIp,
      port: dstPort,
      service: v.service ? `${v.service.namespace}/${v.service.name}` : undefined,
    },
    waypoint: v.waypoint,
    tunneled: v.reporter === "source" ? v.hboneAddress !== undefined : undefined,
    bytesIn: o.received,
    bytesOut: o.sent,
    durationMs: Math.round(o.durationMs * 10) / 10,
    verdict: o.flags === "DENY" ? "denied" : o.flags === "UF" ? "error" : "allowed",
    reason: o.reason ?? o.error,
    policy: o.flags === "DENY" ? policyOfReason(o.reason) : undefined,
    mtls: v.securityPolicy === "mutual_tls",
    traceId: v.traceId,
  };
}

function splitHostPort(addr: string): [string, number | undefined] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  return m ? [m[1]!, Number(m[2])] : [addr, undefined];
}
