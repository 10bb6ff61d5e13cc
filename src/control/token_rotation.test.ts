/**
 * A proxy cut off from the control role for longer than its control-plane client certificate lives must
 * bootstrap again with the token as it is NOW (the kubelet rotates a projected service-account token in its
 * file), not the one it started with, which has expired meanwhile.
 */
import { afterAll, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { createBootstrapToken, verifyBootstrapToken } from "../identity/mod.ts";
import { XdsClient } from "../xds/mod.ts";
import { meshYaml, tempDir, writeMesh } from "./_test_env.ts";
import { fixedPort, startTestControl, type TestControl, waitFor } from "../../test/support/mod.ts";

const t = tempDir("mesh-token-rotation-");
afterAll(() => t.cleanup());

/** Replaces the file's content in one step, as the kubelet's symlink swap does. */
function rotate(file: string, token: string): void {
  writeFileSync(`${file}.tmp`, token + "\n", { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

test("after its client certificate expired while cut off, a client bootstraps with the token file's new content", async () => {
  writeMesh(t.dir, meshYaml());
  const dataDir = join(t.dir, "data");
  const ttl = { clientCertTtlSeconds: 2 };
  const port = fixedPort(); // the control role comes back on it after seconds away
  let tc: TestControl = await startTestControl(t.dir, { ...ttl, listen: `127.0.0.1:${port}` });
  const caCertPem = await Bun.file(join(dataDir, "root-cert.pem")).text();
  const base = { controlPlane: `127.0.0.1:${port}`, caCertPem, backoff: { initialMs: 50, maxMs: 300 } };

  // Short-lived tokens: valid for the first bootstrap, expired by the time the control role is back.
  const shortA = await createBootstrapToken(dataDir, { node: "node-a", ttlSeconds: 3 });
  const shortB = await createBootstrapToken(dataDir, { node: "node-b", ttlSeconds: 3 });
  const shortW = await createBootstrapToken(dataDir, { gateway: "shop/wp", ttlSeconds: 3 });
  const tokenFile = join(t.dir, "node-a.token");
  rotate(tokenFile, shortA);

  // As the roles construct it: the token read at start plus the file it came from.
  const fromFile = new XdsClient({ ...base, token: shortA, tokenFile, proxy: { kind: "ztunnel", node: "node-a" } });
  // The function form of a token source.
  let currentW = shortW;
  const fromFunction = new XdsClient({ ...base, token: () => currentW, proxy: { kind: "waypoint", namespace: "shop", name: "wp" } });
  // The old behaviour: the string read once at start.
  const stale = new XdsClient({ ...base, token: shortB, proxy: { kind: "ztunnel", node: "node-b" } });
  const all = [fromFile, fromFunction, stale];
  try {
    for (const c of all) await c.start();
    for (const c of all) await c.ready(5000);
    await waitFor("all connected", () => all.every((c) => c.connected), 5000);
    const firstNotAfter = Date.parse(fromFile.status().clientCertNotAfter!);

    await tc.handle.stop();
    await waitFor("clients notice the control role is gone", () => all.every((c) => !c.connected), 5000);
    // Stay cut off until both the client certificates and the first tokens have expired.
    const tokensExpire = Math.max(...[shortA, shortB, shortW].map((s) => decodeJwt(s).exp! * 1000));
    await Bun.sleep(Math.max(tokensExpire, firstNotAfter) + 1100 - Date.now());
    expect(Date.now()).toBeGreaterThan(firstNotAfter);
    const refused = await verifyBootstrapToken(dataDir, shortA).then(() => undefined, (e) => e);
    expect(refused?.code).toBe("MESH_TOKEN_INVALID");
    expect(refused.message).toContain("expired");

    // Meanwhile the kubelet wrote fresh tokens.
    rotate(tokenFile, await createBootstrapToken(dataDir, { node: "node-a", ttlSeconds: 600 }));
    currentW = await createBootstrapToken(dataDir, { gateway: "shop/wp", ttlSeconds: 600 });

    tc = await startTestControl(t.dir, { ...ttl, listen: `127.0.0.1:${port}` });
    await waitFor("the file-token client reconnects", () => fromFile.connected, 10_000);
    await waitFor("the function-token client reconnects", () => fromFunction.connected, 10_000);
    expect(Date.parse(fromFile.status().clientCertNotAfter!)).toBeGreaterThan(firstNotAfter);
    expect(fromFile.status().lastError).toBeUndefined();
    const proxies = tc.handle.status().proxies.map((p) => p.id);
    expect(proxies).toContain("ztunnel/node-a");

    // Without a fresh token the client is refused, and says why.
    await waitFor("the stale client is refused", () => /expired/.test(stale.status().lastError ?? ""), 10_000);
    expect(stale.connected).toBe(false);
    expect(stale.status().lastError).toContain("Bootstrap refused");
  } finally {
    for (const c of all) await c.stop();
    await tc.handle.stop();
  }
}, 30_000);

test("a client needs a token or a token file", () => {
  const make = () => new XdsClient({ controlPlane: "127.0.0.1:1", caCertPem: "", proxy: { kind: "ztunnel", node: "n" } });
  expect(make).toThrow("needs a bootstrap token");
});

test("an unreadable token file with no token read before fails the bootstrap with a clear error", async () => {
  const tc = await startTestControl(t.dir);
  const caCertPem = await Bun.file(join(t.dir, "data", "root-cert.pem")).text();
  const missing = join(t.dir, "no-such.token");
  const c = new XdsClient({ controlPlane: `127.0.0.1:${tc.handle.port}`, caCertPem, tokenFile: missing, proxy: { kind: "ztunnel", node: "node-a" }, backoff: { initialMs: 50, maxMs: 300 } });
  try {
    await c.start();
    await waitFor("bootstrap fails", () => c.status().lastError, 5000);
    expect(c.status().lastError).toContain(`Cannot read the token file "${missing}"`);
    expect(c.connected).toBe(false);
    // The file appears: the next attempt reads it.
    rotate(missing, await createBootstrapToken(join(t.dir, "data"), { node: "node-a", ttlSeconds: 600 }));
    await waitFor("connected once the file exists", () => c.connected, 5000);
  } finally {
    await c.stop();
    await tc.handle.stop();
  }
}, 15_000);
