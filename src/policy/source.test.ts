/**
 * Which client address a proxy believes for a tunnel: the Forwarded for= only from a waypoint at one of
 * its addresses, or for a workload whose identity the peer proved; else the peer's own address.
 */
import { describe, expect, test } from "bun:test";
import { emptyModel, indexModel, type Waypoint, type Workload } from "../model/mod.ts";
import { workload as pod } from "../../test/support/mod.ts";
import { peerWaypoint, trustedSource } from "./source.ts";

const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

const workload = (name: string, ip: string, sa = name): Workload => pod(name, "shop", ip, "node-a", { serviceAccount: sa });

const web = workload("web", "10.244.1.10");
const web2 = workload("web-2", "10.244.1.11", "web");
const db = workload("db", "10.244.2.20");
const waypoint: Waypoint = {
  name: "shop-waypoint",
  namespace: "shop",
  identity: id("shop-waypoint"),
  serviceAccount: "shop-waypoint",
  addresses: ["10.96.0.99"],
  podAddresses: ["10.244.3.30"],
  waypointFor: "service",
  port: 15008,
};
const index = indexModel({ ...emptyModel(), workloads: [web, web2, db], waypoints: [waypoint] });

const NODE = "10.0.0.1"; // a source ztunnel's address
const ELSEWHERE = "10.0.0.66";

describe("trustedSource", () => {
  const cases: [string, string | undefined, string, string | undefined, string, Workload | undefined][] = [
    // name, peer identity, peer ip, forwarded, believed ip, believed workload
    ["no Forwarded header: the peer's address", id("web"), NODE, undefined, NODE, undefined],
    ["no for= in it: the peer's address", id("web"), NODE, "host=api.shop.svc.cluster.local", NODE, undefined],
    ["no authenticated peer (plaintext): never believed", undefined, NODE, 'for="10.244.1.10"', NODE, undefined],
    ["a workload with the peer's identity: believed, with its workload", id("web"), NODE, 'for="10.244.1.10:40000"', "10.244.1.10", web],
    ["another workload of the same identity: believed", id("web"), NODE, 'for=10.244.1.11', "10.244.1.11", web2],
    ["a workload of another identity: not believed", id("web"), NODE, 'for="10.244.2.20"', NODE, undefined],
    ["an address no workload has: not believed", id("web"), NODE, 'for="10.244.9.9"', NODE, undefined],
    ["the peer names its own address: that address", id("web"), "10.244.1.10", 'for="10.244.1.10"', "10.244.1.10", web],
    ["a waypoint from its address: believed (it speaks for clients of any identity)", id("shop-waypoint"), "10.96.0.99", 'for="10.244.2.20:5000"', "10.244.2.20", undefined],
    ["a waypoint from one of its pods: believed", id("shop-waypoint"), "10.244.3.30", 'for="10.244.9.9"', "10.244.9.9", undefined],
    ["a waypoint's identity from elsewhere: not the waypoint, not believed", id("shop-waypoint"), ELSEWHERE, 'for="10.244.2.20"', ELSEWHERE, undefined],
  ];
  for (const [name, peerIdentity, peerIp, forwarded, ip, workload] of cases) {
    test(name, () => expect(trustedSource(index, peerIdentity, peerIp, forwarded)).toEqual(workload ? { ip, workload } : { ip }));
  }
});

describe("peerWaypoint", () => {
  test("the waypoint whose identity the peer holds, and whether it is at one of its addresses", () => {
    expect(peerWaypoint(index, id("shop-waypoint"), "10.96.0.99")).toEqual({ waypoint, atItsAddress: true });
    expect(peerWaypoint(index, id("shop-waypoint"), "10.244.3.30")).toEqual({ waypoint, atItsAddress: true });
    expect(peerWaypoint(index, id("shop-waypoint"), ELSEWHERE)).toEqual({ waypoint, atItsAddress: false });
    expect(peerWaypoint(index, id("web"), NODE)).toBeUndefined();
    expect(peerWaypoint(index, undefined, NODE)).toBeUndefined();
  });
});
