/**
 * One fixture per lint rule (testdata/rules/<rule>.yaml), with every diagnostic it must produce at its
 * exact line:col, and nothing else.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { blockingErrors, parseConfig, RULES } from "./mod.ts";
import type { Diagnostic } from "./mod.ts";

const dir = join(import.meta.dir, "testdata", "rules");

function check(name: string): Diagnostic[] {
  const path = join(dir, `${name}.yaml`);
  return parseConfig([{ path, text: readFileSync(path, "utf8") }]).diagnostics;
}

const brief = (ds: Diagnostic[]) => ds.map((d) => `${d.line}:${d.col} ${d.severity} ${d.rule}`);

/** fixture -> expected diagnostics ("line:col severity rule") and message fragments per diagnostic. */
const CASES: Record<string, { expect: string[]; says?: Record<number, string[]> }> = {
  "yaml-syntax": { expect: ["5:45 error yaml-syntax", "5:46 error yaml-syntax"], says: { 0: ["YAML syntax"] } },
  "invalid-object": { expect: ["1:1 error invalid-object"] },
  "unknown-kind": { expect: ["2:7 error unknown-kind"], says: { 0: ['did you mean "AuthorizationPolicy"?'] } },
  "unknown-field": {
    expect: ["16:9 error unknown-field"],
    says: { 0: ['"spec.rules[0].to[0].operation.method"', 'did you mean "methods"?'] },
  },
  "missing-field": { expect: ["4:3 error missing-field", "8:7 error missing-field"], says: { 0: ["metadata.name"], 1: ["apiVersion", "use v1"] } },
  "invalid-value": {
    expect: [
      "7:11 error invalid-value",
      "16:11 error invalid-value",
      "25:10 error invalid-value",
      "33:40 error invalid-value",
      "43:20 error invalid-value",
      "44:23 error invalid-value",
      "47:17 error invalid-value",
      "47:32 error invalid-value",
      "57:34 error invalid-value",
      "59:16 error invalid-value",
    ],
    says: {
      0: ['did you mean "ALLOW"?'],
      1: ["1 to 65535"],
      2: ["status.podIP", "IP address"],
      3: ['"waypoint.shop"'],
      4: ['"spec.rules[0].from[0].source.ipBlocks[0]"', '"10.1.0.0/160"', "CIDR block"],
      5: ["notIpBlocks[0]", '"10.1.0.0./16"'],
      6: ["operation.ports[0]", '"9000 "', "digits only"],
      7: ["ports[2]", "0 is not a port"],
      8: ["when[0].notValues[1]", '"10.4.0.0/33"', "condition source.ip"],
      9: ["when[1].values[0]", '"http"', "condition destination.port"],
    },
  },
  "api-version": { expect: ["1:13 error api-version"], says: { 0: ["security.istio.io/v1", '"networking.istio.io/v1"'] } },
  "duplicate-object": { expect: ["10:9 error duplicate-object"], says: { 0: ["ServiceAccount shop/api", "duplicate-object.yaml:1:1"] } },
  "ignored-kind": {
    expect: ["2:7 warning ignored-kind", "14:7 warning ignored-kind", "21:7 warning ignored-kind", "27:7 warning ignored-kind"],
    says: { 0: ["Deployment", "Pods", "WorkloadEntries"], 2: ["StatefulSet"], 3: ["ReplicaSet"] },
  },
  "unsupported-kind": { expect: ["2:7 warning unsupported-kind", "9:13 warning unsupported-kind"], says: { 1: ["istio-waypoint"] } },
  "service-selects-nothing": { expect: ["8:3 warning service-selects-nothing"], says: { 0: ["app=api"] } },
  "target-port": {
    expect: ["31:17 warning target-port", "33:11 warning target-port"],
    says: { 0: ['port named "admin"'], 1: ["port 9090", "http:8080"] },
  },
  "policy-selects-nothing": {
    expect: ["7:3 warning policy-selects-nothing", "21:5 warning policy-selects-nothing", "34:5 warning policy-selects-nothing"],
    says: { 0: ["app=nowhere"], 1: ["Service shop/missing"], 2: ["ServiceEntry shop/partner", "does not exist"] },
  },
  "l7-without-waypoint": {
    expect: ["40:9 error l7-without-waypoint", "55:7 error l7-without-waypoint"],
    says: {
      0: ["shop/get-only", "(methods)", "Pod shop/api", "deny every request", "istio.io/use-waypoint=", "Service shop/api"],
      1: ["request.headers[x-debug]", "Service shop/api"],
    },
  },
  "waypoint-class": {
    expect: ["7:21 error waypoint-class", "19:5 error waypoint-class"],
    says: { 0: ['"istio"', "istio-waypoint", "istio.io/use-waypoint"], 1: ["gateway.networking.k8s.io/gateway-class", "istio-waypoint"] },
  },
  "gateway-class": { expect: ["7:21 warning gateway-class"], says: { 0: ['"nginx"', "ignored"] } },
  "waypoint-listener": { expect: ["8:3 warning waypoint-listener"] },
  "policy-attachment": { expect: ["2:7 error policy-attachment"], says: { 0: ["istio.io/use-waypoint", "istio-waypoint"] } },
  "missing-waypoint": {
    expect: ["7:28 error missing-waypoint", "15:28 error missing-waypoint", "26:21 warning gateway-class", "35:28 error missing-waypoint"],
    says: { 0: ["Namespace shop", "not a waypoint"], 1: ["Service shop/api", "no Gateway shop/api-waypoint"], 3: ["ServiceEntry shop/partner", "no Gateway shop/egress"] },
  },
  "waypoint-for": { expect: ["16:35 warning waypoint-for"], says: { 0: ["workloads only"] } },
  "unknown-condition": { expect: ["10:12 warning unknown-condition"], says: { 0: ['"request.header[x-debug]"'] } },
  "jwt-no-jwks": { expect: ["8:5 error jwt-no-jwks"], says: { 0: ["neither jwks nor jwksUri"] } },
  "invalid-jwks": { expect: ["9:11 error invalid-jwks"] },
  "jwt-without-waypoint": { expect: ["17:3 warning jwt-without-waypoint"], says: { 0: ["Pod shop/api"] } },
  "selector-and-targetrefs": { expect: ["18:3 error selector-and-targetrefs", "19:5 error targetrefs-without-waypoint"] },
  "targetrefs-without-waypoint": {
    expect: ["29:5 error targetrefs-without-waypoint"],
    says: { 0: ["Service shop/api", "no waypoint serves", "deny every connection", "spec.selector"] },
  },
  "duplicate-address": { expect: ["15:17 error duplicate-address"], says: { 0: ["10.244.1.5", "Pod shop/a"] } },
  "waypoint-service-account": {
    expect: ["20:23 error waypoint-service-account", "29:19 error waypoint-service-account", "67:1 error waypoint-service-account"],
    says: {
      0: ["Pod shop/impostor", "service account shop/wp", "waypoint shop/wp", "no certificate"],
      1: ["WorkloadEntry shop/vm-1"],
      2: ["Pod other/no-account", "other/default"],
    },
  },
  "undeclared-namespace": { expect: ["5:14 warning undeclared-namespace"], says: { 0: ["Namespace legacy-ns", "istio.io/dataplane-mode: ambient"] } },
  "pod-placement": { expect: ["4:9 warning pod-placement", "6:1 warning pod-placement"], says: { 0: ["status.podIP"], 1: ["spec.nodeName"] } },
  "duplicate-host": {
    expect: ["17:32 error duplicate-host", "36:11 error duplicate-host"],
    says: { 0: ['"api.partner.example"', "ServiceEntry shop/partner"], 1: ["name of a Service"] },
  },
  "dns-wildcard": { expect: ["7:32 error dns-wildcard"], says: { 0: ['"*.partner.example"', "resolution NONE"] } },
  "serviceentry-ports": { expect: ["7:3 error serviceentry-ports"], says: { 0: ["ServiceEntry shop/partner", "no ports"] } },
  "unsupported-field": {
    expect: ["9:5 warning unsupported-field", "15:7 warning unsupported-field", "18:13 warning unsupported-field", "19:3 warning unsupported-field"],
    says: { 0: ["trafficPolicy.connectionPool"], 1: ["insecureSkipVerify"], 2: ["MUTUAL"], 3: ["subsets"] },
  },
  "route-parent": {
    expect: ["17:5 warning route-parent", "18:5 warning route-parent", "22:13 warning unsupported-filter"],
    says: { 0: ["no waypoint serves"], 1: ["shop/gone", "does not exist"], 2: ["CORS"] },
  },
};

describe("lint rules: one fixture each, exact positions", () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(name, () => {
      const ds = check(name);
      expect(brief(ds)).toEqual(c.expect);
      for (const [i, fragments] of Object.entries(c.says ?? {})) {
        for (const f of fragments) expect(ds[Number(i)]!.message).toContain(f);
      }
      for (const d of ds) expect(d.file).toBe(join(dir, `${name}.yaml`));
    });
  }

  test("a workload running as a waypoint's service account blocks the configuration (not enforced fail-closed elsewhere)", () => {
    expect(blockingErrors(check("waypoint-service-account")).map((d) => d.rule)).toEqual(Array(3).fill("waypoint-service-account"));
  });

  test("every rule id has a fixture that raises it, and every raised rule is documented", () => {
    const raised = new Set(Object.keys(CASES).flatMap((n) => check(n).map((d) => d.rule)));
    expect([...raised].filter((r) => !(r in RULES))).toEqual([]);
    expect(Object.keys(RULES).filter((r) => !raised.has(r))).toEqual([]);
    for (const n of Object.keys(CASES)) {
      for (const d of check(n)) expect(d.severity).toBe(RULES[d.rule]!.severity);
    }
  });
});
