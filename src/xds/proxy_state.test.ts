import { describe, expect, test } from "bun:test";
import { DEFAULT_MESH_CONFIG, type MeshConfig } from "../model/mod.ts";
import { COLLECTIONS, type Collection, type Resource, resourceKey, type SnapshotMessage } from "./protocol.ts";
import { decideFrame, decideSnapshot, type FrameDecision, type ProxyState, refusal, snapshotOf, type Validate } from "./proxy_state.ts";
import { serviceEntry } from "../../test/support/mod.ts";

// One valid resource of every kind; `rev` lands in a field the proxy reads, so an update is visible.
const make: { [C in Collection]: (name: string, rev: string) => Resource<C> } = {
  namespaces: (name, rev) => ({ name, labels: { rev }, ambient: true }),
  // Loose objects keep fields a newer control plane adds: an update may change only those.
  serviceAccounts: (name, rev) => ({ name, namespace: "shop", rev }) as Resource<"serviceAccounts">,
  workloads: (name, rev) => ({
    uid: `Pod/shop/${name}`, kind: "Pod", name, namespace: "shop", serviceAccount: name,
    identity: `spiffe://cluster.local/ns/shop/sa/${name}`, node: "n1", addresses: ["10.0.0.1"], labels: { rev },
    ambient: true, ports: [], ready: true,
  }),
  services: (name, rev) => ({
    name, namespace: "shop", hostname: `${name}.shop.svc.cluster.local`,
    ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }], endpoints: [], labels: { rev },
  }),
  waypoints: (name, rev) => ({
    name, namespace: "shop", identity: `spiffe://cluster.local/ns/shop/sa/${name}`, serviceAccount: name,
    addresses: [`10.0.9.${rev}`], waypointFor: "service", port: 15008,
  }),
  authorizationPolicies: (name, rev) => ({
    name, namespace: "shop", action: "ALLOW", scope: { kind: "selector", matchLabels: { rev } }, rules: [{}], hasL7: false,
  }),
  requestAuthentications: (name, rev) => ({ name, namespace: "shop", scope: { kind: "namespace" }, jwtRules: [{ issuer: `issuer-${rev}` }] }),
  peerAuthentications: (name, rev) => ({ name, namespace: "shop", scope: { kind: "namespace" }, mode: rev === "1" ? "STRICT" : "PERMISSIVE" }),
  httpRoutes: (name, rev) => ({
    name, namespace: "shop", parentRefs: [{ group: "", kind: "Service", name: "api", namespace: "shop" }],
    hostnames: [`v${rev}.example`], rules: [],
  }),
  referenceGrants: (name, rev) => ({
    name, namespace: "shop", from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "web" }],
    to: [{ group: "", kind: "Service", name: `backend-${rev}` }],
  }),
  serviceEntries: (name, rev) => serviceEntry(name, "shop", [`${name}.example`], { vips: [{ host: `${name}.example`, address: `240.240.0.${rev}` }] }),
  destinationRules: (name, rev) => ({ name, namespace: "shop", host: `${name}.example`, tls: { mode: "SIMPLE", sni: `v${rev}.example` } }),
};
const key = <C extends Collection>(c: C, name: string) => resourceKey(c, make[c](name, "1"));
type Lists = { [C in Collection]?: Resource<C>[] };

function snapshot(version: number, resources: Lists, more: Partial<SnapshotMessage> = {}): string {
  const all = Object.fromEntries(COLLECTIONS.map((c) => [c, resources[c] ?? []]));
  return JSON.stringify({ type: "snapshot", version, epoch: "e1", meshConfig: DEFAULT_MESH_CONFIG, trustBundlePem: "ROOT-A", resources: all, ...more });
}

function delta(base: number, version: number, d: { upsert?: Lists; remove?: { [C in Collection]?: string[] }; epoch?: string; meshConfig?: MeshConfig; trustBundlePem?: string }): string {
  return JSON.stringify({ type: "delta", version, base, epoch: d.epoch ?? "e1", meshConfig: d.meshConfig, trustBundlePem: d.trustBundlePem, upsert: d.upsert ?? {}, remove: d.remove ?? {} });
}

/** One of each kind ("a", revision 1): the state deltas below start from. */
function base(version = 1): ProxyState {
  const all = Object.fromEntries(COLLECTIONS.map((c) => [c, [make[c]("a", "1")]])) as Lists;
  return applied(decideFrame(undefined, snapshot(version, all)));
}

function applied(d: FrameDecision): ProxyState {
  if (d.kind !== "apply") throw new Error(`expected apply, got ${JSON.stringify(d)}`);
  return d.state;
}

/** What a state holds, as plain data (a mutation of a shared map shows up as a difference). */
const dump = (s: ProxyState) => JSON.parse(JSON.stringify(snapshotOf(s)));

