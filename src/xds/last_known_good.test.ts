import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MESH_CONFIG } from "../model/mod.ts";
import { LastKnownGood } from "./last_known_good.ts";
import { COLLECTIONS, type SnapshotMessage } from "./protocol.ts";

const root = mkdtempSync(join(tmpdir(), "mesh-lkg-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `d${++n}`, "nested");

function snap(version: number): SnapshotMessage {
  const resources = Object.fromEntries(COLLECTIONS.map((c) => [c, []])) as unknown as SnapshotMessage["resources"];
  resources.namespaces = [{ name: "shop", labels: {}, ambient: true }];
  return { type: "snapshot", version, epoch: "e1", meshConfig: DEFAULT_MESH_CONFIG, trustBundlePem: "ROOT", resources };
}

describe("LastKnownGood", () => {
  test("a burst of saves writes once, with what is held at write time; a new instance loads it", async () => {
    const dir = freshDir();
    let held: SnapshotMessage | undefined = snap(1);
    let reads = 0;
    const lkg = new LastKnownGood(dir, "waypoint/shop/wp", () => (reads++, held));
    lkg.save();
    held = snap(2);
    lkg.save();
    expect(reads).toBe(0);
    await Bun.sleep(120);
    expect(reads).toBe(1);
    expect(lkg.file).toBe(join(dir, "xds-waypoint_shop_wp.json"));
    expect(statSync(lkg.file!).mode & 0o777).toBe(0o600);
    expect(new LastKnownGood(dir, "waypoint/shop/wp", () => undefined).load()).toEqual(snap(2));
    // No temporary file is left behind by the atomic write.
    expect(readdirSync(dir)).toEqual(["xds-waypoint_shop_wp.json"]);
  });

  test("flush writes a pending save at once; with nothing pending it writes nothing", () => {
    const dir = freshDir();
    const lkg = new LastKnownGood(dir, "ztunnel/n1", () => snap(4));
    lkg.flush();
    expect(lkg.load()).toBeUndefined();
    lkg.save();
    lkg.flush();
    expect(lkg.load()?.version).toBe(4);
  });

  test("nothing to write (held state not from the control plane) leaves the file as it was", () => {
    const dir = freshDir();
    const writer = new LastKnownGood(dir, "ztunnel/n1", () => snap(3));
    writer.save();
    writer.flush();
    const lkg = new LastKnownGood(dir, "ztunnel/n1", () => undefined);
    lkg.save();
    lkg.flush();
    expect(lkg.load()?.version).toBe(3);
  });

  test("an unreadable or invalid file is ignored", () => {
    const dir = freshDir();
    const lkg = new LastKnownGood(dir, "ztunnel/n1", () => snap(1));
    expect(lkg.load()).toBeUndefined();
    lkg.save();
    lkg.flush();
    writeFileSync(lkg.file!, "{not json");
    expect(lkg.load()).toBeUndefined();
    writeFileSync(lkg.file!, JSON.stringify({ ...snap(1), version: -1 }));
    expect(lkg.load()).toBeUndefined();
  });

  test("the client certificate round-trips; a malformed one is not taken back", () => {
    const dir = freshDir();
    const lkg = new LastKnownGood(dir, "ztunnel/n1", () => undefined);
    expect(lkg.loadClientCert()).toBeUndefined();
    const cert = { certPem: "C", chainPem: "CH", keyPem: "K", notAfter: "2030-01-01T00:00:00Z", issuedAt: "2029-01-01T00:00:00Z" };
    lkg.saveClientCert(cert);
    expect(new LastKnownGood(dir, "ztunnel/n1", () => undefined).loadClientCert()).toEqual(cert);
    expect(statSync(join(dir, "xds-ztunnel_n1-client.json")).mode & 0o777).toBe(0o600);
    writeFileSync(join(dir, "xds-ztunnel_n1-client.json"), JSON.stringify({ certPem: "C" }));
    expect(lkg.loadClientCert()).toBeUndefined();
  });

  test("without a data dir nothing is read or written", () => {
    const lkg = new LastKnownGood(undefined, "ztunnel/n1", () => snap(1));
    lkg.save();
    lkg.flush();
    lkg.saveClientCert({ certPem: "C", chainPem: "CH", keyPem: "K", notAfter: "x", issuedAt: "y" });
    expect(lkg.file).toBeUndefined();
    expect(lkg.load()).toBeUndefined();
    expect(lkg.loadClientCert()).toBeUndefined();
  });
});
