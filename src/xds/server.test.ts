import { describe, expect, test } from "bun:test";
import { emptyModel, type MeshModel, type Workload } from "../model/mod.ts";
import { Registry } from "../telemetry/mod.ts";
import { type ClientMessage, DeltaMessageSchema, parseWith, type ServerMessage, SnapshotMessageSchema } from "./protocol.ts";
import { type Connection, type XdsEvent, XdsServer } from "./server.ts";
import { workload } from "../../test/support/mod.ts";

const pod = (name: string, node: string, labels: Record<string, string> = { app: name }) =>
  workload(name, "shop", `10.0.0.${name.length}`, node, { labels });

function model(workloads: Workload[], policies: MeshModel["authorizationPolicies"] = []): MeshModel {
  return { ...emptyModel(), workloads, authorizationPolicies: policies };
}

function policy(name: string, app: string): MeshModel["authorizationPolicies"][number] {
  return { name, namespace: "shop", action: "ALLOW", scope: { kind: "selector", matchLabels: { app } }, rules: [{}], hasL7: false };
}

/** A proxy that records frames and answers through the same Connection API the listener uses. */
function fakeProxy(server: XdsServer, node: string) {
  const frames: ServerMessage[] = [];
  let closed = false;
  let pending = "";
  const conn: Connection = server.connect({ kind: "ztunnel", node }, {
    write: (chunk) => {
      pending += new TextDecoder().decode(chunk);
      if (!pending.endsWith("\n")) return;
      expect(pending.indexOf("\n")).toBe(pending.length - 1);
      frames.push(JSON.parse(pending));
      pending = "";
    },
    close: () => void (closed = true),
  }, { remote: "127.0.0.1:1" });
  const send = (m: ClientMessage) => conn.receive(m);
  return { frames, conn, send, closed: () => closed, last: () => frames.at(-1)! };
}

