import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Httpbin, startHttpbin } from "./httpbin.ts";

let server: Httpbin;
let base = "";
const log: string[] = [];

beforeAll(() => {
  server = startHttpbin({ port: 0, hostname: "127.0.0.1", log: (l) => log.push(l) });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop());

test("/get returns args, headers, origin and url", async () => {
  const r = await fetch(`${base}/get?a=1&b=2&b=3`, { headers: { "x-demo": "yes" } });
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toBe("application/json");
  const body = await r.json();
  expect(body.args).toEqual({ a: "1", b: ["2", "3"] });
  expect(body.headers["X-Demo"]).toBe("yes");
  expect(body.headers.Host).toBe(`127.0.0.1:${server.port}`);
  expect(body.origin).toBe("127.0.0.1");
  expect(body.url).toBe(`${base}/get?a=1&b=2&b=3`);
  expect(Object.keys(body).sort()).toEqual(["args", "headers", "origin", "url"]);
});

test("/headers returns only headers, names as httpbin shows them", async () => {
  const body = await (await fetch(`${base}/headers`, { headers: { authorization: "Bearer x" } })).json();
  expect(Object.keys(body)).toEqual(["headers"]);
  expect(body.headers.Authorization).toBe("Bearer x");
});

test("/status/N answers N; a list picks one of them; nonsense is 400", async () => {
  expect((await fetch(`${base}/status/418`)).status).toBe(418);
  expect((await fetch(`${base}/status/204`)).status).toBe(204);
  expect([201, 202]).toContain((await fetch(`${base}/status/201,202`)).status);
  expect((await fetch(`${base}/status/999`)).status).toBe(400);
  const redirect = await fetch(`${base}/status/302`, { redirect: "manual" });
  expect(redirect.status).toBe(302);
});

test("/delay/N waits N seconds (fractions too)", async () => {
  const t0 = performance.now();
  const r = await fetch(`${base}/delay/0.3`);
  expect(r.status).toBe(200);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
});

test("/anything echoes method, body, json and headers; POST bodies come back", async () => {
  const r = await fetch(`${base}/anything/x/y?q=1`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ product: 7 }),
  });
  const body = await r.json();
  expect(body.method).toBe("POST");
  expect(body.data).toBe('{"product":7}');
  expect(body.json).toEqual({ product: 7 });
  expect(body.args).toEqual({ q: "1" });
  expect(body.url).toBe(`${base}/anything/x/y?q=1`);
  const form = await (await fetch(`${base}/post`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "a=1&b=two",
  })).json();
  expect(form.form).toEqual({ a: "1", b: "two" });
  expect(form.json).toBeNull();
});

test("method-specific endpoints refuse other methods", async () => {
  expect((await fetch(`${base}/post`)).status).toBe(405);
  expect((await fetch(`${base}/get`, { method: "POST", body: "x" })).status).toBe(405);
  expect((await fetch(`${base}/put`, { method: "PUT", body: "x" })).status).toBe(200);
});

test("/ip, /user-agent, /bytes/N, /uuid, unknown paths", async () => {
  expect(await (await fetch(`${base}/ip`)).json()).toEqual({ origin: "127.0.0.1" });
  expect((await (await fetch(`${base}/user-agent`, { headers: { "user-agent": "t/1" } })).json())["user-agent"]).toBe("t/1");
  expect((await (await fetch(`${base}/bytes/100000`)).arrayBuffer()).byteLength).toBe(100000);
  expect((await (await fetch(`${base}/uuid`)).json()).uuid).toMatch(/^[0-9a-f-]{36}$/);
  expect((await fetch(`${base}/nope`)).status).toBe(404);
});

test("one access-log line per request", () => {
  const entries = log.map((l) => JSON.parse(l));
  expect(entries.some((e) => e.path === "/status/418" && e.status === 418 && e.origin === "127.0.0.1")).toBe(true);
});
