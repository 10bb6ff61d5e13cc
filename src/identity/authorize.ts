/**
 * Node authorization: which identities the CA may sign for a caller. Pure.
 *
 * Istio's rule (ztunnel acting for its node's workloads): a ztunnel may obtain a certificate for an
 * identity only while a workload with that identity is scheduled on the ztunnel's own node, so a
 * compromised node cannot mint identities of workloads it does not run. A waypoint runs as its Gateway's
 * service account and may obtain only that identity. Operators (admin tokens) manage the mesh but never
 * hold workload identities.
 *
 * A waypoint's identity is never issued to a node, even when a workload of that node runs as the
 * waypoint's service account: the destination ztunnel admits a waypoint-served workload's traffic only
 * from its waypoint and believes the client address a waypoint forwards, so whoever holds that identity
 * could bypass the waypoint's policies. Only the waypoint itself (its gateway caller) gets it; `mesh check`
 * reports such a workload (waypoint-service-account).
 */
import type { MeshModel } from "../model/mod.ts";
import { type Caller, describeCaller } from "./caller.ts";
import { trySpiffeId } from "../model/mod.ts";

/** The outcome of mayIssue: allowed, or refused with a reason fit for a log line and the caller. */
export type IssueDecision = { ok: true } | { ok: false; reason: string };

/**
 * May the CA sign `identity` for `caller` under the current configuration?
 * @example
 * mayIssue({ kind: "node", node: "worker-a" }, "spiffe://cluster.local/ns/shop/sa/api", model)
 * // { ok: true } only if a workload with that identity has node "worker-a"
 */
export function mayIssue(caller: Caller, identity: string, model: MeshModel): IssueDecision {
  const id = trySpiffeId(identity);
  if ("error" in id) return { ok: false, reason: `"${identity}" is not a valid SPIFFE ID: ${id.error}` };
  const td = model.meshConfig.trustDomain;
  if (id.trustDomain !== td) {
    return { ok: false, reason: `identity "${identity}" is not in this mesh's trust domain "${td}"` };
  }
  switch (caller.kind) {
    case "node": {
      const wp = model.waypoints.find((w) => w.identity === identity);
      if (wp) {
        return {
          ok: false,
          reason: `${describeCaller(caller)} may not get "${identity}": it is the identity of waypoint ${wp.namespace}/${wp.name}, which only that waypoint gets (a workload running as the waypoint's service account gets no certificate; give it its own service account)`,
        };
      }
      let elsewhere = false;
      for (const w of model.workloads) {
        if (w.identity !== identity) continue;
        if (w.node === caller.node) return { ok: true };
        elsewhere = true;
      }
      return {
        ok: false,
        reason: elsewhere
          ? `${describeCaller(caller)} may not get "${identity}": no workload with that identity is scheduled on node "${caller.node}" (only on other nodes)`
          : `${describeCaller(caller)} may not get "${identity}": no workload in the configuration has that identity`,
      };
    }
    case "gateway": {
      const wp = model.waypoints.find((w) => w.namespace === caller.namespace && w.name === caller.name);
      if (!wp) {
        return { ok: false, reason: `${describeCaller(caller)} may not get "${identity}": no waypoint Gateway ${caller.namespace}/${caller.name} in the configuration` };
      }
      if (wp.identity !== identity) {
        return { ok: false, reason: `${describeCaller(caller)} may only get its own identity "${wp.identity}", not "${identity}"` };
      }
      return { ok: true };
    }
    case "admin":
      return { ok: false, reason: `admin callers never get workload certificates (asked for "${identity}")` };
  }
}
