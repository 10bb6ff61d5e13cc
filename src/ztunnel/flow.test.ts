import { expect, test } from "bun:test";
import { service, workload as pod } from "../../test/support/mod.ts";
import { flowOfConnection } from "./flow.ts";
import type { ConnectionView } from "./telemetry.ts";

const viewer = pod("product-viewer", "ambient-ns", "10.244.1.10", "node-a", { serviceAccount: "product-viewer-sa" });
const api = pod("product-api", "ambient-ns", "10.244.2.10", "node-b", { serviceAccount: "product-api-sa" });
const svc = service("product-api", "ambient-ns", "10.96.0.20", [{ port: 8000, targetPort: 80 }], [api]);

test("a connection the destination ztunnel refused: denied, with its policy, peers and trace id", () => {
  const v: ConnectionView = {
    reporter: "destination",
    direction: "inbound",
    srcAddress: "10.244.1.10",
    srcWorkload: viewer,
    srcIdentity: viewer.identity,
    dstAddress: "10.244.2.10:80",
    dstWorkload: api,
    dstIdentity: api.identity,
    service: svc,
    securityPolicy: "mutual_tls",
    traceId: "f".repeat(32),
  };
  const f = flowOfConnection("ztunnel/node-b", v, { received: 0, sent: 0, durationMs: 1.234, flags: "DENY", reason: "401: no ALLOW policy matched (ambient-ns/require-get-on-products)" });
  expect(f).toMatchObject({
    proxy: "ztunnel/node-b",
    reporter: "destination",
    l7: false,
    src: { workload: "ambient-ns/product-viewer", namespace: "ambient-ns", identity: viewer.identity, address: "10.244.1.10" },
    dst: { workload: "ambient-ns/product-api", service: "ambient-ns/product-api", address: "10.244.2.10", port: 80 },
    verdict: "denied",
    policy: "ambient-ns/require-get-on-products",
    mtls: true,
    traceId: "f".repeat(32),
    durationMs: 1.2,
  });
  expect(f.tunneled).toBeUndefined();
});

test("at the source: tunneled or not (the graph counts an untunneled one there), plaintext, a failed connect", () => {
  const base: ConnectionView = { reporter: "source", direction: "outbound", srcAddress: "10.244.1.10", srcWorkload: viewer, dstAddress: "93.184.216.34:443", securityPolicy: "none" };
  const out = flowOfConnection("ztunnel/node-a", base, { received: 10, sent: 20, durationMs: 5, flags: "-" });
  expect(out).toMatchObject({ tunneled: false, mtls: false, verdict: "allowed", bytesIn: 10, bytesOut: 20, dst: { address: "93.184.216.34", port: 443 } });
  const tunneled = flowOfConnection("ztunnel/node-a", { ...base, hboneAddress: "10.244.2.10:15008", securityPolicy: "mutual_tls" }, { received: 0, sent: 0, durationMs: 5, flags: "UF", reason: "connect refused" });
  expect(tunneled).toMatchObject({ tunneled: true, mtls: true, verdict: "error", reason: "connect refused", policy: undefined });
});
