/**
 * Service port -> workload port, as Kubernetes defines it: targetPort is a number or the name of a
 * container port looked up on each endpoint (a missing one is filled in with the port by the loader);
 * Istio lets a WorkloadEntry's `ports` map, keyed by the Service port's name, override it.
 */
import { describe, expect, test } from "bun:test";
import { endpointPort, readyEndpoints, resolveTargetPort } from "./endpoints.ts";
import { indexModel } from "./index.ts";
import { workload as pod } from "../../test/support/mod.ts";
import { emptyModel, type Service, type ServicePort, type Workload } from "./types.ts";

/** A pod of namespace shop whose address differs per name length (enough for these tests). */
const workload = (name: string, over: Partial<Workload> = {}): Workload => pod(name, "shop", `10.244.0.${name.length}`, "node-a", over);

const port = (p: Partial<ServicePort> & { port: number }): ServicePort => ({ targetPort: p.port, protocol: "TCP", ...p });

function service(ports: ServicePort[], endpoints: Service["endpoints"]): Service {
  return { name: "api", namespace: "shop", hostname: "api.shop.svc.cluster.local", vip: "10.96.0.10", ports, endpoints, labels: {} };
}

describe("resolveTargetPort", () => {
  const pod = workload("pod", { ports: [{ name: "http", port: 8080 }, { name: "metrics", port: 9090 }] });
  const vm = workload("vm", { kind: "WorkloadEntry", uid: "WorkloadEntry/shop/vm", ports: [{ name: "web", port: 7000 }, { name: "http", port: 7001 }] });
  const cases: [string, ServicePort, Workload, number | undefined][] = [
    ["a numeric targetPort is the port on every workload", port({ port: 80, targetPort: 8081 }), pod, 8081],
    ["a targetPort equal to the port (what the loader fills in when it is missing)", port({ port: 80 }), pod, 80],
    ["a named targetPort is looked up among the workload's container ports", port({ port: 80, targetPort: "http" }), pod, 8080],
    ["a name the workload does not declare: no port", port({ port: 80, targetPort: "grpc" }), pod, undefined],
    ["a name on a workload declaring no ports: no port", port({ port: 80, targetPort: "http" }), workload("bare"), undefined],
    ["a WorkloadEntry's ports map, keyed by the service port's name, overrides a numeric targetPort", port({ name: "web", port: 80, targetPort: 8080 }), vm, 7000],
    ["... and a named one", port({ name: "web", port: 80, targetPort: "http" }), vm, 7000],
    ["a WorkloadEntry without that key: the targetPort name is looked up as on a Pod", port({ name: "other", port: 80, targetPort: "http" }), vm, 7001],
    ["a WorkloadEntry without that key: a numeric targetPort stands", port({ name: "other", port: 80, targetPort: 8080 }), vm, 8080],
    ["a Pod's port named like the service port does not override it", port({ name: "http", port: 80, targetPort: 81 }), pod, 81],
  ];
  for (const [name, sp, w, want] of cases) test(name, () => expect(resolveTargetPort(sp, w)).toBe(want));
});

describe("endpointPort", () => {
  const a = workload("a", { ports: [{ name: "http", port: 8080 }] });
  const b = workload("bb", { ports: [{ name: "http", port: 9090 }] });
  const svc = service([port({ port: 80, targetPort: "http" }), port({ port: 443, targetPort: 8443 })], [
    { workloadUid: a.uid, ports: { 80: 8000 } },
    { workloadUid: b.uid, ports: {} },
  ]);
  const cases: [string, number, Workload, number | undefined][] = [
    ["the endpoint's own map (resolved when the model was built) wins", 80, a, 8000],
    ["without an entry there, a named targetPort is resolved on the workload", 80, b, 9090],
    ["without an entry there, a numeric targetPort stands", 443, a, 8443],
    ["a port the Service does not have: none", 81, a, undefined],
    ["a workload that is not an endpoint is resolved all the same", 80, workload("ccc", { ports: [{ name: "http", port: 7070 }] }), 7070],
  ];
  for (const [name, servicePort, w, want] of cases) test(name, () => expect(endpointPort(svc, servicePort, w)).toBe(want));
});

describe("readyEndpoints: the endpoints both proxies (and explain) send a Service port's traffic to", () => {
  const ready = workload("ready", { ports: [{ name: "http", port: 8080 }] });
  const unready = workload("unready", { ports: [{ name: "http", port: 8080 }], ready: false });
  const noAddress = workload("noaddr", { ports: [{ name: "http", port: 8080 }], addresses: [] });
  const unnamed = workload("unnamed", { ports: [{ name: "grpc", port: 9000 }] });
  const other = workload("other", { ports: [{ name: "http", port: 8181 }], addresses: ["10.244.9.9", "fd00::9"] });
  const svc = service([port({ port: 80, targetPort: "http" })], [unready, noAddress, unnamed, ready, other, workload("gone")].map((w) => ({ workloadUid: w.uid, ports: {} })));
  const index = indexModel({ ...emptyModel(), workloads: [ready, unready, noAddress, unnamed, other], services: [svc] });

  test("ready, addressed, serving the port, in configuration order, at the first address", () => {
    expect(readyEndpoints(index, svc, 80).map((e) => [e.workload.name, e.ip, e.port])).toEqual([
      ["ready", ready.addresses[0], 8080],
      ["other", "10.244.9.9", 8181],
    ]);
  });
  test("a port the Service does not have has none", () => {
    expect(readyEndpoints(index, svc, 81)).toEqual([]);
  });
});
