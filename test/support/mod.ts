/**
 * Test support shared by the tests of every folder (tests import it from anywhere; it may import roles,
 * so a role's test reaches another role only through here):
 * - roles: a control role and a ztunnel or waypoint started in this process;
 * - wait: waitFor, the one way to poll for a condition;
 * - lab, ztunnel_lab: dist/mesh, the lab and what it leaves on the machine, for the end-to-end tests;
 * - model: a mesh as model objects or as YAML documents;
 * - k8s: the manifests of k8s/ and their RBAC;
 * - flows: flow records as the proxies report them.
 */
export { bootstrapToken, replaceFile, startInProcessMesh, startTestControl } from "./roles.ts";
export type { InProcessMesh, InProcessMeshOptions, ProxySpec, TestControl, TestControlOptions } from "./roles.ts";
export { waitFor, waitForPort } from "./wait.ts";
export type { WaitOptions } from "./wait.ts";
export { fixedPort } from "../../src/platform/_test_ports.ts";
export * from "./lab.ts";
export * from "./ztunnel_lab.ts";
export * from "./k8s.ts";
export { flowRecord } from "./flows.ts";
export {
  destinationRuleYaml,
  meshConfigYaml,
  meshModel,
  namespaceYaml,
  podYaml,
  service,
  serviceAccountYaml,
  serviceEntry,
  serviceEntryPolicyYaml,
  serviceEntryRouteYaml,
  serviceEntryYaml,
  serviceYaml,
  waypoint,
  waypointYaml,
  workload,
  yamlFile,
} from "./model.ts";
export type { DestinationRuleYaml, PodYaml, ServiceEntryYaml, ServiceYaml, WaypointYaml } from "./model.ts";
