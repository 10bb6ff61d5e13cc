/**
 * `npm run demo`: the seed article's walkthrough, run for real in the lab through the mesh executable.
 * Each step prints the command a user would type and what it answered, then checks it:
 *
 *   1. L4: product-viewer calls product-api; it works, over mTLS (proof: the destination ztunnel's
 *      metrics name the viewer's SPIFFE principal and connection_security_policy="mutual_tls").
 *   2. The L7 policy (JWT principal, GET, /get) without a waypoint: denied, and `mesh check` says why.
 *   3. With the waypoint: no token 403, the demo token 200, POST 403, a tampered token 401.
 *   4. Troubleshooting: `mesh describe pod` of product-api before the waypoint (step 2) and with it, and a
 *      denied request followed through the proxies' access logs: the waypoint's by the request's trace
 *      id, the source ztunnel's by the trace id of the connection (tunnel) it came in.
 *   5. Egress (config/egress.yaml added, outboundTrafficPolicy deny): the ztunnel's DNS proxy answers a
 *      ServiceEntry host with its VIP, the host is reached by name, a host in no ServiceEntry is refused,
 *      and through the egress waypoint plain HTTP reaches an HTTPS-only host (TLS originated), GET only.
 *
 * It leaves the lab up (config/mesh.yaml with config/egress.yaml) and prints how to explore it and take it down.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { writeServerCertificates } from "../platform/mod.ts";

export interface DemoOptions {
  /** path to the mesh executable */
  mesh: string;
  /** the repository root (config/ and src/lab/testdata/ are read from it) */
  root: string;
  /** --prefix for the lab (tests use their own); the default lab when absent */
  prefix?: string;
  print: (text: string) => void;
  /** take the lab down at the end instead of leaving it up (tests) */
  down?: boolean;
  /** how long one check retries while the new configuration reaches the proxies */
  settleMs?: number;
  /** ANSI colours (a terminal) */
  color?: boolean;
}

export interface DemoCheck {
  step: string;
  expectation: string;
  ok: boolean;
  detail: string;
}

