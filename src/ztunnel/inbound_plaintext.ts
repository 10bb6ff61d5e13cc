/**
 * Inbound plaintext (15006): TCP to a local workload from outside the mesh, captured by the node's
 * rules. PeerAuthentication STRICT refuses it; PERMISSIVE admits it with no principal, and L4
 * policies (ipBlocks, ports, and principals that then cannot match) still apply.
 */
import { newTraceId } from "../telemetry/mod.ts";
import { decidePlaintextInbound } from "./inbound_decision.ts";
import { type ProxyInputs, proxy, refuse } from "./inputs.ts";
import type { SocketStream } from "../stream/mod.ts";
import type { ConnectionView } from "./telemetry.ts";

export function handleInboundPlaintext(inputs: ProxyInputs, client: SocketStream): void {
  const started = performance.now();
  const dst = inputs.originalDestination(client);
  const srcAddress = client.remoteAddress;
  const index = inputs.state.index;
  const view: ConnectionView = {
    reporter: "destination",
    direction: "inbound",
    srcAddress,
    srcWorkload: index.workloadByAddress(srcAddress),
    dstAddress: dst ? `${dst.address}:${dst.port}` : "unknown",
    securityPolicy: "none",
    // No CONNECT, so no trace to continue: the id still names this connection in the log.
    traceId: newTraceId(),
  };
  if (!inputs.accepting()) return refuse(inputs, client, [view], "DENY", "ztunnel is not ready (or draining)", started);
  if (!dst) return refuse(inputs, client, [view], "DENY", "connection reached the plaintext port without being captured", started);
  const d = decidePlaintextInbound(index, inputs.state.node, dst, srcAddress);
  view.dstWorkload = d.workload;
  view.dstIdentity = d.workload?.identity;
  view.service = d.workload ? index.servicesOfWorkload(d.workload.uid)[0] : undefined;
  if (!d.ok) return refuse(inputs, client, [view], "DENY", d.reason, started);
  inputs.dial(d.ip, d.port).then(
    (upstream) => proxy(inputs, client, upstream, [view], started),
    (e) => refuse(inputs, client, [view], "UF", `connect to ${view.dstAddress} failed: ${(e as Error).message}`, started),
  );
}