describe("decideFrame: snapshots", () => {
  test("a snapshot replaces everything held, and the view lists every collection", () => {
    const held = base(1);
    const s = applied(decideFrame(held, snapshot(7, { workloads: [make.workloads("b", "1")] }, { epoch: "e2", trustBundlePem: "ROOT-B" })));
    expect(s.version).toBe(7);
    expect(s.epoch).toBe("e2");
    expect(s.trustBundlePem).toBe("ROOT-B");
    expect(s.view.trustBundlePem).toBe("ROOT-B");
    expect([...s.resources.workloads.keys()]).toEqual([key("workloads", "b")]);
    for (const c of COLLECTIONS) {
      expect(s.view.model[c] ?? []).toEqual(c === "workloads" ? [make.workloads("b", "1")] : []);
    }
    expect(s.view.model.meshConfig).toEqual(DEFAULT_MESH_CONFIG);
  });

  test("snapshotOf gives back a snapshot that decides to the same state (the last-known-good round trip)", () => {
    const held = base(3);
    const again = decideSnapshot(JSON.parse(JSON.stringify(snapshotOf(held))));
    expect(again.kind).toBe("apply");
    if (again.kind !== "apply") return;
    expect(again.state.version).toBe(3);
    expect(again.state.view).toEqual(held.view);
  });
});

describe("decideFrame: what repeats in a frame is held once", () => {
  test("equal label sets, port lists and endpoint port maps are one object; the resources read the same", () => {
    const w = (name: string) => ({ ...make.workloads(name, "1"), ports: [{ port: 8080 }] });
    const svc = { ...make.services("s", "1"), endpoints: ["a", "b"].map((n) => ({ workloadUid: `Pod/shop/${n}`, ports: { "80": 8080 } })) };
    const s = applied(decideFrame(undefined, snapshot(1, { workloads: [w("a"), w("b")], services: [svc] })));
    const [a, b] = s.view.model.workloads;
    expect(a!.labels).toBe(b!.labels);
    expect(a!.ports).toBe(b!.ports);
    expect(a!.node).toBe("n1");
    const [e1, e2] = s.view.model.services[0]!.endpoints;
    expect(e1!.ports).toBe(e2!.ports);
    expect(s.view.model.workloads).toEqual([w("a"), w("b")]);
    expect(s.view.model.services).toEqual([svc]);
    // A delta's upserts share among themselves too, and the held state reads as sent.
    const d = applied(decideFrame(s, delta(1, 2, { upsert: { workloads: [w("c"), w("d")] } })));
    const byName = new Map(d.view.model.workloads.map((x) => [x.name, x]));
    expect(byName.get("c")!.labels).toBe(byName.get("d")!.labels);
    expect(d.view.model.workloads).toEqual([w("a"), w("b"), w("c"), w("d")]);
  });
});

describe("decideFrame: deltas, for every resource kind", () => {
  for (const c of COLLECTIONS) {
    describe(c, () => {
      const others = COLLECTIONS.filter((o) => o !== c);
      const table: { name: string; d: Parameters<typeof delta>[2]; want: Resource<Collection>[] }[] = [
        { name: "add", d: { upsert: { [c]: [make[c]("b", "1")] } }, want: [make[c]("a", "1"), make[c]("b", "1")] },
        { name: "update", d: { upsert: { [c]: [make[c]("a", "2")] } }, want: [make[c]("a", "2")] },
        { name: "remove", d: { remove: { [c]: [key(c, "a")] } }, want: [] },
        { name: "remove of an unknown key", d: { remove: { [c]: [key(c, "zz")] } }, want: [make[c]("a", "1")] },
        // Removals apply before upserts: a resource replaced within one delta is kept.
        { name: "remove and upsert in one delta", d: { remove: { [c]: [key(c, "a")] }, upsert: { [c]: [make[c]("a", "2")] } }, want: [make[c]("a", "2")] },
      ];
      for (const row of table) {
        test(row.name, () => {
          const held = base(1);
          const before = dump(held);
          const s = applied(decideFrame(held, delta(1, 2, row.d)));
          expect(s.version).toBe(2);
          expect(s.view.model[c] ?? []).toEqual(row.want);
          expect([...s.resources[c].values()]).toEqual(row.want);
          // Collections the delta does not mention are kept as they were, and what was held is not touched.
          for (const o of others) expect(s.view.model[o]).toEqual([make[o]("a", "1")]);
          expect(dump(held)).toEqual(before);
        });
      }
    });
  }

  test("meshConfig and trust bundle: kept when the delta leaves them out, replaced when it carries them", () => {
    const held = base(1);
    const kept = applied(decideFrame(held, delta(1, 2, {})));
    expect(kept.meshConfig).toEqual(DEFAULT_MESH_CONFIG);
    expect(kept.view.trustBundlePem).toBe("ROOT-A");
    const meshConfig = { ...DEFAULT_MESH_CONFIG, outboundPolicy: "deny" as const };
    const changed = applied(decideFrame(kept, delta(2, 3, { meshConfig, trustBundlePem: "ROOT-A\nROOT-B" })));
    expect(changed.view.model.meshConfig).toEqual(meshConfig);
    expect(changed.view.trustBundlePem).toBe("ROOT-A\nROOT-B");
  });
});

