/**
 * The API client and the list+watch reflector against the fake API server (real HTTPS on loopback): paged
 * lists, watch events in order, bookmarks, 410 Gone, reconnects with backoff, missing CRDs, and both ways
 * of reaching a cluster (kubeconfig with a token or a client certificate, in-cluster files).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLevel } from "../core/mod.ts";
import { FakeApiServer } from "./_test_apiserver.ts";
import { KubeApiError, KubeClient, type KubeObject } from "./client.ts";
import { fromKubeconfig, inCluster, resolveConnection } from "./connection.ts";
import { Reflector } from "./reflector.ts";
import { AUTHORIZATION_POLICIES, CONFIG_MAPS, PODS } from "./resources.ts";
import { waitFor } from "../../test/support/mod.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-kube-"));
let api: FakeApiServer;
let client: KubeClient;
const reflectors: Reflector[] = [];

function pod(name: string, node = "node-a", ip = "10.244.1.10") {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "shop", labels: { app: name } }, spec: { nodeName: node, containers: [{ name: "c" }] }, status: { podIP: ip } };
}

beforeAll(async () => {
  setLevel("kube", "error");
  api = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
  api.put({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
  client = new KubeClient(fromKubeconfig(api.writeKubeconfig(join(dir, "kubeconfig"))));
});
afterAll(async () => {
  for (const r of reflectors) await r.stop();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("connection", () => {
  test("kubeconfig with a client certificate reaches the server; a wrong token is 401 Unauthorized", async () => {
    const c = new KubeClient(fromKubeconfig(api.writeKubeconfig(join(dir, "kc-cert"), { kind: "cert" })));
    const ns = await c.get(PODS.plural === "pods" ? { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false } : PODS, undefined, "shop");
    expect(ns.metadata.uid).toBeString();
    const bad = new KubeClient(fromKubeconfig(api.writeKubeconfig(join(dir, "kc-bad"), { kind: "token", token: "nope" })));
    const e = await bad.list(PODS).catch((x) => x);
    expect(e).toBeInstanceOf(KubeApiError);
    expect((e as KubeApiError).status).toBe(401);
    expect((e as KubeApiError).reason).toBe("Unauthorized");
  });

  test("in-cluster: KUBERNETES_SERVICE_HOST/PORT, the mounted token, CA and namespace", async () => {
    const sa = join(dir, "sa");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, "token"), api.adminToken + "\n");
    writeFileSync(join(sa, "ca.crt"), api.caPem);
    writeFileSync(join(sa, "namespace"), "mesh-system");
    const port = new URL(api.url).port;
    const env = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port };
    const conn = resolveConnection({ env, inClusterDir: sa });
    expect(conn.origin).toBe("in-cluster");
    expect(conn.namespace).toBe("mesh-system");
    expect(conn.server).toBe(`https://127.0.0.1:${port}`);
    const list = await new KubeClient(conn).list(PODS);
    expect(list.resourceVersion).toMatch(/^\d+$/);
    // --kubeconfig wins over in-cluster; nothing at all is a clear error.
    expect(resolveConnection({ env, inClusterDir: sa, kubeconfig: join(dir, "kubeconfig") }).origin).toBe(join(dir, "kubeconfig"));
    expect(() => resolveConnection({ env: { HOME: dir }, inClusterDir: join(dir, "none") })).toThrow(/--kubeconfig/);
    expect(() => inCluster({ env: {}, inClusterDir: sa })).toThrow(/KUBERNETES_SERVICE_HOST/);
  });

  test("a kubeconfig user with an exec plugin is refused with the reason", () => {
    const p = join(dir, "kc-exec");
    writeFileSync(p, `apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    exec:\n      command: aws\n`);
    expect(() => fromKubeconfig(p)).toThrow(/exec or auth-provider plugin/);
  });
});

describe("client", () => {
  test("lists page by page (limit/continue), items typed, one resourceVersion", async () => {
    for (let i = 0; i < 7; i++) api.put(pod(`p${i}`, "node-a", `10.244.1.${20 + i}`));
    const before = api.requests.length;
    const { items, resourceVersion } = await client.list(PODS, { limit: 3 });
    const pages = api.requests.slice(before).filter((r) => r.verb === "list");
    expect(pages.length).toBe(3);
    expect(items.map((p) => p.metadata.name)).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    expect(items.every((p) => p.kind === "Pod" && p.apiVersion === "v1")).toBe(true);
    expect(Number(resourceVersion)).toBe(api.resourceVersion);
    for (let i = 0; i < 7; i++) api.remove("Pod", "shop", `p${i}`);
  });

  test("create, conflict on a stale update, merge patch of status, AlreadyExists and NotFound reasons", async () => {
    const cm = await client.create(CONFIG_MAPS, { metadata: { name: "x", namespace: "shop" }, data: { a: "1" } } as KubeObject);
    expect(cm.metadata.resourceVersion).toBeString();
    const again = await client.create(CONFIG_MAPS, { metadata: { name: "x", namespace: "shop" } }).catch((e) => e);
    expect((again as KubeApiError).reason).toBe("AlreadyExists");
    const updated = await client.update(CONFIG_MAPS, { ...cm, data: { a: "2" } });
    const stale = await client.update(CONFIG_MAPS, { ...cm, data: { a: "3" } }).catch((e) => e);
    expect((stale as KubeApiError).status).toBe(409);
    expect((stale as KubeApiError).reason).toBe("Conflict");
    expect((updated as { data: Record<string, string> }).data.a).toBe("2");
    const missing = await client.get(CONFIG_MAPS, "shop", "nope").catch((e) => e);
    expect((missing as KubeApiError).reason).toBe("NotFound");
    api.put({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "ap", namespace: "shop" }, spec: { action: "ALLOW" } });
    const patched = await client.mergePatch(AUTHORIZATION_POLICIES, "shop", "ap", { status: { conditions: [{ type: "WaypointAccepted", status: "False" }] } }, "status");
    expect((patched.status as { conditions: unknown[] }).conditions).toHaveLength(1);
    expect((patched.spec as { action: string }).action).toBe("ALLOW");
  });
});

describe("reflector", () => {
  test("list then watch: ADDED, MODIFIED, DELETED in order; bookmarks advance the resourceVersion", async () => {
    let changes = 0;
    const r = new Reflector(client, PODS, { onChange: () => changes++, backoff: { initialMs: 20, maxMs: 200 } });
    reflectors.push(r);
    api.put(pod("viewer"));
    r.start();
    await waitFor("synced", () => r.synced, 5000);
    expect(r.items().map((p) => p.metadata.name)).toEqual(["viewer"]);
    api.put(pod("api", "node-b", "10.244.2.10"));
    await waitFor("added", () => r.get("shop", "api"), 5000);
    api.put({ ...pod("api", "node-b", "10.244.2.10"), status: { podIP: "10.244.2.10", conditions: [{ type: "Ready", status: "False" }] } });
    await waitFor("modified", () => (r.get("shop", "api")?.status as { conditions?: unknown[] })?.conditions, 5000);
    api.remove("Pod", "shop", "viewer");
    await waitFor("deleted", () => !r.get("shop", "viewer"), 5000);
    // Writes to other kinds advance the global resourceVersion; a bookmark carries it to this watch.
    api.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "bump", namespace: "shop" } });
    const rv = api.resourceVersion;
    await waitFor("bookmark", () => Number(r.resourceVersion) >= rv, 5000);
    expect(r.lists).toBe(1);
    expect(changes).toBeGreaterThanOrEqual(4);
  });

  test("a dropped watch resumes from its resourceVersion without a relist; 410 Gone relists", async () => {
    const restarts: string[] = [];
    const r = new Reflector(client, PODS, { onChange() {}, backoff: { initialMs: 20, maxMs: 200 }, onRestart: (why) => restarts.push(why) });
    reflectors.push(r);
    r.start();
    await waitFor("synced", () => r.synced, 5000);
    await waitFor("watching", () => api.openWatches >= 2, 5000);
    api.dropWatches();
    api.put(pod("while-away", "node-a", "10.244.1.99"));
    await waitFor("event after reconnect", () => r.get("shop", "while-away"), 5000);
    expect(r.lists).toBe(1);
    // Compaction while disconnected: the resumed watch gets an ERROR 410 Expired event -> relist.
    const errorsBefore = restarts.filter((x) => x === "error").length;
    api.setUnavailable(true);
    api.put(pod("during-outage", "node-a", "10.244.1.98"));
    api.remove("Pod", "shop", "while-away");
    api.compact();
    // The outage lasts until the reflector has met it (a fixed 100 ms was sometimes over before its
    // first attempt on a loaded machine).
    await waitFor("an attempt refused during the outage", () => restarts.filter((x) => x === "error").length > errorsBefore, 5000);
    api.setUnavailable(false);
    await waitFor("relisted", () => r.lists >= 2 && r.get("shop", "during-outage"), 8000);
    expect(r.get("shop", "while-away")).toBeUndefined();
    expect(restarts).toContain("relist-gone");
    expect(restarts.filter((x) => x === "error").length).toBeGreaterThan(errorsBefore);
  });

  test("the last good copy keeps serving while the API server is down, with backoff between attempts", async () => {
    const r = new Reflector(client, PODS, { onChange() {}, backoff: { initialMs: 50, maxMs: 400 } });
    reflectors.push(r);
    r.start();
    await waitFor("synced", () => r.synced, 5000);
    const n = r.items().length;
    const before = api.requests.length;
    api.setUnavailable(true);
    await Bun.sleep(1200);
    // On a loaded machine the first refused attempts can come late: wait for them (this waits only while
    // there are fewer than two, so the bound on the count below still means something).
    await waitFor("refused attempts", () => r.lastError?.includes("503") && api.requests.slice(before).filter((x) => x.status === 503).length > 1, 5000);
    const attempts = api.requests.slice(before).filter((x) => x.status === 503).length;
    api.setUnavailable(false);
    expect(r.items().length).toBe(n);
    expect(r.lastError).toMatch(/503/);
    // 50, 100, 200, 400, 400 ms... across all reflectors of this file: a handful, not hundreds.
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(40);
  });

  test("a CRD that is not installed counts as empty and is picked up once served; v1beta1 fallback", async () => {
    api.unserve("security.istio.io");
    const r = new Reflector(client, AUTHORIZATION_POLICIES, { onChange() {}, missingRetryMs: 100, olderVersions: ["v1beta1"] });
    reflectors.push(r);
    r.start();
    await waitFor("missing", () => r.state === "missing", 5000);
    expect(r.synced).toBe(true);
    expect(r.items()).toEqual([]);
    api.serve("security.istio.io");
    await waitFor("listed", () => r.state === "synced" && r.get("shop", "ap"), 5000);
    expect(r.servedVersion).toBe("v1");
    // A cluster with only v1beta1 (older Istio): the same kind is read at v1beta1.
    const old = new Reflector(client, { ...AUTHORIZATION_POLICIES, version: "v9" }, { onChange() {}, olderVersions: ["v1beta1"] });
    reflectors.push(old);
    old.start();
    await waitFor("old synced", () => old.state === "synced", 5000);
    expect(old.servedVersion).toBe("v1beta1");
    expect(old.get("shop", "ap")?.apiVersion).toBe("security.istio.io/v1beta1");
  });
});
