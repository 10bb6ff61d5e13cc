import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBootstrapToken, verifyBootstrapToken } from "../identity/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { adminSecretFile, ensureAdminSecret, findAdminSecret, netnsId, restoreSecret } from "./auth.ts";
import { startAdminServers } from "./servers.ts";
import { fixedPort } from "../platform/_test_ports.ts";

const dir = mkdtempSync(join(tmpdir(), "mesh-admin-auth-"));
const secretDir = join(dir, "secrets");
const dataDir = join(dir, "control-data");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// These tests need a fixed port (the secret of an ephemeral port behaves differently), from outside the
// ephemeral range (fixedPort), where no other process is handed it: the admin server shares a port with
// SO_REUSEPORT, so a stranger on it would not even make the bind fail.

test("the admin API refuses a caller without the credential, and serves one with it; health and metrics stay open", async () => {
  const reg = new Registry();
  const port = fixedPort();
  const s = startAdminServers(
    { metrics: "127.0.0.1:0", ready: "127.0.0.1:0", admin: `127.0.0.1:${port}` },
    reg,
    { auth: { secretDir, verifyToken: async (t) => (await verifyBootstrapToken(dataDir, t)).kind === "admin" } },
  );
  try {
    s.admin.get("/config_dump", (c) => c.json({ node: "node-a" }));
    s.addRole({ name: "ztunnel", readiness: () => ({ ready: true, reasons: [] }), stop: async () => {} });
    const url = `http://127.0.0.1:${port}`;
    // The secret: 0600 in a 0700 directory, named after this network namespace and the port.
    expect(s.adminSecretPath).toBe(adminSecretFile(secretDir, port));
    expect(s.adminSecretPath).toContain(`${netnsId()}-${port}.secret`);
    expect(statSync(s.adminSecretPath!).mode & 0o777).toBe(0o600);
    expect(statSync(secretDir).mode & 0o777).toBe(0o700);
    const secret = readFileSync(s.adminSecretPath!, "utf8").trim();
    expect(findAdminSecret(port, [join(dir, "elsewhere"), secretDir])).toEqual({ secret, path: s.adminSecretPath! });

    for (const [path, method] of [["/config_dump", "GET"], ["/logging", "GET"], ["/logging?level=debug", "POST"], ["/healthz/ready", "GET"]] as const) {
      const r = await fetch(url + path, { method });
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
      expect((await r.json()).error).toContain(s.adminSecretPath!);
    }
    const wrong = await fetch(`${url}/logging?level=debug`, { method: "POST", headers: { authorization: `Bearer ${"x".repeat(secret.length)}` } });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).error).toContain("refused");
    // Not a token of this control plane either (signed by another data dir's key).
    const foreign = await createBootstrapToken(join(dir, "other-data"), { admin: true, ttlSeconds: 60 });
    expect((await fetch(`${url}/config_dump`, { headers: { authorization: `Bearer ${foreign}` } })).status).toBe(401);
    // The log level was not changed by any refused call.
    const ok = await fetch(`${url}/logging`, { headers: { authorization: `Bearer ${secret}` } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).default).not.toBe("debug");
    expect(await (await fetch(`${url}/config_dump`, { headers: { authorization: `bearer ${secret}` } })).json()).toEqual({ node: "node-a" });
    // An admin token of this control plane (mesh token create --admin) is accepted; a node token is not.
    const admin = await createBootstrapToken(dataDir, { admin: true, ttlSeconds: 60 });
    expect((await fetch(`${url}/config_dump`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
    const node = await createBootstrapToken(dataDir, { node: "node-a", ttlSeconds: 60 });
    expect((await fetch(`${url}/config_dump`, { headers: { authorization: `Bearer ${node}` } })).status).toBe(401);
    // Refusals are counted.
    expect(reg.render()).toMatch(/mesh_admin_refused_total 7\b/);
    // Readiness and metrics on their own ports need nothing.
    expect((await fetch(`http://127.0.0.1:${s.ports.ready}/healthz/ready`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${s.ports.metrics}/metrics`)).status).toBe(200);
  } finally {
    await s.close();
  }
  // The last process on the port took its secret with it.
  expect(findAdminSecret(port, [secretDir])).toBeUndefined();
});

test("an overlapping restart (same port, SO_REUSEPORT) answers the same secret", async () => {
  const port = fixedPort();
  const a = startAdminServers({ admin: `127.0.0.1:${port}` }, new Registry(), { auth: { secretDir } });
  const b = startAdminServers({ admin: `127.0.0.1:${port}` }, new Registry(), { auth: { secretDir } });
  try {
    expect(b.adminSecretPath).toBe(a.adminSecretPath!);
    const secret = readFileSync(a.adminSecretPath!, "utf8").trim();
    // Many requests: the kernel spreads them over both processes' sockets; every one is accepted.
    const codes = await Promise.all(Array.from({ length: 20 }, () =>
      fetch(`http://127.0.0.1:${port}/logging`, { headers: { authorization: `Bearer ${secret}` } }).then((r) => r.status)
    ));
    expect(new Set(codes)).toEqual(new Set([200]));
  } finally {
    await a.close();
    await b.close();
  }
});

test("ensureAdminSecret replaces a damaged file and agrees with itself", () => {
  const d = join(dir, "damaged");
  const first = ensureAdminSecret(1234, [d]);
  expect(ensureAdminSecret(1234, [d])).toEqual(first);
  writeFileSync(first.path, "garbage");
  const second = ensureAdminSecret(1234, [d]);
  expect(second.secret).not.toBe(first.secret);
  expect(second.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
});

test("an ephemeral port's secret is removed on close; without auth the port is open (tests only)", async () => {
  const s = startAdminServers({ admin: "127.0.0.1:0" }, new Registry(), { auth: { secretDir } });
  const path = s.adminSecretPath!;
  expect(readFileSync(path, "utf8").trim().length).toBeGreaterThan(40);
  await s.close();
  expect(() => statSync(path)).toThrow();
  const open = startAdminServers({ admin: "127.0.0.1:0" }, new Registry(), { auth: false });
  try {
    expect((await fetch(`http://127.0.0.1:${open.ports.admin}/logging`)).status).toBe(200);
    expect(open.adminSecretPath).toBeUndefined();
  } finally {
    await open.close();
  }
});

test("the last process on a fixed port removes the secret; one that leaves a successor keeps it", async () => {
  const port = fixedPort();
  const a = startAdminServers({ admin: `127.0.0.1:${port}` }, new Registry(), { auth: { secretDir } });
  const b = startAdminServers({ admin: `127.0.0.1:${port}` }, new Registry(), { auth: { secretDir } });
  const path = a.adminSecretPath!;
  await a.close();
  expect(findAdminSecret(port, [secretDir])?.path).toBe(path);
  await b.close();
  expect(findAdminSecret(port, [secretDir])).toBeUndefined();
});

describe("the secret's directory and file are trusted only when private to this user", () => {
  const planted = "P".repeat(43);
  const isRoot = process.getuid?.() === 0;
  let n = 0;
  const fresh = () => join(dir, `trust-${n++}`);
  const plant = (d: string, port: number, opts: { uid?: number; mode?: number } = {}) => {
    const f = adminSecretFile(d, port);
    writeFileSync(f, planted + "\n", { mode: opts.mode ?? 0o600 });
    chmodSync(f, opts.mode ?? 0o600);
    if (opts.uid !== undefined) chownSync(f, opts.uid, opts.uid);
    return f;
  };

  test.skipIf(!isRoot)("a directory another user made first (temp-dir fallback) is never read nor written: the next one is used", () => {
    const theirs = fresh();
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    plant(theirs, 4001, { uid: 65534 });
    const ours = fresh();
    const s = ensureAdminSecret(4001, [theirs, ours]);
    expect(s.secret).not.toBe(planted);
    expect(s.path).toBe(adminSecretFile(ours, 4001));
    expect(readdirSync(theirs)).toEqual([`${netnsId()}-4001.secret`]);
    expect(findAdminSecret(4001, [theirs])).toBeUndefined();
    expect(() => ensureAdminSecret(4001, [theirs])).toThrow(/belongs to uid 65534/);
  });

  test("a directory that is a symbolic link (even to a directory of ours) is refused", () => {
    const real = fresh();
    mkdirSync(real, { mode: 0o700 });
    plant(real, 4002);
    const link = fresh();
    symlinkSync(real, link);
    expect(() => ensureAdminSecret(4002, [link])).toThrow(/symbolic link/);
    expect(findAdminSecret(4002, [link])).toBeUndefined();
    expect(readFileSync(adminSecretFile(real, 4002), "utf8").trim()).toBe(planted);
  });

  test("a file that is a symbolic link is replaced, not followed (its target keeps its content)", () => {
    const d = fresh();
    mkdirSync(d, { mode: 0o700 });
    const target = join(dir, `target-${n}`);
    writeFileSync(target, planted + "\n", { mode: 0o600 });
    symlinkSync(target, adminSecretFile(d, 4003));
    expect(findAdminSecret(4003, [d])).toBeUndefined();
    const s = ensureAdminSecret(4003, [d]);
    expect(s.secret).not.toBe(planted);
    expect(lstatSync(s.path).isSymbolicLink()).toBe(false);
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(target, "utf8").trim()).toBe(planted);
  });

  test("a secret file readable by others (0644) is replaced", () => {
    const d = fresh();
    mkdirSync(d, { mode: 0o700 });
    plant(d, 4004, { mode: 0o644 });
    expect(findAdminSecret(4004, [d])).toBeUndefined();
    const s = ensureAdminSecret(4004, [d]);
    expect(s.secret).not.toBe(planted);
    expect(findAdminSecret(4004, [d])).toEqual(s);
  });

  test.skipIf(!isRoot)("our directory with a loose mode is made 0700, and a file another user put in it is replaced", () => {
    const d = fresh();
    mkdirSync(d, { mode: 0o700 });
    chmodSync(d, 0o777);
    plant(d, 4005, { uid: 65534 });
    const s = ensureAdminSecret(4005, [d]);
    expect(s.secret).not.toBe(planted);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(statSync(s.path).uid).toBe(process.getuid!());
  });

  test.skipIf(!isRoot)("restoreSecret writes nothing into a directory someone else made in its place", () => {
    const d = fresh();
    const s = ensureAdminSecret(4006, [d]);
    rmSync(d, { recursive: true });
    mkdirSync(d, { mode: 0o777 });
    chmodSync(d, 0o777);
    chownSync(d, 65534, 65534);
    restoreSecret(s);
    expect(readdirSync(d)).toEqual([]);
    rmSync(d, { recursive: true });
    restoreSecret(s); // gone altogether: made again, ours
    expect(findAdminSecret(4006, [d])).toEqual(s);
  });
});