describe("decideFrame: version ordering", () => {
  test("deltas chain on the version held; each applies in turn", () => {
    let s = base(1);
    s = applied(decideFrame(s, delta(1, 2, { upsert: { workloads: [make.workloads("b", "1")] } })));
    s = applied(decideFrame(s, delta(2, 5, { remove: { workloads: [key("workloads", "a")] } })));
    expect(s.version).toBe(5);
    expect(s.view.model.workloads).toEqual([make.workloads("b", "1")]);
  });

  const table: { name: string; held: () => ProxyState | undefined; frame: string; reason: RegExp }[] = [
    { name: "a delta with nothing held", held: () => undefined, frame: delta(1, 2, {}), reason: /based on version 1, this proxy holds nothing/ },
    { name: "a delta on an older version (replayed)", held: () => base(3), frame: delta(2, 4, {}), reason: /based on version 2, this proxy holds 3/ },
    { name: "a delta on a newer version (one was missed)", held: () => base(3), frame: delta(4, 5, {}), reason: /based on version 4, this proxy holds 3/ },
    { name: "a delta from another control-plane instance", held: () => base(3), frame: delta(3, 4, { epoch: "e2" }), reason: /based on version 3, this proxy holds 3/ },
  ];
  for (const row of table) {
    test(`${row.name}: ask for a snapshot, hold on to what is held`, () => {
      const held = row.held();
      const before = held && dump(held);
      const d = decideFrame(held, row.frame);
      expect(d.kind).toBe("resync");
      if (d.kind === "resync") expect(d.reason).toMatch(row.reason);
      if (held) expect(dump(held)).toEqual(before);
    });
  }
});

describe("decideFrame: refused frames leave the previous state", () => {
  const reject: Validate = (view) => (view.model.workloads.some((w) => w.name === "evil") ? "workload evil refused" : undefined);
  const thrower: Validate = () => {
    throw new Error("boom");
  };
  const table: { name: string; frame: string; validate?: Validate; want: FrameDecision }[] = [
    {
      name: "a delta whose resource does not parse is NACKed by version",
      frame: delta(1, 2, { upsert: { workloads: [{ ...make.workloads("b", "1"), kind: "Deployment" } as never] } }),
      want: { kind: "nack", version: 2, reason: expect.stringMatching(/^invalid delta: upsert\.workloads\.0\.kind: /) as never },
    },
    {
      name: "a snapshot that does not parse is NACKed by version",
      frame: snapshot(2, { namespaces: [{ name: "x" } as never] }),
      want: { kind: "nack", version: 2, reason: expect.stringMatching(/^invalid snapshot: resources\.namespaces\.0\./) as never },
    },
    {
      name: "a delta without a usable version cannot be NACKed: resync",
      frame: JSON.stringify({ type: "delta", version: -1, base: 1, epoch: "e1", upsert: {}, remove: {} }),
      want: { kind: "resync", reason: expect.stringMatching(/^invalid delta: version: /) as never },
    },
    {
      name: "a delta the proxy's check refuses is NACKed with its reason",
      frame: delta(1, 2, { upsert: { workloads: [make.workloads("evil", "1")] } }),
      validate: reject,
      want: { kind: "nack", version: 2, reason: "workload evil refused" },
    },
    {
      name: "a check that throws refuses",
      frame: delta(1, 2, {}),
      validate: thrower,
      want: { kind: "nack", version: 2, reason: "validation failed: boom" },
    },
    { name: "an unparsable frame", frame: "{not json", want: { kind: "resync", reason: "unparsable frame" } },
    { name: "an unknown frame type", frame: JSON.stringify({ type: "gossip", version: 2 }), want: { kind: "resync", reason: 'unknown frame type "gossip"' } },
    {
      name: "the control plane refusing this proxy",
      frame: JSON.stringify({ type: "error", code: "MESH_TOKEN_INVALID", message: "unknown node" }),
      want: { kind: "error", code: "MESH_TOKEN_INVALID", message: "unknown node" },
    },
  ];
  for (const row of table) {
    test(row.name, () => {
      const held = base(1);
      const before = dump(held);
      expect(decideFrame(held, row.frame, row.validate)).toEqual(row.want);
      expect(dump(held)).toEqual(before);
      // The next good delta still applies on top of the version held before the refusal.
      const next = applied(decideFrame(held, delta(1, 3, { upsert: { workloads: [make.workloads("b", "1")] } }), row.validate === thrower ? undefined : row.validate));
      expect(next.view.model.workloads.map((w) => w.name)).toEqual(["a", "b"]);
    });
  }

  test("the check sees the merged view and its version", () => {
    const seen: [string[], number][] = [];
    applied(decideFrame(base(1), delta(1, 2, { upsert: { workloads: [make.workloads("b", "1")] } }), (view, version) => {
      seen.push([view.model.workloads.map((w) => w.name), version]);
      return undefined;
    }));
    expect(seen).toEqual([[["a", "b"], 2]]);
  });
});

describe("refusal", () => {
  const table: [unknown, FrameDecision["kind"]][] = [[0, "nack"], [3, "nack"], [-1, "resync"], [1.5, "resync"], ["3", "resync"], [undefined, "resync"]];
  for (const [version, kind] of table) {
    test(`version ${JSON.stringify(version)}: ${kind}`, () => expect(refusal(version, "why").kind).toBe(kind));
  }
});
