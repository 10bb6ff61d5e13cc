import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate as NodeX509 } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { CertificateAuthority } from "./ca.ts";
import { type Cert, type SignResult, WorkloadCertificates } from "./cert_client.ts";
import { createCsr } from "./csr.ts";
import { peerSpiffeId } from "../model/mod.ts";
import { waitFor } from "../../test/support/mod.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "mesh-certclient-test-"));
  dirs.push(d);
  return d;
}
const clients: WorkloadCertificates[] = [];
function track(c: WorkloadCertificates): WorkloadCertificates {
  clients.push(c);
  return c;
}
afterAll(() => {
  for (const c of clients) c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SERVER = "spiffe://cluster.local/ns/shop/sa/product-api";
const CLIENT = "spiffe://cluster.local/ns/shop/sa/product-viewer";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await CertificateAuthority.open(tmp());
});

function signer(ttlSeconds: number, log?: string[]) {
  return async (csrPem: string, identity: string): Promise<SignResult> => {
    log?.push(identity);
    const s = await ca.signCsr(csrPem, { identity, ttlSeconds });
    return { certPem: s.certPem, chainPem: s.chainPem };
  };
}

/**
 * A loopback mTLS server presenting `certs.current(id)` and verifying clients against `certs.trustBundle()`;
 * both follow rotations (setSecureContext applies to new connections only: open ones are untouched).
 * After the handshake the server answers with the client's SPIFFE ID and the serial it saw.
 */
async function mtlsServer(certs: WorkloadCertificates, id: string) {
  const material = () => {
    const m = certs.tlsMaterial(id)!;
    return { key: m.key, cert: m.cert, ca: m.ca, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" as const };
  };
  const server = tls.createServer(material(), (s) => {
    const peer = s.getPeerCertificate();
    s.end(`${peerSpiffeId(peer.subjectaltname)} ${peer.serialNumber}`);
    s.on("error", () => {});
  });
  const update = () => server.setSecureContext(material());
  const offRotate = certs.onRotate((c) => c.identity === id && update());
  const offBundle = certs.onTrustBundle(update);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => {
      offRotate();
      offBundle();
      server.close();
    },
  };
}

/** One full handshake as `id`, checking the server's SPIFFE ID; resolves with what both sides saw. */
function handshake(port: number, certs: WorkloadCertificates, id: string, expectServer: string) {
  const m = certs.tlsMaterial(id);
  if (!m) return Promise.reject(new Error(`no certificate for ${id}`));
  return new Promise<{ serverSerial: string; seenBy: string }>((resolve, reject) => {
    let data = "";
    let serverSerial = "";
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error("handshake timed out"));
    }, 3000);
    const c = tls.connect({
      host: "127.0.0.1",
      port,
      key: m.key,
      cert: m.cert,
      ca: m.ca,
      minVersion: "TLSv1.3",
      // SPIFFE authentication: the URI SAN is the server's identity (no DNS name check).
      checkServerIdentity: (_h, cert) => (peerSpiffeId(cert.subjectaltname) === expectServer ? undefined : new Error(`unexpected server ${cert.subjectaltname}`)),
    }, () => {
      serverSerial = c.getPeerCertificate().serialNumber;
    });
    c.on("data", (d) => (data += d));
    c.on("end", () => {
      clearTimeout(timer);
      // An empty answer means the server refused us after the client-side handshake finished.
      if (!data) reject(new Error("server closed without answering"));
      else resolve({ serverSerial, seenBy: data });
    });
    c.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

