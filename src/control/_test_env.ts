/** Test scaffolding for the control role's tests (private to src/control). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLevels, setLevel, setSink } from "../core/mod.ts";
import { type ProxyId, XdsClient, type XdsClientOptions } from "../xds/mod.ts";
import {
  bootstrapToken,
  namespaceYaml,
  podYaml,
  replaceFile,
  serviceAccountYaml,
  serviceYaml,
  waypointYaml,
  yamlFile,
} from "../../test/support/mod.ts";

export interface PodSpec {
  name: string;
  node: string;
  sa: string;
  ip: string;
  labels?: Record<string, string>;
}

export const BASE_PODS: PodSpec[] = [
  { name: "viewer", node: "node-a", sa: "viewer", ip: "10.244.1.10" },
  { name: "api", node: "node-b", sa: "api", ip: "10.244.2.10" },
];

/** A small mesh: namespace shop (ambient), pods, a Service bound to the waypoint shop/wp, one policy. */
export function meshYaml(pods: PodSpec[] = BASE_PODS, extra = ""): string {
  const sas = [...new Set([...pods.map((p) => p.sa), "wp"])];
  return yamlFile(
    namespaceYaml("shop"),
    ...sas.map((sa) => serviceAccountYaml(sa)),
    ...pods.map((p) => podYaml({ name: p.name, node: p.node, serviceAccount: p.sa, ip: p.ip, labels: p.labels, containerPorts: [8080] })),
    serviceYaml({ name: "api", clusterIP: "10.96.0.20", labels: { "istio.io/use-waypoint": "wp" }, selector: { app: "api" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] }),
    waypointYaml({ name: "wp", addresses: ["10.244.2.20"], for: "service" }),
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: api-from-viewer\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: api\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: ["cluster.local/ns/shop/sa/viewer"]`,
    extra,
  );
}

export function tempDir(prefix = "mesh-control-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function client(
  tc: { address: string; dir: string },
  proxy: ProxyId,
  more: Partial<XdsClientOptions> = {},
): Promise<XdsClient> {
  const dataDir = join(tc.dir, "data");
  const tok = await bootstrapToken(dataDir, proxy.kind === "ztunnel" ? { node: proxy.node } : { gateway: `${proxy.namespace}/${proxy.name}` });
  const caCertPem = await Bun.file(join(dataDir, "root-cert.pem")).text();
  return new XdsClient({ controlPlane: tc.address, caCertPem, token: tok, proxy, backoff: { initialMs: 50, maxMs: 500 }, ...more });
}

/** Captures log lines (parsed JSON) of every level of `scopes` until release(). */
export function captureLogs(scopes: string[]): { lines: Record<string, unknown>[]; release(): void } {
  const lines: Record<string, unknown>[] = [];
  const levels = getLevels();
  for (const s of scopes) setLevel(s, "debug");
  const prev = setSink((line) => {
    try {
      lines.push(JSON.parse(line));
    } catch { /* not JSON */ }
  });
  return {
    lines,
    release: () => {
      setSink(prev);
      for (const s of scopes) setLevel(s, levels[s] ?? levels.default ?? "info");
    },
  };
}

export function writeMesh(dir: string, text: string): void {
  replaceFile(join(dir, "mesh.yaml"), text);
}

