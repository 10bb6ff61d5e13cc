/**
 * The egress waypoint in this process: ServiceEntries bound to the test waypoint, their policy
 * (targetRefs ServiceEntry), their routes (parentRef ServiceEntry), and TLS origination per
 * DestinationRule against real TLS servers on loopback (one the CA signs, one it does not).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeServerCertificates } from "../platform/mod.ts";
import { type Seen, startEchoApp, startTestWaypoint, type TestWaypoint } from "./_test_env.ts";
import { destinationRuleYaml, serviceEntryPolicyYaml, serviceEntryRouteYaml, serviceEntryYaml, yamlFile } from "../../test/support/mod.ts";

const PLAIN = "127.0.0.7";
const SECURE = "127.0.0.8";
const IMPOSTOR = "127.0.0.9";
const MISNAMED = "127.0.0.10";

describe("egress waypoint", () => {
  let wp: TestWaypoint;
  const seen: Seen[] = [];
  let plain: { port: number; stop(): void };
  const servers: { stop(): void }[] = [];
  const certs = mkdtempSync(join(tmpdir(), "mesh-egress-wp-"));
  let securePort = 0;
  let impostorPort = 0;
  let misnamedPort = 0;

  beforeAll(async () => {
    wp = await startTestWaypoint();
    plain = startEchoApp("partner", PLAIN, seen);
    writeServerCertificates(certs, [
      { name: "secure", host: "secure.partner.example" },
      { name: "impostor", host: "impostor.partner.example", selfSigned: true },
      // Signed by the CA, but for another name.
      { name: "misnamed", host: "someone-else.example" },
    ]);
    const tlsServer = (host: string, name: string) =>
      Bun.serve({
        hostname: host,
        port: 0,
        tls: { cert: readFileSync(join(certs, `${name}.pem`), "utf8"), key: readFileSync(join(certs, `${name}.key`), "utf8") },
        fetch: (req) => Response.json({ tls: true, method: req.method, path: new URL(req.url).pathname, host: req.headers.get("host") }),
      });
    const s = tlsServer(SECURE, "secure");
    const i = tlsServer(IMPOSTOR, "impostor");
    const m = tlsServer(MISNAMED, "misnamed");
    servers.push(s, i, m);
    securePort = s.port!;
    impostorPort = i.port!;
    misnamedPort = m.port!;
    // Each host's entry: its own VIP, and one STATIC endpoint (a server on loopback) bound to the waypoint.
    const entry = (name: string, host: string, vip: string, targetPort: number, endpoint: string) =>
      serviceEntryYaml({
        name,
        hosts: [host],
        addresses: [vip],
        ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort }],
        resolution: "STATIC",
        endpoints: [{ address: endpoint }],
        waypoint: "wp",
      });
    wp.configure(yamlFile(
      entry("partner", "api.partner.example", "240.240.9.9", plain.port, PLAIN),
      entry("secure", "secure.partner.example", "240.240.9.10", securePort, SECURE),
      entry("impostor", "impostor.partner.example", "240.240.9.11", impostorPort, IMPOSTOR),
      entry("misnamed", "misnamed.partner.example", "240.240.9.13", misnamedPort, MISNAMED),
      destinationRuleYaml({ name: "secure", host: "*.partner.example", portTls: { 80: { mode: "SIMPLE", caCertificates: join(certs, "ca.pem") } } }),
      destinationRuleYaml({ name: "plain", host: "api.partner.example", tls: { mode: "DISABLE" } }),
      serviceEntryPolicyYaml({ name: "partner-get-only", serviceEntry: "partner", methods: ["GET"] }),
      serviceEntryRouteYaml({ name: "partner", serviceEntry: "partner", set: { name: "x-egress", value: "yes" } }),
    ));
  });

  afterAll(async () => {
    await wp.close();
    plain.stop();
    for (const s of servers) s.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  test("a STATIC entry: the route's filter applies, the endpoint's port is the targetPort; the policy allows GET only", async () => {
    const get = await wp.request({ path: "/get", authority: "240.240.9.9:80", headers: { host: "api.partner.example" } });
    expect(get.status).toBe(200);
    const got = seen.find((s) => s.app === "partner" && s.path === "/get")!;
    expect(got.headers["x-egress"]).toBe("yes");
    expect(got.headers.host).toBe("api.partner.example");
    const post = await wp.request({ method: "POST", path: "/post", body: "x", authority: "240.240.9.9:80", headers: { host: "api.partner.example" } });
    expect(post.status).toBe(403);
    expect(post.body).toContain("RBAC: access denied");
  });

  test("TLS originated to a server the DestinationRule's CA signs; one it does not sign, or signs for another name, gets 503", async () => {
    const ok = await wp.request({ path: "/hello", authority: "240.240.9.10:80", headers: { host: "secure.partner.example" } });
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ tls: true, method: "GET", path: "/hello", host: "secure.partner.example" });
    const bad = await wp.request({ path: "/hello", authority: "240.240.9.11:80", headers: { host: "impostor.partner.example" } });
    expect(bad.status).toBe(503);
    // The CA signs it, but for another name: the name check refuses it too.
    const misnamed = await wp.request({ path: "/hello", authority: "240.240.9.13:80", headers: { host: "misnamed.partner.example" } });
    expect(misnamed.status).toBe(503);
    const log = (await wp.accessLog()).find((l) => l.authority === "misnamed.partner.example");
    expect(String(log?.details)).toContain("misnamed.partner.example");
  });

  test("request metrics name the external host", async () => {
    const text = wp.registry.render();
    expect(text).toMatch(/istio_requests_total\{[^}]*destination_service="secure\.partner\.example"[^}]*response_code="200"/);
    expect(text).toMatch(/istio_requests_total\{[^}]*destination_service="api\.partner\.example"[^}]*response_code="403"/);
  });

  test("an entry not bound to this waypoint is refused at CONNECT", async () => {
    wp.configure(serviceEntryYaml({
      name: "elsewhere",
      hosts: ["elsewhere.example"],
      addresses: ["240.240.9.12"],
      ports: [{ number: 80, name: "http" }],
      resolution: "NONE",
    }));
    await expect(wp.tunnel({ authority: "240.240.9.12:80" })).rejects.toThrow(/503/);
  });
});
