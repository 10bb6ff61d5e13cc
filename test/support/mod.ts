/**
 * Test support shared by the tests of every folder (tests import it from anywhere; it may import roles,
 * so a role's test reaches another role only through here).
 */
export { startInProcessMesh } from "./roles.ts";
export type { InProcessMesh, InProcessMeshOptions, ProxySpec } from "./roles.ts";
export { waitFor } from "./wait.ts";
export type { WaitOptions } from "./wait.ts";
export { fixedPort } from "../../src/platform/_test_ports.ts";
