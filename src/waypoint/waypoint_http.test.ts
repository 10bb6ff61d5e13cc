/**
 * What flows inside a tunnel to the waypoint: HTTP/1.1 mechanics (keep-alive, pipelining, chunked
 * bodies both ways, 100-continue, a WebSocket upgrade, an HTTP/1.0 client), HTTP/2 with prior knowledge
 * (gRPC-style, with trailers), opaque TCP on a port declared tcp, and the errors that must never hang.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { HboneError } from "../hbone/mod.ts";
import { API_VIP, IPS, readUntil, startTestWaypoint, STRANGER, type TestWaypoint } from "./_test_env.ts";
import { toDuplex } from "../stream/mod.ts";
import { sniff } from "./proxy.ts";

let wp: TestWaypoint;
beforeAll(async () => {
  wp = await startTestWaypoint({ headTimeoutMs: 60_000 });
});
afterAll(async () => {
  await wp?.close();
});

const enc = (s: string) => Buffer.from(s, "latin1");
const responses = (text: string) => text.split(/(?=HTTP\/1\.[01] \d{3} )/).filter(Boolean);

describe("protocol sniffing", () => {
  test("HTTP/2 preface, HTTP/1 method, anything else, or wait for more", () => {
    expect(sniff(enc("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))).toBe("h2");
    expect(sniff(enc("PRI * HTT"))).toBe("more");
    expect(sniff(enc("GET / HTTP/1.1\r\n"))).toBe("http1");
    expect(sniff(enc("PROPFIND /"))).toBe("http1");
    expect(sniff(enc("GE"))).toBe("more");
    expect(sniff(new Uint8Array([0x16, 0x03, 0x01]))).toBe("tcp");
    expect(sniff(enc(" GET"))).toBe("tcp");
    expect(sniff(enc("\r\nGET / HTTP/1.1\r\n"))).toBe("http1");
    expect(sniff(enc("\r\n"))).toBe("more");
  });

  test("on a port declared HTTP, bytes that are not HTTP are refused (never spliced past L7 policy)", async () => {
    const s = await wp.tunnel();
    const closed = new Promise<Error | undefined>((r) => s.on("close", (e) => r(e)));
    s.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    const err = await closed;
    expect(err).toBeDefined();
  });
});

describe("HTTP/1.1", () => {
  test("keep-alive and pipelining: three requests in one write, answered in order on one tunnel", async () => {
    const s = await wp.tunnel();
    const req = (p: string) => `GET ${p} HTTP/1.1\r\nhost: api\r\n\r\n`;
    s.write(enc(req("/one") + req("/two") + req("/three")));
    const text = await readUntil(s, (t) => (t.match(/"path":"/g) ?? []).length === 3);
    const rs = responses(text);
    expect(rs.length).toBe(3);
    expect(rs.map((r) => r.match(/"path":"([^"]+)"/)?.[1])).toEqual(["/one", "/two", "/three"]);
    for (const r of rs) expect(r.startsWith("HTTP/1.1 200")).toBe(true);
    s.end();
  });

  test("a chunked request body reaches the app whole", async () => {
    const s = await wp.tunnel();
    s.write(enc("POST /post HTTP/1.1\r\nhost: api\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n5\r\nhello\r\n"));
    await Bun.sleep(20);
    s.write(enc("6\r\n world\r\n0\r\n\r\n"));
    const text = await readUntil(s, (t) => t.includes("}"));
    expect(text.startsWith("HTTP/1.1 200")).toBe(true);
    expect(text).toContain('"body":"hello world"');
    s.end();
  });

  test("a chunked (streamed) response arrives whole, chunk framing intact", async () => {
    const r = await wp.request({ path: "/stream?n=4" });
    expect(r.status).toBe(200);
    expect(r.body).toBe("chunk-0\nchunk-1\nchunk-2\nchunk-3\n");
  });

  test("an HTTP/1.0 client gets the chunked response without chunk framing, then the connection closes", async () => {
    const s = await wp.tunnel();
    s.write(enc("GET /stream?n=2 HTTP/1.0\r\nhost: api\r\n\r\n"));
    const text = await readUntil(s, () => false);
    expect(text.startsWith("HTTP/1.0 200")).toBe(true);
    expect(text.toLowerCase()).not.toContain("transfer-encoding");
    expect(text.endsWith("\r\n\r\nchunk-0\nchunk-1\n")).toBe(true);
  });

  test("Expect: 100-continue: the app's 100 reaches the client, then the body flows", async () => {
    const s = await wp.tunnel();
    s.write(enc("POST /post HTTP/1.1\r\nhost: api\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n"));
    const interim = await readUntil(s, (t) => t.includes("\r\n\r\n"));
    expect(interim.startsWith("HTTP/1.1 100")).toBe(true);
    s.write(enc("ping"));
    const text = await readUntil(s, (t) => t.includes("}"));
    expect(text).toContain('"body":"ping"');
    s.end();
  });

  test("WebSocket: the upgrade is passed through and frames flow both ways", async () => {
    const s = await wp.tunnel();
    s.write(enc(
      "GET /ws HTTP/1.1\r\nhost: api\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ));
    const head = await readUntil(s, (t) => t.includes("\r\n\r\n"));
    expect(head.startsWith("HTTP/1.1 101")).toBe(true);
    expect(head.toLowerCase()).toContain("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=");
    // A masked text frame "hi" (RFC 6455 5.2), mask key 1 2 3 4.
    const payload = enc("hi");
    const mask = [1, 2, 3, 4];
    s.write(new Uint8Array([0x81, 0x80 | payload.length, ...mask, ...payload.map((c, i) => c ^ mask[i % 4]!)]));
    const frame = await readUntil(s, (t) => t.includes("echo:hi"));
    expect(frame.charCodeAt(0)).toBe(0x81);
    expect(frame.slice(2)).toBe("echo:hi");
    s.reset();
  });

  test("an upgrade other than WebSocket (h2c) is not passed through: the request goes on as plain HTTP/1.1", async () => {
    const s = await wp.tunnel();
    s.write(enc("GET /get HTTP/1.1\r\nhost: api\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n\r\n"));
    const text = await readUntil(s, (t) => t.includes("}"));
    expect(text.startsWith("HTTP/1.1 200")).toBe(true);
    const seen = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { headers: Record<string, string> };
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers["http2-settings"]).toBeUndefined();
    s.end();
  });

  test("malformed requests are answered 400 and the connection closed", async () => {
    for (const bad of ["GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\nabc", "GET / HTTP/1.1\r\nhost : a\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"]) {
      const s = await wp.tunnel();
      s.write(enc(bad));
      const text = await readUntil(s, () => false);
      expect(text.startsWith("HTTP/1.1 400")).toBe(true);
      expect(text.toLowerCase()).toContain("connection: close");
    }
  });

  test("large bodies both ways keep every byte (backpressure through both tunnels)", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const up = await wp.request({ method: "POST", path: "/post", body: big, headers: { "content-type": "application/octet-stream" } });
    expect(up.status).toBe(200);
    const seen = up.json<{ bodyLength: number; bodySha256: string }>();
    expect(seen.bodyLength).toBe(big.length);
    expect(seen.bodySha256).toBe(new Bun.CryptoHasher("sha256").update(big).digest("hex"));
    const s = await wp.tunnel();
    s.write(enc("GET /bytes/4000000 HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n"));
    const text = await readUntil(s, () => false, 20_000);
    const body = Buffer.from(text.slice(text.indexOf("\r\n\r\n") + 4), "latin1");
    expect(body.length).toBe(4_000_000);
    const want = Buffer.alloc(4_000_000);
    for (let i = 0; i < want.length; i++) want[i] = (i * 13) & 0xff;
    expect(body.equals(want)).toBe(true);
  });

  test("a client that goes away mid-response does not leave the upstream connection behind", async () => {
    const s = await wp.tunnel();
    s.write(enc("GET /delay/300 HTTP/1.1\r\nhost: api\r\n\r\n"));
    await Bun.sleep(50);
    s.reset();
    await Bun.sleep(400);
    // The next request on a new tunnel is served normally.
    const r = await wp.request({ path: "/get" });
    expect(r.status).toBe(200);
  });

  test("HEAD keeps the app's content-length and sends no body", async () => {
    const s = await wp.tunnel();
    s.write(enc("HEAD /get HTTP/1.1\r\nhost: api\r\n\r\nGET /two HTTP/1.1\r\nhost: api\r\n\r\n"));
    const text = await readUntil(s, (t) => t.includes('"path":"/two"'));
    const [first, second] = responses(text);
    expect(first!.startsWith("HTTP/1.1 200")).toBe(true);
    expect(first!.toLowerCase()).toMatch(/content-length: \d+/);
    expect(first!.endsWith("\r\n\r\n")).toBe(true);
    expect(second).toContain('"path":"/two"');
    s.end();
  });
});

describe("HTTP/2 with prior knowledge (gRPC-style)", () => {
  const call = async (path: string, body: string, extraHeaders: Record<string, string> = {}) => {
    const tunnel = await wp.tunnel({ authority: `${API_VIP}:9000` });
    const session = http2.connect("http://api.shop:9000", { createConnection: () => toDuplex(tunnel) as never });
    try {
      return await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...extraHeaders });
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        let out = "";
        req.on("response", (h) => (headers = h));
        req.on("trailers", (t) => (trailers = t));
        req.on("data", (d: Buffer) => (out += d.toString()));
        req.on("end", () => resolve({ headers, trailers, body: out }));
        req.on("error", reject);
        req.end(body);
      });
    } finally {
      session.close();
    }
  };

  test("request and response bodies and the grpc-status trailer pass through", async () => {
    const r = await call("/shop.Api/Get", "question");
    expect(Number(r.headers[":status"])).toBe(200);
    expect(r.body).toBe("reply:question");
    expect(r.trailers["grpc-status"]).toBe("0");
    const seen = wp.apps.seen.filter((s) => s.app === "h2").pop()!;
    expect(seen.path).toBe("/shop.Api/Get");
    expect(seen.headers["traceparent"]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  test("a denied gRPC call is a trailers-only PERMISSION_DENIED", async () => {
    wp.configure(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/shop.Admin/*"]`);
    try {
      const r = await call("/shop.Admin/Drop", "x");
      expect(Number(r.headers[":status"])).toBe(200);
      expect(r.headers["grpc-status"]).toBe("7");
      const ok = await call("/shop.Api/Get", "y");
      expect(ok.trailers["grpc-status"]).toBe("0");
    } finally {
      wp.configure();
    }
  });
});

describe("TCP and tunnel errors", () => {
  test("a CONNECT to an address this waypoint does not serve: 503; to a non-address: 400", async () => {
    const e1 = await wp.tunnel({ authority: "10.96.0.99:80" }).catch((e) => e);
    expect(e1).toBeInstanceOf(HboneError);
    expect((e1 as HboneError).status).toBe(503);
    const e2 = await wp.tunnel({ authority: "api.shop:80" }).catch((e) => e);
    expect((e2 as HboneError).status).toBe(400);
    // api-v2 is not bound to this waypoint
    const e3 = await wp.tunnel({ authority: "10.96.0.22:8000" }).catch((e) => e);
    expect((e3 as HboneError).status).toBe(503);
  });

  test("a port declared tcp is spliced byte for byte after an L4 decision; a denied client gets 401", async () => {
    wp.configure(`apiVersion: v1
kind: Service
metadata:
  name: raw
  namespace: shop
  labels:
    istio.io/use-waypoint: wp
spec:
  clusterIP: 10.96.0.40
  selector:
    app: api
  ports:
  - name: tcp-echo
    port: 7000
    targetPort: ${wp.apps.http.api!.port}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: only-shop
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        namespaces: ["shop"]`);
    try {
      const s = await wp.tunnel({ authority: "10.96.0.40:7000" });
      // Bytes go through untouched: an HTTP request written by hand comes back from the app.
      s.write(enc("GET /tcp HTTP/1.1\r\nhost: raw\r\nconnection: close\r\n\r\n"));
      const text = await readUntil(s, () => false);
      expect(text).toContain('"path":"/tcp"');
      const denied = await wp.tunnel({ authority: "10.96.0.40:7000", identity: STRANGER, forwarded: 'for="127.0.0.9"' }).catch((e) => e);
      expect((denied as HboneError).status).toBe(401);
    } finally {
      wp.configure();
    }
  });

  test("a workload bound to the waypoint itself (pod-level use-waypoint) is served at its own address", async () => {
    const r = await wp.request({ path: "/direct", authority: `${IPS.api2}:${wp.apps.http.api2!.port}` });
    expect(r.status).toBe(200);
    expect(r.json<{ app: string }>().app).toBe("api-2");
    // api-1 is not bound to the waypoint by itself: its address is not served here.
    const e = await wp.tunnel({ authority: `${IPS.api}:${wp.apps.http.api!.port}` }).catch((x) => x);
    expect((e as HboneError).status).toBe(503);
  });

  test("no ready endpoint: 503 no healthy upstream", async () => {
    wp.configure(`apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: shop
  labels:
    istio.io/use-waypoint: wp
spec:
  clusterIP: 10.96.0.41
  selector:
    app: nothing
  ports:
  - name: http
    port: 80`);
    try {
      const r = await wp.request({ path: "/", authority: "10.96.0.41:80" });
      expect(r.status).toBe(503);
      expect(r.body).toBe("no healthy upstream");
    } finally {
      wp.configure();
    }
  });

  test("an endpoint that cannot be reached, or whose ztunnel refuses the waypoint: 503, not a hang", async () => {
    // viewer's address has no ztunnel in this test: the HBONE dial fails; locked's ztunnel answers 401.
    wp.configure(`apiVersion: v1
kind: Service
metadata:
  name: viewer
  namespace: shop
  labels:
    istio.io/use-waypoint: wp
spec:
  clusterIP: 10.96.0.42
  selector:
    app: viewer
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: locked
  namespace: shop
  labels:
    istio.io/use-waypoint: wp
spec:
  clusterIP: 10.96.0.43
  selector:
    app: locked
  ports:
  - name: http
    port: 80`);
    try {
      const r = await wp.request({ path: "/", authority: "10.96.0.42:80" });
      expect(r.status).toBe(503);
      expect(r.body).toContain("upstream connect error");
      const refused = await wp.request({ path: "/", authority: "10.96.0.43:80" });
      expect(refused.status).toBe(503);
      const line = (await wp.accessLog()).pop()!;
      expect(String(line.details)).toContain("refused with 401");
      expect(line.flags).toBe("UF");
    } finally {
      wp.configure();
    }
  });

  test("the source address comes from forwarded for= only when it belongs to the peer's identity", async () => {
    const r = await wp.request({ path: "/headers" });
    expect(r.status).toBe(200);
    const line = (await wp.accessLog()).pop()!;
    expect(line.sourceAddress).toBe(IPS.viewer);
  });
});

describe("draining", () => {
  let own: TestWaypoint;
  beforeAll(async () => {
    own = await startTestWaypoint();
  });
  afterAll(async () => {
    await own?.close();
  });

  test("drain: a busy connection closes after its response; an idle one still answers a request already on its way, then closes; one that stays idle closes after the grace", async () => {
    const idle = await own.tunnel();
    idle.write(enc("GET /one HTTP/1.1\r\nhost: api\r\n\r\n"));
    await readUntil(idle, (t) => t.includes("}"));
    const quiet = await own.tunnel();
    quiet.write(enc("GET /one HTTP/1.1\r\nhost: api\r\n\r\n"));
    await readUntil(quiet, (t) => t.includes("}"));
    const busy = await own.tunnel();
    busy.write(enc("GET /delay/200 HTTP/1.1\r\nhost: api\r\n\r\n"));
    await Bun.sleep(30);
    own.proxy.drain();
    // The client's next request crosses the drain: it is answered (Connection: close), not dropped.
    idle.write(enc("GET /two HTTP/1.1\r\nhost: api\r\n\r\n"));
    const next = await readUntil(idle, () => false);
    expect(next.startsWith("HTTP/1.1 200")).toBe(true);
    expect(next.toLowerCase()).toContain("connection: close");
    const text = await readUntil(busy, () => false);
    expect(text.startsWith("HTTP/1.1 200")).toBe(true);
    expect(text.toLowerCase()).toContain("connection: close");
    const t0 = Date.now();
    expect(await readUntil(quiet, () => false)).toBe("");
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
