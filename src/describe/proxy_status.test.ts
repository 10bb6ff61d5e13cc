import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../config/mod.ts";
import { expectedProxies, formatProxyStatus, type ProxyFact, proxyConfig, proxyStatus } from "./mod.ts";

const model = parseConfig([{ path: "mesh.yaml", text: readFileSync(join(import.meta.dir, "..", "..", "config", "mesh.yaml"), "utf8") }]).model;
const now = Date.parse("2025-01-01T12:00:00Z");
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
const zt = (node: string, more: Partial<ProxyFact> = {}): ProxyFact => ({
  id: `ztunnel/${node}`,
  kind: "ztunnel",
  node,
  remote: "10.99.0.11:4000",
  connectedSince: iso(60_000),
  ackedVersion: 5,
  certificates: [{ identity: "spiffe://cluster.local/ns/ambient-ns/sa/x", notAfter: iso(-3600_000), issuedAt: iso(3600_000) }],
  ...more,
});

test("expected proxies: a ztunnel per node with ambient workloads, a waypoint per Gateway", () => {
  expect(expectedProxies(model).map((e) => e.id)).toEqual(["ztunnel/node-a", "ztunnel/node-b", "waypoint/ambient-ns/product-api-waypoint"]);
});

test.each([
  ["acked the latest", { ackedVersion: 5 }, 0, "SYNCED"],
  ["behind, latest made 3 s ago", { ackedVersion: 4 }, 3_000, "PENDING"],
  ["behind for 30 s without a NACK", { ackedVersion: 4 }, 30_000, "STALE"],
  ["never acked, connected 1 min ago", { ackedVersion: undefined }, 30_000, "STALE"],
  ["refused the latest", { ackedVersion: 4, nack: { version: 5, reason: "bad", at: iso(1000) } }, 30_000, "NACK"],
  ["an old NACK, then acked a newer one", { ackedVersion: 5, nack: { version: 4, reason: "bad", at: iso(1000) } }, 30_000, "SYNCED"],
] as const)("%s -> %s", (_name, more, latestAgo, state) => {
  const r = proxyStatus("cp", { version: 5, versionAt: iso(latestAgo), proxies: [zt("node-a", more as Partial<ProxyFact>)] }, model, { now });
  expect(r.proxies.find((p) => p.id === "ztunnel/node-a")!.state).toBe(state);
});

test("missing, expired and duplicate proxies are problems; every expected proxy synced is ok", () => {
  const r = proxyStatus("cp", {
    version: 5,
    versionAt: iso(1000),
    proxies: [
      zt("node-a", { certificates: [{ identity: "spiffe://cluster.local/ns/ambient-ns/sa/x", notAfter: iso(60_000), issuedAt: iso(86400_000) }] }),
      zt("node-b"),
      zt("node-b", { connectedSince: iso(1000) }),
    ],
  }, model, { now });
  expect(r.ok).toBe(false);
  expect(r.problems).toEqual([
    "waypoint/ambient-ns/product-api-waypoint: not connected to the control plane, but the configuration expects it (istio-waypoint Gateway ambient-ns/product-api-waypoint): traffic through it fails until it is back",
    "ztunnel/node-a: certificate of spiffe://cluster.local/ns/ambient-ns/sa/x EXPIRED 60s ago",
    "ztunnel/node-b: 2 connections for this proxy (an overlapping restart, or two processes claim it)",
    "ztunnel/node-b: 2 connections for this proxy (an overlapping restart, or two processes claim it)",
  ]);
  expect(formatProxyStatus(r, now)).toContain("Needs attention:");
  const ok = proxyStatus("cp", {
    version: 5,
    versionAt: iso(1000),
    proxies: [zt("node-a"), zt("node-b"), { ...zt("x"), id: "waypoint/ambient-ns/product-api-waypoint", kind: "waypoint", node: undefined, gateway: "ambient-ns/product-api-waypoint" }],
  }, model, { now });
  expect(ok.ok).toBe(true);
  expect(formatProxyStatus(ok, now)).toContain("Every expected proxy is connected and synced.");
});

test("proxy-config rows from a ztunnel's config dump: its node's workloads, and certificates of both /certs shapes", () => {
  const dump = { node: "node-a", version: 3, localWorkloads: [{ uid: "Pod/ambient-ns/product-viewer", identity: "x", addresses: [] }], model };
  const w = proxyConfig("workloads", dump, { certificates: [{ identity: "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa", state: "valid", notAfter: iso(-1000) }] }, { now });
  expect(w.rows).toEqual([expect.objectContaining({ name: "product-viewer", captured: true, certificate: "valid" })]);
  const c = proxyConfig("certs", { gateway: "ambient-ns/wp" }, [{ identity: "spiffe://a", serial: "01", notBefore: iso(1000), notAfter: iso(-7200_000) }], { now });
  expect(c.rows).toEqual([expect.objectContaining({ identity: "spiffe://a", state: "valid", expires: "in 2h" })]);
  expect(() => proxyConfig("services", { node: "node-a" }, undefined)).toThrow(/no configuration yet/);
});

test("a refused configuration file is a problem, with its first error", () => {
  const r = proxyStatus("cp", {
    version: 5,
    versionAt: iso(1000),
    proxies: [],
    config: { source: "/etc/mesh/mesh.yaml", lastError: { at: iso(90_000), diagnostics: [
      { file: "/etc/mesh/mesh.yaml", line: 12, col: 3, severity: "warning", message: "meh", rule: "w" },
      { file: "/etc/mesh/mesh.yaml", line: 40, col: 9, severity: "error", message: "L7 without waypoint", rule: "l7-without-waypoint" },
    ] } },
  }, undefined, { now });
  expect(r.configError).toEqual({ at: iso(90_000), errors: ["/etc/mesh/mesh.yaml:40:9: L7 without waypoint [l7-without-waypoint]"] });
  expect(r.problems[0]).toBe(
    "configuration: the control plane refuses /etc/mesh/mesh.yaml since 90s ago (1 error, first: /etc/mesh/mesh.yaml:40:9: L7 without waypoint [l7-without-waypoint]); it keeps serving version 5",
  );
  expect(r.ok).toBe(false);
});
