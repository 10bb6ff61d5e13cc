/**
 * The mesh's edge in the lab (test/testdata/egress-lab.yaml): real DNS packets from a pod, captured to the
 * ztunnel's DNS proxy, answered from the mesh (ServiceEntry VIPs) or by the lab's dnsmasq; connections to
 * ServiceEntry hosts resolved by DNS and STATIC; outboundTrafficPolicy deny; telemetry naming the host;
 * and garbage DNS that leaves the proxy serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeServerCertificates } from "../src/platform/mod.ts";
import { curl, ensureBuilt, forceDown, inNs, isRoot, labInfo, type LabInfo, mesh, metricValue, nodeOf, podNetns, ROOT, uniquePrefix, waitFor } from "./support/mod.ts";

if (!isRoot) console.log("test/egress.test.ts: skipped, the lab needs root");

const DNS_SERVER = "10.99.0.3";

/** Waits until the log of lab process `id` has a line matching `pattern` (logs reach their file a moment later). */
async function logShows(info: LabInfo, id: string, pattern: RegExp): Promise<void> {
  const file = info.processes.find((p) => p.id === id)!.log;
  await waitFor(`${id}'s log to match ${pattern}`, async () => pattern.test(readFileSync(file, "utf8")));
}

/** IPv4 answers for a name, through the pod's resolver (glibc: real DNS packets to its nameserver). */
async function resolve(netns: string, name: string, env: Record<string, string> = {}): Promise<string[]> {
  const r = await inNs(netns, ["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), "getent", "ahostsv4", name], 10_000);
  return [...new Set(r.stdout.split("\n").map((l) => l.split(/\s+/)[0]!).filter(Boolean))];
}

describe.skipIf(!isRoot)("egress: ServiceEntry, DNS proxy, outbound policy", () => {
  const prefix = uniquePrefix("eg");
  let info: LabInfo;
  let client = "";
  let node = "";
  const certs = mkdtempSync(join(tmpdir(), "mesh-egress-"));

  beforeAll(async () => {
    ensureBuilt();
    // secure.partner.example is signed by the CA the DestinationRule names; impostor.partner.example is not.
    writeServerCertificates(certs, [{ name: "secure", host: "secure.partner.example" }, { name: "impostor", host: "impostor.partner.example", selfSigned: true }]);
    // The certificates' directory is only known now: the lab's file names it.
    const config = join(certs, "egress-lab.yaml");
    writeFileSync(config, readFileSync(join(ROOT, "test", "testdata", "egress-lab.yaml"), "utf8").replaceAll("@CERTS@", certs));
    const r = await mesh(["lab", "up", config, "--prefix", prefix, "--timeout", "60"], 120_000);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}):\n${r.stdout}${r.stderr}`);
    info = labInfo(prefix);
    client = podNetns(info, "shop/client");
    node = nodeOf(info, "node-a").netns;
  });

  afterAll(async () => {
    await forceDown(prefix);
    rmSync(certs, { recursive: true, force: true });
  });

  test("a ServiceEntry host resolves through the ztunnel to its VIP (UDP and TCP); the lab's DNS server has another answer", async () => {
    const [vip] = await resolve(client, "api.partner.example");
    expect(vip).toMatch(/^240\.240\.\d+\.\d+$/);
    expect(await resolve(client, "api.partner.example", { RES_OPTIONS: "use-vc" })).toEqual([vip!]);
    // The pod that opted out asks dnsmasq itself and gets the host's real address.
    expect(await resolve(podNetns(info, "shop/quiet"), "api.partner.example")).toEqual(["198.51.100.10"]);
    // A STATIC entry's host is known to the mesh only.
    expect((await resolve(client, "billing.partner.example"))[0]).toMatch(/^240\.240\./);
    const mesh = { source_workload: "client", answer: "mesh", request_query_type: "A" };
    expect(await metricValue(node, "istio_dns_requests_total", { ...mesh, request_protocol: "udp" })).toBeGreaterThanOrEqual(2);
    expect(await metricValue(node, "istio_dns_requests_total", { ...mesh, request_protocol: "tcp" })).toBeGreaterThanOrEqual(1);
  });

  test("names outside the mesh resolve through dnsmasq (forwarded by the ztunnel)", async () => {
    expect(await resolve(client, "other.partner.example")).toEqual(["198.51.100.20"]);
    expect(await resolve(client, "nowhere.partner.example")).toEqual([]);
    expect(await metricValue(node, "istio_dns_requests_total", { source_workload: "client", answer: "forwarded" })).toBeGreaterThanOrEqual(2);
    // dnsmasq saw the query from the node (the ztunnel), not from the pod: it went through the proxy.
    await logShows(info, "external/.dns", new RegExp(`query\\[A\\] other\\.partner\\.example from ${nodeOf(info, "node-a").address.replace(/\./g, "\\.")}`));
  });

  test("connections by name: DNS resolution and STATIC endpoints reach the external hosts; metrics and logs name the host", async () => {
    const dns = await curl(client, "http://api.partner.example/get");
    expect(dns.status).toBe("200");
    expect(JSON.parse(dns.body).headers.Host).toBe("api.partner.example");
    const fixed = await curl(client, "http://billing.partner.example/get");
    expect(fixed.status).toBe("200");
    await waitFor("metrics naming the hosts", async () =>
      (await metricValue(node, "istio_tcp_connections_closed_total", { destination_service: "api.partner.example", response_flags: "-" })) >= 1 &&
      (await metricValue(node, "istio_tcp_connections_closed_total", { destination_service: "billing.partner.example", destination_service_namespace: "shop" })) >= 1
    );
    await logShows(info, "ztunnel/node-a", /"service":"api\.partner\.example".*"result":"ok"/);
    // The billing host listens on 8080 only: the entry's targetPort took the connection there.
    await logShows(info, "external/billing", /\/get/);
  });

  test("outboundTrafficPolicy deny: an address outside the registry is refused with a log line and a metric", async () => {
    const denied = { destination_service: "198.51.100.20", response_flags: "DENY" };
    const before = await metricValue(node, "istio_tcp_connections_closed_total", denied);
    expect((await curl(client, "http://other.partner.example/get")).status).toBe("000");
    await waitFor("the refusal counted", async () => (await metricValue(node, "istio_tcp_connections_closed_total", denied)) > before);
    await logShows(info, "ztunnel/node-a", /198\.51\.100\.20:80 is outside the mesh and MeshConfig outboundPolicy is deny/);
  });

  test("DNS fuzz: random and cut packets from a pod are dropped and counted; the proxy keeps answering", async () => {
    const script = `
      import { createSocket } from "node:dgram";
      import { connect } from "node:net";
      let s = 7; const r = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
      const u = createSocket("udp4");
      const q = Uint8Array.from([0,9,1,0,0,1,0,0,0,0,0,0,3,97,112,105,7,112,97,114,116,110,101,114,7,101,120,97,109,112,108,101,0,0,1,0,1]);
      for (let i = 0; i < 400; i++) {
        const b = i % 2 ? Uint8Array.from({ length: Math.floor(r() * 80) }, () => Math.floor(r() * 256)) : q.subarray(0, Math.floor(r() * (q.length - 1)));
        u.send(b, 53, "${DNS_SERVER}");
      }
      const t = connect({ host: "${DNS_SERVER}", port: 53 });
      t.on("connect", () => t.write(Uint8Array.from([0, 5, 1, 2, 3, 4, 5])));
      t.on("error", () => {});
      t.on("close", () => { u.close(); process.exit(0); });
      setTimeout(() => { u.close(); process.exit(0); }, 3000);
    `;
    const r = await inNs(client, [process.execPath, "-e", script], 15_000);
    expect(r.code).toBe(0);
    await waitFor("malformed packets counted", async () => (await metricValue(node, "mesh_dns_malformed_requests_total", { request_protocol: "udp" })) > 100);
    expect(await metricValue(node, "mesh_dns_malformed_requests_total", { request_protocol: "tcp" })).toBeGreaterThanOrEqual(1);
    expect((await resolve(client, "api.partner.example"))[0]).toMatch(/^240\.240\./);
    expect(await resolve(client, "other.partner.example")).toEqual(["198.51.100.20"]);
  });

  describe("through the egress waypoint", () => {
    const waypoint = () => info.endpoints.find((e) => e.key === "shop/egress")!.netns;

    test("a targetRefs ServiceEntry policy allows GET and denies POST; plain HTTP from the pod reaches an HTTPS-only host (TLS originated)", async () => {
      const get = await curl(client, "http://secure.partner.example/");
      expect(get.status).toBe("200");
      expect(get.body).toContain("s_server"); // openssl's own page: the request reached the HTTPS server
      const post = await inNs(client, ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://secure.partner.example/"]);
      expect(post.stdout).toBe("403");
    });

    test("a server whose certificate the CA does not sign is refused with 503", async () => {
      const r = await curl(client, "http://impostor.partner.example/");
      expect(r.status).toBe("503");
      await logShows(info, "waypoint/shop/egress", /"authority":"impostor\.partner\.example".*"status":503/);
    });

    test("an HTTPRoute with a ServiceEntry parent applies its filters", async () => {
      const r = await curl(client, "http://echo.partner.internal/headers");
      expect(r.status).toBe("200");
      expect(JSON.parse(r.body).headers["X-Egress"]).toBe("through-the-waypoint");
    });

    test("tcpdump on the lab network: the waypoint's external leg is TLS (SNI in the clear, no plaintext request)", async () => {
      const secure = info.endpoints.find((e) => e.key === "external/secure")!;
      const pcap = join(certs, "leg.pcap");
      const fabric = `mlab.${prefix}-fabric`;
      const dump = Bun.spawn(["ip", "netns", "exec", fabric, "tcpdump", "-i", secure.link, "-nn", "-U", "-w", pcap, "tcp port 443"], { stdout: "ignore", stderr: "pipe" });
      await Bun.sleep(800);
      expect((await curl(client, "http://secure.partner.example/get?leg=1")).status).toBe("200");
      await Bun.sleep(300);
      dump.kill("SIGTERM");
      await dump.exited;
      const text = Bun.spawnSync(["tcpdump", "-r", pcap, "-nn", "-A"], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
      const wp = info.endpoints.find((e) => e.key === "shop/egress")!.ip;
      expect(text).toContain(`${wp}.`); // from the waypoint
      expect(text).toContain("198.51.100.40.443");
      expect(text).toContain("secure.partner.example"); // the SNI of the ClientHello
      expect(text).not.toContain("GET /get");
      expect(text).not.toContain("leg=1");
    });

    test("L7 telemetry (waypoint) and L4 telemetry (ztunnel) name the external host", async () => {
      await waitFor("waypoint request metrics", async () =>
        (await metricValue(waypoint(), "istio_requests_total", { destination_service: "secure.partner.example", response_code: "200" })) >= 1 &&
        (await metricValue(waypoint(), "istio_requests_total", { destination_service: "secure.partner.example", response_code: "403" })) >= 1
      );
      await waitFor("ztunnel connection metrics", async () =>
        (await metricValue(node, "istio_tcp_connections_opened_total", { destination_service: "secure.partner.example", connection_security_policy: "mutual_tls" })) >= 1
      );
    });
  });
});
