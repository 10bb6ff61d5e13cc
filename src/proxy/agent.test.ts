/**
 * The proxy agent against a fake control plane that signs with a real CA and pushes views built by the xds
 * placement (viewOf), and against the real XdsClient where no control plane answers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, MeshError, setSink } from "../core/mod.ts";
import { CertificateAuthority } from "../identity/mod.ts";
import { emptyModel, type MeshModel } from "../model/mod.ts";
import { type CsrResponse, viewOf, type XdsClientOptions, type XdsClientStatus } from "../xds/mod.ts";
import { type AgentStart, type ControlPlaneClient, ProxyAgent, type ProxyAgentOptions } from "./mod.ts";

const VIEWER = "spiffe://cluster.local/ns/shop/sa/viewer";
const PROXY = { kind: "ztunnel", node: "node-a" } as const;

let dir = "";
let ca: CertificateAuthority;
let otherRoot = "";
const agents: ProxyAgent[] = [];
let restoreSink: ((line: string) => void) | undefined;
let lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mesh-proxy-agent-"));
  ca = await CertificateAuthority.open(join(dir, "ca"));
  otherRoot = (await CertificateAuthority.open(join(dir, "other-ca"))).trustBundle.join("");
  writeFileSync(join(dir, "node.token"), "node-token\n");
  restoreSink = setSink((line) => lines.push(JSON.parse(line)));
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  if (restoreSink) setSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

/** Log lines of the ztunnel scope with this message. */
const logged = (msg: string) => lines.filter((l) => l.scope === "ztunnel" && l.msg === msg);

/** What the agent reads of a configuration is its MeshConfig (and the trust bundle beside it). */
function model(rotationFraction = 0.5): MeshModel {
  const m = emptyModel();
  return { ...m, meshConfig: { ...m.meshConfig, rotationFraction } };
}

/** A control plane that answers through the client API: signs CSRs with the test CA, pushes views on demand. */
class FakeControlPlane implements ControlPlaneClient {
  opts!: XdsClientOptions;
  signed: string[] = [];
  started = false;
  stopped = false;
  version = 0;
  ttlSeconds = 600;
  failStart?: Error;
  #first = Promise.withResolvers<void>();

  connect = (opts: XdsClientOptions): ControlPlaneClient => {
    this.opts = opts;
    return this;
  };

  async start(): Promise<void> {
    if (this.failStart) throw this.failStart;
    this.started = true;
  }

