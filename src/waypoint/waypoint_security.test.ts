/**
 * Security properties of the request path, on real connections: a request is authorized for every
 * workload it is actually sent to (route backends, retries), identity headers only the mesh may set
 * never come from the client, and a configuration change under a connection never crashes the waypoint.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { API_VIP, baseYaml, DEMO_JWT, demoJwtOnApi, httpRoute, modelOf, startTestWaypoint, STRANGER, type TestWaypoint, VIEWER, WAYPOINT } from "./_test_env.ts";
import { toDuplex } from "../stream/mod.ts";
import { waitFor } from "../../test/support/mod.ts";


let wp: TestWaypoint;
beforeAll(async () => {
  wp = await startTestWaypoint();
});
afterAll(async () => {
  await wp?.close();
});
beforeEach(() => {
  wp.apps.seen.length = 0;
});


/** DENY for the viewer on the api pods labelled `version`. */
function denyViewerOn(version: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-viewer-on-${version}
  namespace: shop
spec:
  selector:
    matchLabels:
      version: ${version}
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/viewer"]`;
}

/** Service api-grpc-v1: the gRPC server, which only api-1 (version v1) runs. */
function grpcV1(): string {
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: api-grpc-v1\n  namespace: shop\nspec:\n  clusterIP: 10.96.0.23\n  selector:\n    version: v1\n  ports:\n  - name: grpc\n    port: 9000\n    targetPort: ${wp.apps.h2.port}`;
}

/** One gRPC-style call on the api VIP port 9000. */
async function grpcCall(path: string, headers: Record<string, string> = {}): Promise<{ status: number; grpcStatus?: string; body: string }> {
  const tunnel = await wp.tunnel({ authority: `${API_VIP}:9000` });
  const session = http2.connect("http://api.shop:9000", { createConnection: () => toDuplex(tunnel) as never });
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
      let h: http2.IncomingHttpHeaders = {};
      let grpcStatus: string | undefined;
      let body = "";
      const timer = setTimeout(() => reject(new Error("gRPC call timed out")), 5000);
      req.on("response", (x) => {
        h = x;
        if (x["grpc-status"] !== undefined) grpcStatus = String(x["grpc-status"]);
      });
      req.on("trailers", (t) => (grpcStatus = String(t["grpc-status"])));
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        clearTimeout(timer);
        resolve({ status: Number(h[":status"]), grpcStatus, body });
      });
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end("x");
    });
  } finally {
    session.close();
  }
}

describe("a request is authorized for the workload it is sent to", () => {
  test("a route to another backend: that backend's policies apply (HTTP/1.1)", async () => {
    wp.configure(`${denyViewerOn("v2")}\n---\n${httpRoute("to-v2", `  - backendRefs:\n    - name: api-v2\n      port: 8000`)}`);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await wp.request({ path: "/get" });
      statuses.push(r.status);
      if (r.status === 403) expect(r.body).toBe("RBAC: access denied");
    }
    expect(statuses).toEqual([403, 403, 403, 403, 403, 403]);
    expect(wp.apps.seen.filter((s) => s.app === "api-2")).toEqual([]);
    // Callers the backend admits still reach it through the route.
    const other = await wp.request({ path: "/get", identity: STRANGER });
    expect(other.status).toBe(200);
    expect(other.json<{ app: string }>().app).toBe("api-2");
    const lines = (await wp.accessLog()).filter((l) => l.status === 403);
    expect(String(lines.at(-1)?.details)).toContain("no-viewer-on-v2");
  });

  test("a retry on the next endpoint is authorized for it (HTTP/1.1)", async () => {
    wp.configure(`${denyViewerOn("v2")}\n---\n${httpRoute("retry", `  - retry:\n      attempts: 1\n      codes: [503]\n      backoff: 1ms\n    backendRefs:\n    - name: api\n      port: 8000`)}`);
    for (let i = 0; i < 4; i++) expect((await wp.request({ path: "/status/503" })).status).toBe(403);
    expect(wp.apps.seen.filter((s) => s.app === "api-2")).toEqual([]);
    // Admitted for api-1: its 503 was tried there.
    expect(wp.apps.seen.filter((s) => s.app === "api-1").length).toBeGreaterThan(0);
  });

  test("a route to another backend: that backend's policies apply (HTTP/2)", async () => {
    wp.configure([
      denyViewerOn("v1"),
      grpcV1(),
      httpRoute("grpc-to-v1", `  - backendRefs:\n    - name: api-grpc-v1\n      port: 9000`, "api", 9000),
    ].join("\n---\n"));
    for (let i = 0; i < 4; i++) {
      const r = await grpcCall("/shop.Api/Get");
      expect([r.status, r.grpcStatus]).toEqual([200, "7"]);
    }
    expect(wp.apps.seen.filter((s) => s.app === "h2")).toEqual([]);
  });

  test("a retry on the next endpoint is authorized for it (HTTP/2)", async () => {
    // api-2 has no gRPC server: a call admitted for it fails to connect and is retried on api-1, which denies the viewer.
    wp.configure(`${denyViewerOn("v1")}\n---\n${httpRoute("grpc-retry", `  - retry:\n      attempts: 1\n      backoff: 1ms\n    backendRefs:\n    - name: api\n      port: 9000`, "api", 9000)}`);
    for (let i = 0; i < 4; i++) expect((await grpcCall("/shop.Api/Get")).grpcStatus).toBe("7");
    expect(wp.apps.seen.filter((s) => s.app === "h2")).toEqual([]);
    // The stranger is not denied: the same retry reaches api-1.
    wp.apps.seen.length = 0;
    const ok: (string | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      const tunnel = await wp.tunnel({ identity: STRANGER, authority: `${API_VIP}:9000` });
      const session = http2.connect("http://api.shop:9000", { createConnection: () => toDuplex(tunnel) as never });
      ok.push(await new Promise<string | undefined>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/shop.Api/Get", "content-type": "application/grpc" });
        let g: string | undefined;
        req.on("response", (h) => h["grpc-status"] !== undefined && (g = String(h["grpc-status"])));
        req.on("trailers", (t) => (g = String(t["grpc-status"])));
        req.on("data", () => {});
        req.on("end", () => resolve(g));
        req.on("error", reject);
        req.end("x");
      }).finally(() => session.close()));
    }
    expect(ok).toEqual(["0", "0"]);
  });

  test("a mirror's copy is sent only if the mirror backend admits the request", async () => {
    wp.configure(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-viewer-on-mirror
  namespace: shop
spec:
  selector:
    matchLabels:
      app: mirror
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/viewer"]
---
${httpRoute("m", `  - filters:\n    - type: RequestMirror\n      requestMirror:\n        backendRef:\n          name: mirror\n          port: 8000\n    backendRefs:\n    - name: api\n      port: 8000`)}`);
    expect((await wp.request({ method: "POST", path: "/from-viewer", body: "v" })).status).toBe(200);
    expect((await wp.request({ method: "POST", path: "/from-stranger", body: "s", identity: STRANGER })).status).toBe(200);
    await waitFor("the stranger's mirrored copy", () => wp.apps.seen.some((s) => s.app === "mirror"), 3000);
    // The stranger's copy arrived (mirrors work), so the viewer's, sent first, would have too.
    await Bun.sleep(50);
    expect(wp.apps.seen.filter((s) => s.app === "mirror").map((s) => s.path)).toEqual(["/from-stranger"]);
  });

  test("a backend served by another waypoint is refused (fail closed)", async () => {
    wp.configure([
      `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: wp2\n  namespace: shop\nspec:\n  gatewayClassName: istio-waypoint\n  listeners:\n  - name: mesh\n    port: 15008\n    protocol: HBONE`,
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: api-other\n  namespace: shop\n  labels:\n    istio.io/use-waypoint: wp2\nspec:\n  clusterIP: 10.96.0.24\n  selector:\n    version: v2\n  ports:\n  - name: http\n    port: 8000\n    targetPort: ${wp.apps.http.api!.port}`,
      httpRoute("to-other", `  - backendRefs:\n    - name: api-other\n      port: 8000`),
    ].join("\n---\n"));
    for (const identity of [VIEWER, STRANGER]) {
      const r = await wp.request({ path: "/get", identity });
      expect([r.status, r.body]).toEqual([403, "RBAC: access denied"]);
    }
    expect(wp.apps.seen).toEqual([]);
    const line = (await wp.accessLog()).at(-1)!;
    expect(String(line.details)).toContain("served by waypoint shop/wp2");
  });
});

describe("identity headers come from the mesh, never from the client", () => {
  const FORGED = {
    "x-jwt-sub": "admin@corp",
    "x-jwt-payload": Buffer.from('{"sub":"admin@corp"}').toString("base64url"),
    "x-jwt-email": "admin@corp",
    "x-forwarded-client-cert": "By=spiffe://cluster.local/ns/shop/sa/api;URI=spiffe://cluster.local/ns/shop/sa/admin",
  };
  beforeAll(() => {
    wp.configure(`${demoJwtOnApi("jwt-headers", `    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - header: x-jwt-sub
      claim: sub
    - header: x-jwt-email
      claim: email`)}
---
${grpcV1()}
---
${httpRoute("grpc-to-v1", `  - backendRefs:\n    - name: api-grpc-v1\n      port: 9000`, "api", 9000)}`);
  });
  afterAll(() => wp.configure());

  test("no token: forged claim, payload and XFCC headers are dropped; XFCC names the verified client", async () => {
    const r = await wp.request({ path: "/get", headers: FORGED });
    expect(r.status).toBe(200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen["x-jwt-sub"]).toBeUndefined();
    expect(seen["x-jwt-payload"]).toBeUndefined();
    expect(seen["x-jwt-email"]).toBeUndefined();
    expect(seen["x-forwarded-client-cert"]).toBe(`By=${WAYPOINT};URI=${VIEWER}`);
  });

  test("a valid token: its claims are set, a claim it lacks is not taken from the client", async () => {
    const r = await wp.request({ path: "/get", headers: { ...FORGED, authorization: `Bearer ${DEMO_JWT}` } });
    expect(r.status).toBe(200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen["x-jwt-sub"]).toBe("testing@secure.istio.io");
    expect(seen["x-jwt-payload"]).toBe(DEMO_JWT.split(".")[1]!);
    expect(seen["x-jwt-email"]).toBeUndefined();
    expect(seen["x-forwarded-client-cert"]).toBe(`By=${WAYPOINT};URI=${VIEWER}`);
    expect(seen.authorization).toBeUndefined();
  });

  test("HTTP/2: the same headers are dropped", async () => {
    const r = await grpcCall("/shop.Api/Get", FORGED);
    expect(r.grpcStatus).toBe("0");
    const seen = wp.apps.seen.filter((s) => s.app === "h2");
    expect(seen.length).toBe(1);
    expect(seen[0]!.headers["x-jwt-sub"]).toBeUndefined();
    expect(seen[0]!.headers["x-jwt-payload"]).toBeUndefined();
    expect(seen[0]!.headers["x-jwt-email"]).toBeUndefined();
    expect(seen[0]!.headers["x-forwarded-client-cert"]).toBe(`By=${WAYPOINT};URI=${VIEWER}`);
  });

  test("policies see the cleaned request: a forged header cannot satisfy an ALLOW", async () => {
    wp.configure(`${demoJwtOnApi("jwt-headers", `    outputClaimToHeaders:
    - header: x-jwt-sub
      claim: sub`)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: admins-by-header
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - when:
    - key: request.headers[x-jwt-sub]
      values: ["admin@corp"]`);
    expect((await wp.request({ path: "/get", headers: FORGED })).status).toBe(403);
  });
});

describe("a configuration change under a connection", () => {
  test("the Gateway removed while a TCP client's first bytes are partial: the connection is closed, the waypoint stays up", async () => {
    const ports = { api: wp.apps.http.api!.port, api2: wp.apps.http.api2!.port, mirror: wp.apps.http.mirror!.port, h2: wp.apps.h2.port };
    // A port with no declared protocol: bytes that are not HTTP go on as TCP.
    const extra = `apiVersion: v1\nkind: Service\nmetadata:\n  name: raw\n  namespace: shop\n  labels:\n    istio.io/use-waypoint: wp\nspec:\n  clusterIP: 10.96.0.25\n  selector:\n    version: v1\n  ports:\n  - name: custom\n    port: 7000\n    targetPort: ${ports.api}`;
    wp.configure(extra);
    const s = await wp.tunnel({ authority: "10.96.0.25:7000" });
    try {
      s.write(new TextEncoder().encode("GE"));
      await Bun.sleep(50);
      const model = modelOf(baseYaml(ports, extra));
      model.waypoints = [];
      wp.state.replace(model, 1000);
      s.end();
      // Reset by the waypoint (not ended: nothing was served).
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 3000);
        s.on("close", () => (clearTimeout(t), resolve()));
        if (s.closed) resolve();
      });
      expect(s.closed).toBe(true);
      const gone = () => wp.logs.some((l) => l.msg === "tcp connection refused: the waypoint's Gateway is not in the configuration");
      await waitFor("the refusal in the log", gone, 3000);
      expect(gone()).toBe(true);
    } finally {
      wp.configure();
    }
    // Still serving.
    expect((await wp.request({ path: "/get" })).status).toBe(200);
  });
});
