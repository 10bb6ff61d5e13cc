/**
 * A mesh of 10 000 workloads (the control-plane benchmark's shape): the model is right, and building it
 * does work proportional to what the selectors select, not Services x workloads or policies x workloads.
 * The guard counts selector evaluations instead of timing anything, so the machine's load cannot make it
 * pass or fail. Objects are built as values (no YAML) to keep the test fast; positions are synthetic.
 */
import { describe, expect, test } from "bun:test";
import { labelsMatch } from "../model/mod.ts";
import type { Workload } from "../model/mod.ts";
import { selectorEvaluations } from "./label_index.ts";
import { buildModel } from "./mod.ts";
import type { ParsedFile, SourceObject } from "./mod.ts";

const PODS_PER_NS = 100;
const NODES = 500;

/** One namespace file of the benchmark: 100 Pods, 10 Services, one namespace policy, 3 selector policies. */
function namespaceObjects(ns: number, marker = ""): unknown[] {
  const name = `ns-${String(ns).padStart(3, "0")}`;
  const out: unknown[] = [{ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "istio.io/dataplane-mode": "ambient" } } }];
  for (let p = 0; p < PODS_PER_NS; p++) {
    const i = ns * PODS_PER_NS + p;
    const labels: Record<string, string> = { app: `app-${p % 10}`, tier: `t${p % 3}` };
    if (marker && p === 0) labels["bench-round"] = marker;
    out.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `pod-${p}`, namespace: name, labels },
      spec: { nodeName: `node-${i % NODES}`, serviceAccountName: `sa-${p % 10}`, containers: [{ name: "c", ports: [{ containerPort: 8080 }] }] },
      status: { podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
    });
  }
  for (let s = 0; s < 10; s++) {
    out.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `svc-${s}`, namespace: name },
      spec: { clusterIP: `10.96.${ns}.${s + 1}`, selector: { app: `app-${s}` }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
  }
  out.push({
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name: "ns-allow", namespace: name },
    spec: { action: "ALLOW", rules: [{ from: [{ source: { namespaces: [name] } }] }] },
  });
  for (let t = 0; t < 3; t++) {
    out.push({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: `deny-t${t}`, namespace: name },
      spec: { selector: { matchLabels: { tier: `t${t}` } }, action: "DENY", rules: [{ to: [{ operation: { ports: [`9${t}00`] } }] }] },
    });
  }
  return out;
}

/** What parseFile would give for a file of these objects, positions being the document's index. */
function parsedFile(file: string, values: unknown[]): ParsedFile {
  const objects: SourceObject[] = values.map((value, doc) => ({ file, doc, value, locate: () => ({ line: doc + 1, col: 1 }) }));
  return { file, objects, diagnostics: [] };
}

function mesh(namespaces: number): ParsedFile[] {
  return Array.from({ length: namespaces }, (_, ns) => parsedFile(`ns-${ns}.yaml`, namespaceObjects(ns)));
}

/** Plus: a root-namespace L7 policy (reaches every workload, none has a waypoint), a Service selecting nothing. */
function extras(): ParsedFile {
  return parsedFile("extras.yaml", [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
    {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "get-only", namespace: "istio-system" },
      spec: { action: "ALLOW", rules: [{ to: [{ operation: { methods: ["GET"] } }] }] },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "orphan", namespace: "ns-007" },
      spec: { selector: { app: "app-1", tier: "t9" }, ports: [{ port: 80 }] },
    },
  ]);
}

function counted<T>(f: () => T): { result: T; evaluations: number } {
  const before = selectorEvaluations.count;
  const result = f();
  return { result, evaluations: selectorEvaluations.count - before };
}

describe("a mesh of 10 000 workloads", () => {
  const files = [...mesh(100), extras()];
  const { result: built, evaluations } = counted(() => buildModel(files));
  const { model, diagnostics } = built;

  test("every workload, Service and policy is in the model", () => {
    expect(model.workloads.length).toBe(10_000);
    expect(model.services.length).toBe(1001);
    expect(model.authorizationPolicies.length).toBe(401);
    expect(new Set(model.workloads.map((w) => w.uid)).size).toBe(10_000);
    expect(model.workloads.every((w) => w.ambient && w.addresses.length === 1)).toBe(true);
  });

  test("endpoints are exactly what a scan of every workload finds, in workload order", () => {
    for (const s of model.services) {
      const expected = s.selector
        ? model.workloads.filter((w: Workload) => w.namespace === s.namespace && labelsMatch(s.selector!, w.labels)).map((w) => w.uid)
        : [];
      expect(s.endpoints.map((e) => e.workloadUid)).toEqual(expected);
    }
    const svc = model.services.find((s) => s.namespace === "ns-042" && s.name === "svc-3")!;
    expect(svc.endpoints).toHaveLength(10);
    expect(svc.endpoints[0]).toEqual({ workloadUid: "Pod/ns-042/pod-3", ports: { 80: 8080 } });
    expect(svc.endpoints[9]).toEqual({ workloadUid: "Pod/ns-042/pod-93", ports: { 80: 8080 } });
  });

  test("diagnostics name the whole mesh and the one empty Service", () => {
    expect(diagnostics.map((d) => `${d.file}:${d.line} ${d.rule}`)).toEqual([
      "extras.yaml:2 l7-without-waypoint",
      "extras.yaml:3 service-selects-nothing",
    ]);
    // The root policy reaches all 10 000 workloads: 3 named, the rest counted.
    expect(diagnostics[0]!.message).toContain("Pod ns-000/pod-0, Pod ns-000/pod-1, Pod ns-000/pod-2 and 9997 more");
    expect(diagnostics[1]!.message).toContain("Service ns-007/orphan selects no Pod or WorkloadEntry (selector app=app-1,tier=t9)");
  });

  test("selector evaluations grow with the mesh, not with Services x workloads", () => {
    // Services x workloads alone would be 10 million; policies x workloads 4 million. Today each workload
    // is tested 6 times: by its Service (normalize, then lint), its tier policy (index, then attachment),
    // the root policy, and the Services of the workloads that policy reaches.
    expect(evaluations).toBeGreaterThan(0);
    expect(evaluations).toBeLessThanOrEqual(10 * model.workloads.length);
    const small = counted(() => buildModel([...mesh(20), extras()]));
    expect(small.result.model.workloads.length).toBe(2000);
    expect(small.evaluations).toBeLessThanOrEqual(10 * 2000);
    // Five times the mesh, about five times the work (linear), not twenty-five.
    expect(evaluations / small.evaluations).toBeLessThan(5.5);
  });

  test("a rebuild after one file changed equals a build from scratch", () => {
    const changed = [...files];
    changed[37] = parsedFile("ns-37.yaml", namespaceObjects(37, "r1"));
    const again = buildModel(changed);
    const fresh = buildModel([...mesh(100).map((f, i) => (i === 37 ? parsedFile("ns-37.yaml", namespaceObjects(37, "r1")) : f)), extras()]);
    expect(JSON.stringify(again)).toBe(JSON.stringify(fresh));
    expect(again.model.workloads.find((w) => w.uid === "Pod/ns-037/pod-0")!.labels["bench-round"]).toBe("r1");
    // The unchanged files built the same as the first time.
    expect(JSON.stringify(buildModel(files))).toBe(JSON.stringify(built));
  });
});