  async ready(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MeshError(ErrorCode.Unreachable, `No configuration within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([this.#first.promise, late]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  status(): XdsClientStatus {
    return { connected: true, version: this.version || undefined, source: "control-plane" };
  }

  async sign(csrPem: string, identity: string): Promise<CsrResponse> {
    this.signed.push(identity);
    const s = await ca.signCsr(csrPem, { identity, ttlSeconds: this.ttlSeconds });
    return { certPem: s.certPem, chainPem: s.chainPem, notAfter: s.notAfter.toISOString(), trustBundlePem: ca.trustBundle.join("") };
  }

  /** Sends the next version of node-a's view, as XdsClient does with each accepted one. */
  async push(m: MeshModel, trustBundlePem = ca.trustBundle.join("")): Promise<number> {
    this.version++;
    await this.opts.onUpdate!({ model: viewOf(m, PROXY), trustBundlePem }, this.version);
    this.#first.resolve();
    return this.version;
  }
}

function agentWith(fake: FakeControlPlane | undefined, more: Partial<ProxyAgentOptions> = {}): ProxyAgent {
  const agent = new ProxyAgent({
    proxy: PROXY,
    controlPlane: "127.0.0.1:15012",
    caCert: join(dir, "ca", "root-cert.pem"),
    tokenFile: join(dir, "node.token"),
    connect: fake?.connect,
    ...more,
  });
  agents.push(agent);
  return agent;
}

async function until<T>(what: string, f: () => T | undefined | false, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await Bun.sleep(10);
  }
}

const idle: AgentStart = { onUpdate: () => {}, stopping: () => false, configured: async () => {} };

describe("bootstrap", () => {
  test("the client gets the --ca-cert text and the trimmed token, and re-reads the token file", () => {
    const fake = new FakeControlPlane();
    agentWith(fake, { dataDir: join(dir, "data-bootstrap") });
    expect(fake.opts.caCertPem).toBe(ca.trustBundle.join(""));
    expect(fake.opts.token).toBe("node-token");
    expect(fake.opts.tokenFile).toBe(join(dir, "node.token"));
    expect(fake.opts.proxy).toEqual(PROXY);
    expect(fake.opts.dataDir).toBe(join(dir, "data-bootstrap"));
  });

  test("an unreadable --ca-cert or --token-file stops the start with the flag and the path", () => {
    const missing = join(dir, "no-such-root.pem");
    const fail = (more: Partial<ProxyAgentOptions>) => {
      try {
        agentWith(new FakeControlPlane(), more);
      } catch (e) {
        return e as MeshError;
      }
      throw new Error("the agent started");
    };
    const noCa = fail({ caCert: missing });
    expect(noCa).toBeInstanceOf(MeshError);
    expect(noCa.code).toBe(ErrorCode.ConfigNotFound);
    expect(noCa.message).toStartWith(`Cannot read the CA certificate (--ca-cert) "${missing}": `);
    expect(noCa.message).toContain("ENOENT");
    const noToken = fail({ tokenFile: join(dir, "no-such.token") });
    expect(noToken.code).toBe(ErrorCode.ConfigNotFound);
    expect(noToken.message).toStartWith(`Cannot read the token file (--token-file) "${join(dir, "no-such.token")}": `);
  });
});

describe("certificates", () => {
  test("are requested through the control-plane client and kept in DATA_DIR/certs", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake, { dataDir: join(dir, "data-certs") });
    const cert = await agent.certs.get(VIEWER);
    expect(fake.signed).toEqual([VIEWER]);
    expect(cert.identity).toBe(VIEWER);
    expect(agent.certs.current(VIEWER)?.serial).toBe(cert.serial);
    expect(readdirSync(join(dir, "data-certs", "certs")).length).toBeGreaterThan(0);
  });

  test("by default through XdsClient: an unreachable control plane fails the request, logged as retrying", async () => {
    const agent = agentWith(undefined, { controlPlane: "127.0.0.1:1" });
    const err = await agent.certs.get(VIEWER).then(() => undefined, (e: MeshError) => e);
    expect(err?.code).toBe(ErrorCode.Unreachable);
    expect(err?.message).toContain("127.0.0.1:1");
    await until("the retry warning", () => logged("certificate request failed (retrying)").find((l) => l.identity === VIEWER), 2_000);
    agent.certs.forget(VIEWER);
  });
});

describe("configuration", () => {
  test("start waits for the first configuration, warning while it waits, then runs the role's start-up", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake, { readyStepMs: 20 });
    const before = logged("waiting for configuration").length;
    let configuredAt: number | undefined;
    const seen: number[] = [];
    const done = agent.start({ onUpdate: (_, v) => void seen.push(v), stopping: () => false, configured: async () => void (configuredAt = seen.length) });
    // Seven waits of 20 ms: the first and the seventh warn.
    await until("a second warning", () => logged("waiting for configuration").length >= before + 2, 3_000);
    expect(fake.started).toBe(true);
    expect(configuredAt).toBeUndefined();
    expect(agent.readinessReasons(false)).toEqual(["waiting for configuration from 127.0.0.1:15012 (No configuration within 20 ms)"]);
    await fake.push(model());
    await done;
    expect(configuredAt).toBe(1);
    expect(seen).toEqual([1]);
    expect(agent.configured).toBe(true);
    expect(agent.readinessReasons(false)).toEqual([]);
    expect(agent.readinessReasons(true)).toEqual(["draining"]);
  });

  test("a role that stops while waiting never runs its start-up", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake, { readyStepMs: 20 });
    let stopping = false;
    let configured = false;
    const done = agent.start({ onUpdate: () => {}, stopping: () => stopping, configured: async () => void (configured = true) });
    await Bun.sleep(50);
    stopping = true;
    await done;
    await fake.push(model());
    expect(configured).toBe(false);
  });

  test("a failed start-up is logged under the role's scope; before any configuration readiness shows it", async () => {
    const early = new FakeControlPlane();
    early.failStart = new Error("last-known-good unreadable");
    const agent = agentWith(early);
    await agent.start(idle);
    expect(logged("ztunnel start failed").at(-1)).toMatchObject({ level: "error", error: "last-known-good unreadable" });
    expect(agent.readinessReasons(false)).toEqual(["waiting for configuration from 127.0.0.1:15012 (last-known-good unreadable)"]);

    const late = new FakeControlPlane();
    const started = agentWith(late);
    await late.push(model());
    await started.start({ ...idle, configured: async () => { throw new Error("port 15008 in use"); } });
    expect(logged("ztunnel start failed").at(-1)).toMatchObject({ level: "error", error: "port 15008 in use" });
  });

  test("a version the role refuses (its onUpdate throws) does not count as configured", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake);
    let refuse = true;
    void agent.start({ ...idle, onUpdate: () => { if (refuse) throw new Error("bad view"); } });
    await expect(fake.push(model())).rejects.toThrow("bad view");
    expect(agent.configured).toBe(false);
    expect(agent.readinessReasons(false)).toEqual(["waiting for configuration from 127.0.0.1:15012"]);
    refuse = false;
    await fake.push(model());
    expect(agent.configured).toBe(true);
  });

  test("each update brings its trust bundle to the certificates before the role sees it", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake);
    let bundleSeenByRole: string | undefined;
    void agent.start({ ...idle, onUpdate: () => void (bundleSeenByRole = agent.certs.trustBundle()) });
    expect(agent.certs.trustBundle()).toBe(ca.trustBundle.join(""));
    await fake.push(model(), ca.trustBundle.join("") + otherRoot);
    expect(agent.certs.trustBundle()).toContain(otherRoot.trim());
    expect(agent.certs.trustBundle()).toContain(ca.trustBundle[0]!.trim());
    expect(bundleSeenByRole).toBe(agent.certs.trustBundle());
    // A later update that drops the other root: peers signed by it are no longer trusted.
    await fake.push(model());
    expect(agent.certs.trustBundle()).not.toContain(otherRoot.trim());
  });

  test("rotationFraction of a later update moves the scheduled renewal; an invalid one is refused with a warning", async () => {
    const fake = new FakeControlPlane();
    // 20 s certificates, backdated 1 s: at 0.5 (±0.05 jitter) the renewal comes 8 to 10 s after issue, at
    // 0.15 within 1 to 3 s. A renewal well before 8 s shows the pushed fraction was applied (with room for a
    // loaded machine, where signing alone can take a second).
    fake.ttlSeconds = 20;
    const agent = agentWith(fake);
    void agent.start(idle);
    await fake.push(model(0.5));
    await agent.certs.get(VIEWER);
    const issuedAt = Date.now();
    await Bun.sleep(100);
    expect(fake.signed).toEqual([VIEWER]);
    const before = logged("rotationFraction not applied: the previous one stays").length;
    await fake.push(model(1.5));
    expect(logged("rotationFraction not applied: the previous one stays").length).toBe(before + 1);
    await fake.push(model(0.15));
    await until("the renewal at 0.15", () => fake.signed.length === 2, 7_000);
    expect(Date.now() - issuedAt).toBeLessThan(7_500);
  }, 15_000);
});

describe("connection, status and stop", () => {
  test("connection changes are logged with the control plane's address", () => {
    const fake = new FakeControlPlane();
    agentWith(fake);
    fake.opts.onConnectionChange!(true);
    expect(logged("connected to the control plane").at(-1)).toMatchObject({ level: "info", controlPlane: "127.0.0.1:15012" });
    fake.opts.onConnectionChange!(false, new Error("stream reset"));
    expect(logged("control plane connection lost").at(-1)).toMatchObject({ level: "warn", controlPlane: "127.0.0.1:15012", error: "stream reset" });
  });

  test("status is the client's; stop stops the client and the certificate renewals", async () => {
    const fake = new FakeControlPlane();
    const agent = agentWith(fake);
    await fake.push(model());
    expect(agent.status()).toEqual({ connected: true, version: 1, source: "control-plane" });
    await agent.certs.get(VIEWER);
    await agent.stop();
    expect(fake.stopped).toBe(true);
    expect(agent.certs.current(VIEWER)?.identity).toBe(VIEWER);
    const err = await agent.certs.get(`${VIEWER}-2`).then(() => undefined, (e: Error) => e);
    expect(err?.message).toBe("The certificate client is closed");
  });
});