describe("XdsServer", () => {
  test("first push is a snapshot of the proxy's view; later ones are deltas from the ACKed version", () => {
    const s = new XdsServer();
    s.setConfig(model([pod("a", "n1"), pod("b", "n2")], [policy("pa", "a"), policy("pb", "b")]), "ROOTS");
    const p = fakeProxy(s, "n1");
    expect(p.frames.length).toBe(0); // nothing before hello
    p.send({ type: "hello" });
    const snap = parseWith(SnapshotMessageSchema, p.last());
    expect(snap.ok).toBe(true);
    if (!snap.ok) return;
    expect(snap.value.version).toBe(1);
    expect(snap.value.resources.workloads.map((w) => w.name).sort()).toEqual(["a", "b"]);
    // Only the policy selecting a workload of node n1.
    expect(snap.value.resources.authorizationPolicies.map((x) => x.name)).toEqual(["pa"]);
    expect(snap.value.trustBundlePem).toBe("ROOTS");

    // No second push until the first is answered.
    s.setConfig(model([pod("a", "n1", { app: "a", v: "2" }), pod("b", "n2")], [policy("pa", "a"), policy("pb", "b")]), "ROOTS");
    expect(p.frames.length).toBe(1);
    p.send({ type: "ack", version: 1 });
    const d = parseWith(DeltaMessageSchema, p.last());
    expect(d).toMatchObject({ ok: true });
    if (!d.ok) return;
    expect(d.value.base).toBe(1);
    expect(d.value.version).toBe(2);
    expect(d.value.upsert.workloads?.map((w) => w.labels.v)).toEqual(["2"]);
    expect(d.value.remove).toEqual({});
    expect(d.value.trustBundlePem).toBeUndefined();
  });

  test("versions arriving while a push is in flight are coalesced; ACKs come in increasing order", () => {
    const s = new XdsServer();
    const p = fakeProxy(s, "n1");
    p.send({ type: "hello" });
    const acked: number[] = [];
    s.subscribe((e) => e.type === "ack" && acked.push(e.version));
    for (let i = 1; i <= 100; i++) {
      s.setConfig(model(Array.from({ length: i }, (_, k) => pod(`w${k}`, "n1"))), "R");
      // The proxy answers every other change late, so several versions pile up in between.
      if (i % 3 === 0) p.send({ type: "ack", version: (p.last() as { version: number }).version });
    }
    while ((p.last() as { version: number }).version !== acked.at(-1)) p.send({ type: "ack", version: (p.last() as { version: number }).version });
    expect(acked.at(-1)).toBe(100);
    expect([...acked].sort((a, b) => a - b)).toEqual(acked);
    expect(new Set(acked).size).toBe(acked.length);
  });

  test("a removed workload and a policy leaving the node are removals in the delta", () => {
    const s = new XdsServer();
    s.setConfig(model([pod("a", "n1"), pod("b", "n1")], [policy("pb", "b")]), "R");
    const p = fakeProxy(s, "n1");
    p.send({ type: "hello" });
    p.send({ type: "ack", version: 1 });
    // b moves to n2: its policy leaves n1's view.
    s.setConfig(model([pod("a", "n1"), pod("b", "n2")], [policy("pb", "b")]), "R2");
    const d = p.last() as Extract<ServerMessage, { type: "delta" }>;
    expect(d.type).toBe("delta");
    expect(d.remove.authorizationPolicies).toEqual(["shop/pb"]);
    expect(d.upsert.workloads?.map((w) => w.node)).toEqual(["n2"]);
    expect(d.trustBundlePem).toBe("R2");
    p.send({ type: "ack", version: 2 });
    s.setConfig(model([pod("a", "n1")], [policy("pb", "b")]), "R2");
    const d3 = p.last() as Extract<ServerMessage, { type: "delta" }>;
    expect(d3.remove.workloads).toEqual(["Pod/shop/b"]);
    p.send({ type: "ack", version: 3 });
    // Back on n1 together with a second policy: mesh-wide and placed upserts in the same delta.
    s.setConfig(model([pod("a", "n1"), pod("b", "n1")], [policy("pb", "b"), policy("pa", "a")]), "R2");
    const d4 = p.last() as Extract<ServerMessage, { type: "delta" }>;
    expect(d4.upsert.workloads?.map((w) => w.name)).toEqual(["b"]);
    expect(d4.upsert.authorizationPolicies?.map((x) => x.name).sort()).toEqual(["pa", "pb"]);
    expect(d4.remove).toEqual({});
  });

  test("NACK: the version is not re-sent, the reason is kept, the next version is a delta from the last ACK", () => {
    const reg = new Registry();
    const s = new XdsServer({ metrics: reg });
    s.setConfig(model([pod("a", "n1")]), "R");
    const p = fakeProxy(s, "n1");
    p.send({ type: "hello" });
    p.send({ type: "ack", version: 1 });
    s.setConfig(model([pod("a", "n1"), pod("bad", "n1")]), "R");
    p.send({ type: "nack", version: 2, reason: "workload bad is bad" });
    expect(p.frames.length).toBe(2);
    expect(s.status()[0]!.nack).toMatchObject({ version: 2, reason: "workload bad is bad" });
    expect(s.status()[0]!.ackedVersion).toBe(1);
    expect(reg.render()).toContain('mesh_control_nacks_total{kind="ztunnel"} 1');
    s.setConfig(model([pod("a", "n1"), pod("good", "n1")]), "R");
    const d = p.last() as Extract<ServerMessage, { type: "delta" }>;
    expect(d).toMatchObject({ type: "delta", base: 1, version: 3 });
    expect(d.upsert.workloads?.map((w) => w.name)).toEqual(["good"]);
    p.send({ type: "ack", version: 3 });
    expect(s.status()[0]!.nack).toBeUndefined();
  });

  test("resync and a hello with an unknown version get a snapshot; a known version from this epoch gets a delta", () => {
    const s = new XdsServer();
    s.setConfig(model([pod("a", "n1")]), "R");
    const p = fakeProxy(s, "n1");
    p.send({ type: "hello", version: 1, epoch: "another-instance" });
    expect(p.last().type).toBe("snapshot");
    p.send({ type: "resync", reason: "lost state" });
    expect(p.frames.length).toBe(2);
    expect(p.last().type).toBe("snapshot");
    p.send({ type: "ack", version: 1 });

    const q = fakeProxy(s, "n1");
    q.send({ type: "hello", version: 1, epoch: s.epoch });
    expect(q.frames.length).toBe(0); // already up to date
    s.setConfig(model([pod("a", "n1"), pod("b", "n1")]), "R");
    expect(q.last()).toMatchObject({ type: "delta", base: 1, version: 2 });
  });

  test("converged event and histogram: from the change until every connected proxy answered", () => {
    const reg = new Registry();
    const s = new XdsServer({ metrics: reg });
    s.setConfig(model([pod("a", "n1")]), "R");
    const ps = ["n1", "n2", "n3"].map((n) => fakeProxy(s, n));
    for (const p of ps) p.send({ type: "hello" });
    for (const p of ps) p.send({ type: "ack", version: 1 });
    const events: XdsEvent[] = [];
    s.subscribe((e) => events.push(e));
    s.setConfig(model([pod("a", "n1"), pod("b", "n2")]), "R", { changeStartedAt: Date.now() - 50 });
    ps[0]!.send({ type: "ack", version: 2 });
    ps[1]!.send({ type: "nack", version: 2, reason: "no" });
    expect(events.some((e) => e.type === "converged")).toBe(false);
    ps[2]!.conn.closedByPeer(); // a proxy that goes away does not hold convergence back
    const conv = events.find((e) => e.type === "converged") as Extract<XdsEvent, { type: "converged" }>;
    expect(conv.version).toBe(2);
    expect(conv.seconds).toBeGreaterThanOrEqual(0.05);
    expect(reg.render()).toContain('mesh_control_push_duration_seconds_count{scope="change"} 1');
    expect(reg.render()).toContain('mesh_control_connected_proxies{kind="ztunnel"} 2');
  });

  test("at most maxConcurrentSnapshots snapshots are outstanding", () => {
    const s = new XdsServer({ maxConcurrentSnapshots: 2 });
    s.setConfig(model([pod("a", "n1")]), "R");
    const ps = Array.from({ length: 5 }, (_, i) => fakeProxy(s, `n${i}`));
    for (const p of ps) p.send({ type: "hello" });
    expect(ps.map((p) => p.frames.length)).toEqual([1, 1, 0, 0, 0]);
    ps[0]!.send({ type: "ack", version: 1 });
    expect(ps.map((p) => p.frames.length)).toEqual([1, 1, 1, 0, 0]);
    ps[1]!.conn.closedByPeer();
    expect(ps.map((p) => p.frames.length)).toEqual([1, 1, 1, 1, 0]);
  });

  test("unexpected ACKs are ignored", () => {
    const s = new XdsServer();
    s.setConfig(model([pod("a", "n1")]), "R");
    const p = fakeProxy(s, "n1");
    p.send({ type: "hello" });
    p.send({ type: "ack", version: 7 });
    expect(s.status()[0]!.ackedVersion).toBeUndefined();
  });
});