export interface DemoResult {
  ok: boolean;
  checks: DemoCheck[];
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const VIEWER = "ambient-ns/product-viewer";
/** How a failed check says that the control plane refused the configuration (tests look for it). */
export const REFUSED = "the control plane kept its last good configuration";
const URL_BASE = "http://product-api:8000";
const VIEWER_PRINCIPAL = "spiffe://cluster.local/ns/ambient-ns/sa/product-viewer-sa";
const API_PRINCIPAL = "spiffe://cluster.local/ns/ambient-ns/sa/product-api-sa";

async function run(argv: string[], timeoutMs = 120_000): Promise<Ran> {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * The roles this build lacks (`mesh run` says "not available" for a role that has not landed). A role that
 * is still running after a moment, or fails for another reason, counts as available. Every probe listens
 * on loopback only and is killed at once.
 */
export async function missingRoles(mesh: string): Promise<string[]> {
  const scratch = mkdtempSync(join(tmpdir(), "mesh-role-probe-"));
  const loopback = ["--metrics-addr", "127.0.0.1:0", "--ready-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", scratch];
  const proxy = ["--control-plane", "127.0.0.1:9", "--ca-cert", join(scratch, "none.pem"), "--token-file", join(scratch, "none"), "--hbone-addr", "127.0.0.1:0"];
  const probes: Record<string, string[]> = {
    control: ["--config", join(scratch, "none.yaml"), "--listen", "127.0.0.1:0"],
    ztunnel: ["--node", "probe", "--redirect", "none", "--outbound-addr", "127.0.0.1:0", "--inbound-addr", "127.0.0.1:0", ...proxy],
    waypoint: ["--gateway", "probe/probe", ...proxy],
  };
  try {
    const results = await Promise.all(
      Object.entries(probes).map(async ([role, flags]) => {
        const p = Bun.spawn([resolve(mesh), "run", "--role", role, ...flags, ...loopback], { stdout: "pipe", stderr: "pipe" });
        const timer = setTimeout(() => p.kill("SIGKILL"), 1500);
        const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        clearTimeout(timer);
        return `${out}${err}`.includes("not available") ? role : undefined;
      }),
    );
    return results.filter((r): r is string => r !== undefined);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** config/mesh-no-waypoint.yaml without the L7 policies: the article's step 2 (L4 only). */
export function l4OnlyConfig(text: string): string {
  const dropped = new Set(["AuthorizationPolicy", "RequestAuthentication"]);
  const kept = parseAllDocuments(text as string);
  if (!Array.isArray(kept)) return text;
  return kept
    .filter((d) => !dropped.has(String((d.toJS() as { kind?: string } | null)?.kind)))
    .map((d) => String(d).trim())
    .join("\n---\n") + "\n";
}

/** The demo token with one character of its signature changed: same claims, invalid signature. */
export function tamper(token: string): string {
  const i = token.lastIndexOf(".") + 5;
  const c = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + c + token.slice(i + 1);
}

/** Where config/egress.yaml expects the HTTPS host's certificates. */
export const EGRESS_CERTS = "/tmp/mesh-egress-certs";

/** config/mesh.yaml with outboundTrafficPolicy deny, and config/egress.yaml after it (README "Egress"). */
export function egressConfig(mesh: string, egress: string): string {
  return mesh.replace("outboundTrafficPolicy: allow", "outboundTrafficPolicy: deny").replace(/\n*$/, "\n") + egress;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const { mesh, root, print } = opts;
  const P = opts.prefix ? ["--prefix", opts.prefix] : [];
  const shownP = P.length ? ` ${P.join(" ")}` : "";
  const settleMs = opts.settleMs ?? 15_000;
  const checks: DemoCheck[] = [];
  const rel = (p: string) => {
    const r = relative(process.cwd(), p);
    return r && !r.startsWith("..") ? r : p;
  };
  const paint = (code: string, t: string) => (opts.color ? `\x1b[${code}m${t}\x1b[0m` : t);
  const config = join(root, "config", "mesh.yaml");
  const noWaypoint = join(root, "config", "mesh-no-waypoint.yaml");
  const token = readFileSync(join(root, "src", "lab", "testdata", "demo.jwt"), "utf8").trim();
  const scratch = mkdtempSync(join(tmpdir(), "mesh-demo-"));
  const l4 = join(scratch, "step1-l4-only.yaml");
  writeFileSync(l4, l4OnlyConfig(readFileSync(noWaypoint, "utf8")));
  const egressFile = join(root, "config", "egress.yaml");
  const egressLab = join(scratch, "egress.yaml");
  writeFileSync(egressLab, egressConfig(readFileSync(config, "utf8"), readFileSync(egressFile, "utf8")));

  const heading = (t: string) => print(`\n${paint("1", `== ${t}`)}\n`);
  const say = (t: string) => print(`${t}\n`);
  const show = (shown: string) => print(`${paint("36", `$ ${shown}`)}\n`);
  const output = (text: string, max = 30) => {
    const lines = text.trimEnd().split("\n");
    const cut = lines.length > max ? [...lines.slice(0, max), `... (${lines.length - max} more lines)`] : lines;
    if (text.trim()) print(cut.map((l) => `  ${l}`).join("\n") + "\n");
  };
  const verdict = (step: string, expectation: string, ok: boolean, detail: string) => {
    checks.push({ step, expectation, ok, detail });
    print(ok ? `${paint("32", `  ok: ${expectation}`)}\n` : `${paint("31", `  FAILED: ${expectation} (${detail})`)}\n`);
  };
  /** Runs a mesh command, printed as the user would type it (its output streamed only when `echo`). */
  const meshCmd = async (args: string[], shownArgs = args, echo = true) => {
    show(`mesh ${shownArgs.join(" ")}`);
    const r = await run([mesh, ...args]);
    if (echo) output(r.stdout + r.stderr, 60);
    return r;
  };
  /** Retries `args` until `accept` holds or settleMs passes (a new config takes a moment to arrive). */
  const until = async (args: string[], accept: (r: Ran) => boolean): Promise<Ran> => {
    const deadline = Date.now() + settleMs;
    let r = await run([mesh, ...args]);
    while (!accept(r) && Date.now() < deadline) {
      await Bun.sleep(500);
      r = await run([mesh, ...args]);
    }
    return r;
  };
  /** Where `mesh describe` finds the lab (the default lab needs no flag). */
  const LAB = opts.prefix ? ["--lab", opts.prefix] : [];
  const curl = (extra: string[], path: string) => ["lab", "exec", ...P, VIEWER, "--", "curl", "-sS", "-m", "5", ...extra, `${URL_BASE}${path}`];
  const statusOf = (extra: string[], path: string) => curl(["-o", "/dev/null", "-w", "%{http_code}", ...extra], path);
  const code = (r: Ran) => r.stdout.trim() || "000";
  /** What the control plane said about the configuration it was given last (from its log). */
  const controlVerdict = async (): Promise<string> => {
    const status = JSON.parse((await run([mesh, "lab", "status", ...P, "--format", "json"])).stdout || "null") as
      | { entries: { id: string; log?: string }[] }
      | null;
    const log = status?.entries.find((e) => e.id === "control")?.log;
    if (!log) return "no control plane log";
    const refused = readFileSync(log, "utf8").trimEnd().split("\n").reverse().find((l) => l.includes("keeping the last good"));
    if (!refused) return "the control plane accepted the configuration";
    const first = (JSON.parse(refused) as { first?: string[] }).first?.[0] ?? "";
    return `${REFUSED}: ${first}`;
  };

  try {
    heading("Bring the lab up: two nodes, product-viewer on node-a, product-api (httpbin) on node-b");
    if (JSON.parse((await run([mesh, "lab", "status", ...P, "--format", "json"])).stdout || "null")) {
      say("A lab is already up: taking it down first.");
      await meshCmd(["lab", "down", ...P]);
    }
    const up = await meshCmd(["lab", "up", config, ...P], ["lab", "up", rel(config), ...P]);
    verdict("up", "every component reports ready", up.code === 0, `exit ${up.code}`);
    if (up.code !== 0) return { ok: false, checks };

    heading("Step 1 (L4): mTLS between ztunnels, no policy, no waypoint");
    say(`The configuration without the L7 policy and without the waypoint binding (${rel(l4)}):`);
    await meshCmd(["lab", "apply", l4, ...P]);
    const headersArgs = curl([], "/headers");
    show(`mesh lab exec${shownP} ${VIEWER} -- curl -s ${URL_BASE}/headers`);
    const l4call = await until(headersArgs, (r) => r.code === 0 && r.stdout.includes('"headers"'));
    output(l4call.stdout + l4call.stderr);
    verdict("l4", "product-viewer reaches product-api through the Service address", l4call.code === 0 && l4call.stdout.includes('"headers"'), `curl exit ${l4call.code}`);

    say("\nThe proof that it was mTLS: the destination ztunnel (node-b) counted the connection with both identities.");
    show(`mesh lab exec${shownP} node/node-b -- curl -s localhost:15020/metrics | grep istio_tcp_connections_opened_total`);
    const proof = (r: Ran) =>
      r.stdout.split("\n").filter((l) =>
        l.startsWith("istio_tcp_connections_opened_total") && l.includes(`source_principal="${VIEWER_PRINCIPAL}"`) &&
        l.includes(`destination_principal="${API_PRINCIPAL}"`)
      );
    const metrics = await until(["lab", "exec", ...P, "node/node-b", "--", "curl", "-sS", "-m", "5", "http://127.0.0.1:15020/metrics"], (r) => proof(r).length > 0);
    const lines = proof(metrics);
    output(lines.join("\n") || "(no istio_tcp_connections_opened_total line from product-viewer to product-api)");
    const mtls = lines.some((l) => l.includes('connection_security_policy="mutual_tls"') && l.includes('reporter="destination"'));
    verdict("l4-proof", `reporter="destination", source_principal=${VIEWER_PRINCIPAL}, connection_security_policy="mutual_tls"`, mtls, lines.length ? "labels differ" : "no such metric");

    heading("Step 2 (L7 policy, no waypoint): the ztunnel cannot read HTTP, so it denies");
    say("RequestAuthentication + an AuthorizationPolicy allowing only GET /get with a token of testing@secure.istio.io:");
    await meshCmd(["lab", "apply", noWaypoint, ...P], ["lab", "apply", rel(noWaypoint), ...P]);
    show(`mesh lab exec${shownP} ${VIEWER} -- curl -s ${URL_BASE}/headers`);
    const denied = await until(headersArgs, (r) => r.code !== 0);
    output(denied.stdout + denied.stderr || `(no response; curl exit ${denied.code})`);
    const isDenied = denied.code !== 0 && !denied.stdout.includes('"headers"');
    verdict("l7-no-waypoint", "the request is denied (the connection is refused, no HTTP response)", isDenied, isDenied ? "" : `curl exit ${denied.code}; ${await controlVerdict()}`);
    say("\nWhy, before anything runs:");
    const check = await meshCmd(["check", noWaypoint], ["check", rel(noWaypoint)]);
    verdict("check", "mesh check names the policy and the missing waypoint (exit 1)", check.code === 1 && /waypoint/.test(check.stdout + check.stderr) && (check.stdout + check.stderr).includes("require-get-on-products"), `exit ${check.code}`);
    say("\nAnd what the running mesh says about product-api (one command: capture, ztunnel, waypoint, policies, connections):");
    let before = await meshCmd(["describe", "pod", "ambient-ns/product-api", ...LAB]);
    if (before.stdout.includes("refuses its configuration file")) {
      say("The control plane refused that file and still serves the previous one; what the file itself means:");
      const offline = await meshCmd(["describe", "pod", "ambient-ns/product-api", "--config", noWaypoint], ["describe", "pod", "ambient-ns/product-api", "--config", rel(noWaypoint)]);
      before = { ...offline, stdout: before.stdout + offline.stdout };
    }
    verdict("describe-before", 'mesh describe: the L7 policy "denies everything: no waypoint" at the ztunnel of node-b', before.stdout.includes("denies everything: no waypoint") && before.stdout.includes("ztunnel of node-b"), `exit ${before.code}`);

    heading("Step 3 (waypoint): the Service is bound to product-api-waypoint, which enforces L7");
    await meshCmd(["lab", "apply", config, ...P], ["lab", "apply", rel(config), ...P]);
    const expectStatus = async (step: string, why: string, extra: string[], shownExtra: string, path: string, want: string) => {
      show(`mesh lab exec${shownP} ${VIEWER} -- curl -s -o /dev/null -w '%{http_code}' ${shownExtra}${URL_BASE}${path}`);
      const r = await until(statusOf(extra, path), (x) => code(x) === want);
      output(code(r));
      verdict(step, `${want}: ${why}`, code(r) === want, `got ${code(r)}`);
    };
    await expectStatus("no-token", "no token, so no request principal to allow", [], "", "/get", "403");
    await expectStatus("demo-token", "a valid token of testing@secure.istio.io, GET /get", ["-H", `Authorization: Bearer ${token}`], `-H "Authorization: Bearer $TOKEN" `, "/get", "200");
    await expectStatus("post", "the same token, but POST is not allowed", ["-X", "POST", "-d", '{"product":1}', "-H", `Authorization: Bearer ${token}`], `-X POST -d '{"product":1}' -H "Authorization: Bearer $TOKEN" `, "/post", "403");
    await expectStatus("tampered-token", "a token whose signature does not verify is rejected by RequestAuthentication", ["-H", `Authorization: Bearer ${tamper(token)}`], `-H "Authorization: Bearer $TAMPERED" `, "/get", "401");
    say(`(TOKEN is Istio's demo token, src/lab/testdata/demo.jwt; TAMPERED is the same token with one signature character changed.)`);

    heading("Step 4 (troubleshooting): describe product-api with its waypoint, and follow a denied request");
    const after = await meshCmd(["describe", "pod", "ambient-ns/product-api", ...LAB]);
    verdict(
      "describe-after",
      "mesh describe: captured by the ztunnel of node-b, served by product-api-waypoint through the Service's istio.io/use-waypoint label, the L7 policy enforced there",
      after.code === 0 && after.stdout.includes("Captured: YES") && after.stdout.includes("via istio.io/use-waypoint on Service ambient-ns/product-api") &&
        after.stdout.includes("at waypoint ambient-ns/product-api-waypoint"),
      `exit ${after.code}`,
    );
    // A request without a token, with a trace id of our own. The waypoint logs the request under it, and
    // beside it the trace id of the tunnel it came in: the one the source ztunnel started for the
    // connection and logs too (it sent it on the HBONE CONNECT). So both hops are found.
    const traceId = crypto.randomUUID().replace(/-/g, "");
    const traceparent = `00-${traceId}-${traceId.slice(0, 16)}-01`;
    show(`mesh lab exec${shownP} ${VIEWER} -- curl -s -o /dev/null -w '%{http_code}' -H "traceparent: ${traceparent}" ${URL_BASE}/get`);
    output(code(await run([mesh, ...statusOf(["-H", `traceparent: ${traceparent}`], "/get")])));
    const logs = ((JSON.parse((await run([mesh, "lab", "status", ...P, "--format", "json"])).stdout || "null") as { entries: { id: string; log?: string }[] } | null)?.entries ?? [])
      .filter((e) => /^(ztunnel|waypoint)\//.test(e.id) && e.log);
    const logGlob = logs.length ? `${dirname(logs[0]!.log!)}/*.log` : "(no logs)";
    /** Lines naming `id` in any proxy's log, as "proxy: line", waiting (up to settleMs) until `done` holds. */
    const grep = async (id: string, done: (lines: string[]) => boolean): Promise<string[]> => {
      show(`grep ${id} ${logGlob}`);
      let found: string[] = [];
      const deadline = Date.now() + settleMs;
      for (;;) {
        found = logs.flatMap((e) => readFileSync(e.log!, "utf8").split("\n").filter((l) => l.includes(id)).map((l) => `${e.id}: ${l}`));
        if (done(found) || Date.now() >= deadline) break;
        await Bun.sleep(300);
      }
      output(found.map((l) => (l.length > 400 ? `${l.slice(0, 400)}...` : l)).join("\n") || "(no line names it)");
      return found;
    };
    const isDenial = (l: string) => l.startsWith("waypoint/") && l.includes('"status":403');
    const found = await grep(traceId, (f) => f.some(isDenial));
    const denial = found.find(isDenial);
    let tunnelTrace: string | undefined;
    try {
      tunnelTrace = denial ? (JSON.parse(denial.slice(denial.indexOf("{"))) as { tunnel_trace_id?: string }).tunnel_trace_id : undefined;
    } catch {
      tunnelTrace = undefined;
    }
    let sourceLine: string | undefined;
    if (tunnelTrace) {
      say(`\nThe waypoint's line names the tunnel the request came in (tunnel_trace_id): the trace the source ztunnel started for the connection.`);
      const isSource = (l: string) => l.startsWith("ztunnel/") && l.includes('"reporter":"source"');
      sourceLine = (await grep(tunnelTrace, (f) => f.some(isSource))).find(isSource);
      say("(The waypoint answered 403 itself: the destination ztunnel never saw this request. A connection that reaches it, or that it refuses, is logged there under the same id.)");
    }
    verdict(
      "follow-denied",
      "the 403 is in the waypoint's access log under the request's trace id, with the policy that denied it, and the source ztunnel's line is found by the tunnel's trace id",
      denial !== undefined && denial.includes("require-get-on-products") && sourceLine !== undefined,
      !found.length ? "no line with the trace id" : !denial?.includes("require-get-on-products") ? "no 403 line naming the policy" : !tunnelTrace ? "the waypoint's line has no tunnel_trace_id" : "no source ztunnel line with the tunnel's trace id",
    );
    say("\nThe same request among product-api's recent connections, next to the source ztunnel's line (its id is the tunnel's):");
    const recent = await run([mesh, "describe", "pod", "ambient-ns/product-api", "--connections", "6", ...LAB]);
    output(recent.stdout.slice(recent.stdout.indexOf("Recent connections:")).split("\n\n")[0]!);

    say("\nEvery proxy reports its flows to the control role: the denied ones, with the policy and trace id of each:");
    const observed = await until(["observe", "--denied", "--to", "ambient-ns/product-api", "--since", "10m", ...LAB], (r) => r.stdout.includes(traceId));
    show(`mesh observe --denied --to ambient-ns/product-api --since 10m${LAB.length ? ` ${LAB.join(" ")}` : ""}`);
    output(observed.stdout + observed.stderr, 20);
    verdict(
      "observe",
      "mesh observe --denied lists the request, denied by require-get-on-products, under its trace id",
      observed.stdout.split("\n").some((l) => l.includes(traceId) && l.includes("ambient-ns/require-get-on-products")),
      `exit ${observed.code}`,
    );
    heading("Step 5 (egress): ServiceEntry, the ztunnel's DNS proxy, outboundTrafficPolicy deny, an egress waypoint");
    say(`Hosts outside the cluster and a DNS server that knows them (${rel(egressFile)}), with outboundTrafficPolicy deny;`);
    say(`the HTTPS host's certificates are made in ${EGRESS_CERTS}:`);
    writeServerCertificates(EGRESS_CERTS, [{ name: "payments", host: "payments.partner.example" }]);
    await meshCmd(["lab", "apply", egressLab, ...P], ["lab", "apply", "/tmp/egress.yaml", ...P]);
    const inViewer = (cmd: string[]) => ["lab", "exec", ...P, VIEWER, "--", ...cmd];
    show(`mesh lab exec${shownP} ${VIEWER} -- getent hosts api.partner.example`);
    const dns = await until(inViewer(["getent", "hosts", "api.partner.example"]), (r) => r.stdout.startsWith("240.240."));
    output(dns.stdout || `(no answer; exit ${dns.code})`);
    verdict("egress-dns", "the ztunnel's DNS proxy answers the ServiceEntry host with its VIP from 240.240.0.0/16", dns.stdout.startsWith("240.240."), dns.stdout.trim() || `exit ${dns.code}`);
    const byName = async (step: string, why: string, args: string[], shownArgs: string, want: string) => {
      show(`mesh lab exec${shownP} ${VIEWER} -- curl -s -o /dev/null -w '%{http_code}' ${shownArgs}`);
      const r = await until(inViewer(["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", ...args]), (x) => code(x) === want);
      output(code(r));
      verdict(step, `${want}: ${why}`, code(r) === want, `got ${code(r)}`);
    };
    await byName("egress-by-name", "api.partner.example, resolution DNS: the ztunnel connects to its real address", ["http://api.partner.example/get"], "http://api.partner.example/get", "200");
    await byName("egress-deny", "unlisted.partner.example is in no ServiceEntry: outboundTrafficPolicy deny refuses it (no HTTP response)", ["http://unlisted.partner.example/get"], "http://unlisted.partner.example/get", "000");
    await byName("egress-tls", "plain HTTP to payments.partner.example; the egress waypoint originates TLS to its port 443", ["http://payments.partner.example/"], "http://payments.partner.example/", "200");
    await byName("egress-post", "the egress waypoint's policy (targetRefs ServiceEntry) allows GET only", ["-X", "POST", "http://payments.partner.example/"], "-X POST http://payments.partner.example/", "403");
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  const ok = checks.every((c) => c.ok);
  heading(ok ? "All steps behaved as the article says" : `${checks.filter((c) => !c.ok).length} check(s) failed`);
  for (const c of checks.filter((x) => !x.ok)) say(`  ${c.step}: expected ${c.expectation}; ${c.detail}`);
  if (opts.down) {
    await meshCmd(["lab", "down", ...P]);
  } else {
    const cli = `sudo ${rel(mesh)}`;
    say(`The lab is still up with ${rel(config)} and ${rel(join(root, "config", "egress.yaml"))}. Explore it:`);
    say(`  ${cli} lab status${shownP}                  what runs where, health, log paths`);
    say(`  ${cli} lab exec${shownP} ${VIEWER} -- curl -s ${URL_BASE}/headers`);
    say(`  ${cli} lab exec${shownP} node/node-b -- curl -s localhost:15020/metrics    the ztunnel's metrics`);
    say(`  ${cli} lab exec${shownP} node/node-a -- iptables -t nat -S                capture rules`);
    say(`  ${cli} describe serviceentry ambient-ns/payments${opts.prefix ? ` --lab ${opts.prefix}` : ""}       the egress waypoint, its policy and TLS`);
    say(`  ${cli} lab apply${shownP} FILE                  push a changed configuration`);
    const lab = JSON.parse((await run([mesh, "lab", "status", ...P, "--format", "json"])).stdout || "null") as { uiUrl?: string; uiTokenFile?: string } | null;
    if (lab?.uiUrl) {
      say(`\nSee the mesh: the traffic map is at ${lab.uiUrl}`);
      say(`  sign in with the admin token: ${cli.replace(/ \S+$/, "")} cat ${lab.uiTokenFile}`);
      say(`  or from the terminal: ${cli} observe${LAB.length ? ` ${LAB.join(" ")}` : ""} --follow`);
    }
    say(`Take it down: ${cli} lab down${shownP}`);
  }
  return { ok, checks };
}