describe("WorkloadCertificates", () => {
  test("first get issues; concurrent gets share one request; current() is synchronous", async () => {
    const log: string[] = [];
    const wc = track(new WorkloadCertificates({ sign: signer(3600, log), trustBundlePem: ca.trustBundlePem }));
    expect(wc.current(SERVER)).toBeUndefined();
    const [a, b] = await Promise.all([wc.get(SERVER), wc.get(SERVER)]);
    expect(a).toBe(b);
    expect(log).toEqual([SERVER]);
    expect(wc.current(SERVER)).toBe(a);
    expect(await wc.get(SERVER)).toBe(a);
    expect(log.length).toBe(1);
    expect(a.identity).toBe(SERVER);
    expect(new NodeX509(a.certPem).subjectAltName).toBe(`URI:${SERVER}`);
    expect(a.chainPem.startsWith(a.certPem)).toBe(true);
    expect(a.keyPem).toContain("BEGIN PRIVATE KEY");
    expect(wc.list()).toEqual([a]);
  });

  test("mTLS on loopback between two issued certificates; each side reads the other's URI SAN", async () => {
    const wc = track(new WorkloadCertificates({ sign: signer(600), trustBundlePem: ca.trustBundlePem }));
    await wc.get(SERVER);
    await wc.get(CLIENT);
    const srv = await mtlsServer(wc, SERVER);
    try {
      const r = await handshake(srv.port, wc, CLIENT, SERVER);
      expect(r.seenBy).toBe(`${CLIENT} ${wc.current(CLIENT)!.serial}`);
      expect(r.serverSerial).toBe(wc.current(SERVER)!.serial);
      // The client insists on the expected server identity.
      await expect(handshake(srv.port, wc, CLIENT, "spiffe://cluster.local/ns/shop/sa/someone-else")).rejects.toThrow("unexpected server");
      // A client certificate from another CA is refused by the server.
      const foreignCa = await CertificateAuthority.open(tmp());
      const foreign = track(new WorkloadCertificates({
        sign: async (csr, id) => (await foreignCa.signCsr(csr, { identity: id, ttlSeconds: 600 })).chainPem,
        trustBundlePem: foreignCa.trustBundlePem + ca.trustBundlePem,
      }));
      await foreign.get(CLIENT);
      await expect(handshake(srv.port, foreign, CLIENT, SERVER)).rejects.toThrow();
    } finally {
      srv.close();
    }
  });

  test("rotation under continuous use: 3 s certificates, ~6 s of handshakes, none fails, serials change", async () => {
    const rotations: Cert[] = [];
    // Renewal at a quarter of the life: a renewal that a starved machine makes late still lands well
    // before expiry (at half of a 3 s certificate, whose notAfter is cut to whole seconds, a renewal had
    // about 1 s to finish; under CPU contention some took longer and a handshake met an expired certificate).
    const opts = { trustBundlePem: ca.trustBundlePem, rotationFraction: 0.25 };
    const server = track(new WorkloadCertificates({ sign: signer(3), ...opts }));
    const client = track(new WorkloadCertificates({ sign: signer(3), ...opts }));
    client.onRotate((c) => rotations.push(c));
    await server.get(SERVER);
    await client.get(CLIENT);
    const srv = await mtlsServer(server, SERVER);
    const serverSerials = new Set<string>();
    const clientSerials = new Set<string>();
    const failures: string[] = [];
    let ok = 0;
    // At least 6 s (two certificate lifetimes) and at least 51 handshakes: a loaded machine does fewer
    // per second, so it runs longer rather than counting short (bounded, within the test's timeout).
    const start = Date.now();
    try {
      while ((Date.now() - start < 6000 || ok <= 50) && Date.now() - start < 15_000) {
        try {
          const r = await handshake(srv.port, client, CLIENT, SERVER);
          serverSerials.add(r.serverSerial);
          clientSerials.add(r.seenBy.split(" ")[1]!);
          ok++;
        } catch (e) {
          failures.push((e as Error).message);
          await sleep(10); // a failing handshake can reject at once: let timers run
        }
      }
    } finally {
      srv.close();
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    // Several generations in 6 s on both sides, none expired while in use.
    expect(serverSerials.size).toBeGreaterThanOrEqual(3);
    expect(clientSerials.size).toBeGreaterThanOrEqual(3);
    expect(rotations.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < rotations.length; i++) {
      expect(rotations[i]!.serial).not.toBe(rotations[i - 1]!.serial);
      expect(rotations[i]!.keyPem).not.toBe(rotations[i - 1]!.keyPem); // a fresh key each time
    }
  }, 20_000);

  test("root rotation under continuous use: both roots trusted during the overlap, then the old one removed", async () => {
    const rca = await CertificateAuthority.open(tmp());
    // 4 s certificates: notAfter is cut to whole seconds, and on a loaded machine issuing one (key, CSR,
    // signature, checks) took up to a second, so a 2 s certificate could arrive with half a second left
    // and expire before the next renewal finished.
    const sign = async (csr: string, id: string) => (await rca.signCsr(csr, { identity: id, ttlSeconds: 4 })).chainPem;
    const server = track(new WorkloadCertificates({ sign, trustBundlePem: rca.trustBundlePem }));
    const client = track(new WorkloadCertificates({ sign, trustBundlePem: rca.trustBundlePem }));
    // What the control plane's bundle push does.
    rca.onTrustBundleChange((b) => {
      server.setTrustBundle(b);
      client.setTrustBundle(b);
    });
    await server.get(SERVER);
    await client.get(CLIENT);
    const oldRoot = rca.rootPem;
    const oldCert = client.current(CLIENT)!;
    const srv = await mtlsServer(server, SERVER);
    const failures: string[] = [];
    let ok = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          await handshake(srv.port, client, CLIENT, SERVER);
          ok++;
        } catch (e) {
          failures.push((e as Error).message);
          // Without a certificate handshake() rejects at once: a loop of microtasks would starve the
          // timers (renewal, `stop`) and hang the test forever instead of failing it.
          await sleep(10);
        }
      }
    })();
    const chainsTo = (c: Cert | undefined, root: string) => !!c && new NodeX509(c.certPem).verify(new NodeX509(root).publicKey);
    // Each phase lasts at least `ms` and sees at least 8 more good handshakes (a loaded machine does
    // fewer per second: the phase then runs longer instead of the total coming up short).
    const phase = async (ms: number) => {
      const from = ok;
      await sleep(ms);
      const deadline = Date.now() + 5000;
      while (ok - from < 8 && failures.length === 0 && Date.now() < deadline) await sleep(20);
    };
    try {
      await phase(500);
      const newRoot = await rca.addRoot();
      await phase(300);
      await rca.activateRoot();
      // Wait until both sides renewed onto the new root (about one rotation period).
      await waitFor("both sides on the new root", () => chainsTo(server.current(SERVER), newRoot) && chainsTo(client.current(CLIENT), newRoot), 10_000, { intervalMs: 50 });
      expect(chainsTo(server.current(SERVER), newRoot)).toBe(true);
      expect(chainsTo(client.current(CLIENT), newRoot)).toBe(true);
      await phase(300);
      expect(rca.removeRoot(oldRoot)).toBe(true);
      expect(client.trustBundle()).toBe(newRoot);
      await phase(1000);
    } finally {
      stop = true;
      await loop;
      srv.close();
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(30);
    // The removal is real: a certificate of the old root is now refused.
    const srv2 = await mtlsServer(server, SERVER);
    try {
      const m = { key: oldCert.keyPem, cert: oldCert.chainPem, ca: client.trustBundle() };
      const refused = await new Promise<boolean>((resolve) => {
        const c = tls.connect({ host: "127.0.0.1", port: srv2.port, ...m, checkServerIdentity: () => undefined }, () => {});
        let data = "";
        c.on("data", (d) => (data += d));
        c.on("end", () => resolve(data === ""));
        c.on("error", () => resolve(true));
      });
      expect(refused).toBe(true);
    } finally {
      srv2.close();
    }
  }, 45_000); // each wait above is bounded; on a loaded machine they add up

  test("failures retry with exponential backoff; the old certificate keeps serving meanwhile", async () => {
    const FAILURES = 5;
    const attempts: number[] = [];
    const errors: string[] = [];
    const servedAtFailure: boolean[] = [];
    let first: Cert | undefined;
    const wc: WorkloadCertificates = track(new WorkloadCertificates({
      sign: async (csr, id) => {
        attempts.push(Date.now());
        // The first renewals fail: a number of attempts, not a time window, so a slow machine makes
        // neither fewer failures nor fewer retries to measure.
        if (attempts.length > 1 && attempts.length <= 1 + FAILURES) throw new Error("control plane unreachable");
        return (await ca.signCsr(csr, { identity: id, ttlSeconds: 10 })).chainPem;
      },
      trustBundlePem: ca.trustBundlePem,
      rotationFraction: 0.1, // renew after ~1 s of a 10 s certificate (backdated by 1 s: at once)
      jitter: 0,
      initialRetryMs: 50,
      onError: (e) => {
        errors.push((e as Error).message);
        servedAtFailure.push(wc.current(SERVER)?.serial === first?.serial);
      },
    }));
    first = await wc.get(SERVER);
    await waitFor("the renewal", () => wc.current(SERVER)?.serial !== first.serial, 10_000);
    const second = wc.current(SERVER)!;
    expect(second.serial).not.toBe(first.serial);
    expect(errors).toEqual(Array(FAILURES).fill("control plane unreachable"));
    // At every failure the old certificate was still the one served.
    expect(servedAtFailure).toEqual(Array(FAILURES).fill(true));
    // Gaps between attempts after the first failure grow: 50, 100, 200, 400, 800 ms less up to 25% of
    // jitter. A timer never fires early, so each gap is at least its share; on a loaded machine gaps
    // only get longer (key generation and event-loop delay add to each), so the upper bound is loose.
    const retries = attempts.slice(1, FAILURES + 2); // the failures and the success that ended them
    const gaps = retries.slice(1).map((t, i) => t - retries[i]!);
    expect(gaps.length).toBe(FAILURES);
    for (const [i, g] of gaps.entries()) expect(g).toBeGreaterThanOrEqual(Math.floor(0.75 * 50 * 2 ** i) - 2);
    expect(gaps[0]!).toBeLessThan(400); // the first retry is quick: well below the last one's minimum of 600
  }, 15_000);

  test("a first request that fails rejects get(), and a background retry recovers", async () => {
    let fail = true;
    const wc = track(new WorkloadCertificates({
      sign: async (csr, id) => {
        if (fail) throw new Error("no route to control plane");
        return (await ca.signCsr(csr, { identity: id, ttlSeconds: 60 })).chainPem;
      },
      trustBundlePem: ca.trustBundlePem,
      initialRetryMs: 30,
    }));
    await expect(wc.get(CLIENT)).rejects.toThrow("no route to control plane");
    fail = false;
    await waitFor("the certificate after the failure", () => wc.current(CLIENT), 2000);
    expect(wc.current(CLIENT)?.identity).toBe(CLIENT);
  });

  test("unusable CA answers are refused: not our key, unknown root, garbage", async () => {
    const other = await CertificateAuthority.open(tmp());
    const cases: [string, (csr: string, id: string) => Promise<SignResult>, string][] = [
      ["not our key", async () => {
        const { csrPem } = await createCsr(CLIENT);
        return (await ca.signCsr(csrPem, { identity: CLIENT, ttlSeconds: 60 })).chainPem;
      }, "does not match private key"],
      ["unknown root", async (csr, id) => (await other.signCsr(csr, { identity: id, ttlSeconds: 60 })).chainPem, "unknown authority"],
      ["garbage", async () => "nothing here", "returned no certificate"],
    ];
    for (const [name, sign, why] of cases) {
      const wc = track(new WorkloadCertificates({ sign, trustBundlePem: ca.trustBundlePem, initialRetryMs: 60_000 }));
      await expect(wc.get(CLIENT), name).rejects.toThrow(why);
      expect(wc.current(CLIENT)).toBeUndefined();
      wc.close();
    }
  });

  test("forget stops renewal and drops the persisted copy; persistDir survives a restart (0600)", async () => {
    const dir = tmp();
    const log: string[] = [];
    // Renewal late in the life (about 1.5 s away): a renewal before the restarted proxy below reads the
    // file would replace the copy it is meant to reuse (at half of a 2 s certificate whose notAfter is cut
    // to whole seconds, that could be 0.2 s away).
    const wc = track(new WorkloadCertificates({ sign: signer(2, log), trustBundlePem: ca.trustBundlePem, persistDir: dir, rotationFraction: 0.9, jitter: 0 }));
    const c = await wc.get(SERVER);
    const files = readdirSync(dir);
    expect(files.length).toBe(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);

    // A restarted proxy reuses the last good certificate without asking the CA.
    const log2: string[] = [];
    const again = track(new WorkloadCertificates({ sign: signer(2, log2), trustBundlePem: ca.trustBundlePem, persistDir: dir, rotationFraction: 0.9, jitter: 0 }));
    const reused = await again.get(SERVER);
    expect(reused.serial).toBe(c.serial);
    expect(reused.keyPem).toBe(c.keyPem);
    expect(log2).toEqual([]);
    again.close();

    wc.forget(SERVER);
    expect(wc.current(SERVER)).toBeUndefined();
    expect(existsSync(join(dir, files[0]!))).toBe(false);
    const n = log.length;
    await sleep(c.notAfter.getTime() - Date.now() + 200); // past its expiry, so past any renewal point
    expect(log.length).toBe(n);

    // An expired persisted certificate is not used: the next process's clock is past its expiry. (A real
    // 1 s certificate could arrive already expired: notAfter is in whole seconds.)
    const wc3 = track(new WorkloadCertificates({ sign: signer(60, log), trustBundlePem: ca.trustBundlePem, persistDir: dir }));
    const persisted = await wc3.get(CLIENT);
    wc3.close();
    const later = () => Date.now() + 120_000;
    expect(later()).toBeGreaterThan(persisted.notAfter.getTime());
    const log4: string[] = [];
    const wc4 = track(new WorkloadCertificates({ sign: signer(600, log4), trustBundlePem: ca.trustBundlePem, persistDir: dir, clock: later }));
    expect((await wc4.get(CLIENT)).serial).not.toBe(persisted.serial);
    expect(log4).toEqual([CLIENT]);
  });

  test("trust bundle: set, read, listeners, refusal of an empty bundle", () => {
    const wc = track(new WorkloadCertificates({ sign: signer(60) }));
    expect(wc.trustBundle()).toBeUndefined();
    const seen: string[] = [];
    wc.onTrustBundle((b) => seen.push(b));
    wc.setTrustBundle(ca.trustBundlePem);
    wc.setTrustBundle(ca.trustBundlePem); // unchanged: no event
    expect(wc.trustBundle()).toBe(ca.trustBundlePem);
    expect(seen.length).toBe(1);
    expect(() => wc.setTrustBundle("")).toThrow("no PEM certificate");
    expect(wc.trustBundle()).toBe(ca.trustBundlePem);
  });
});
