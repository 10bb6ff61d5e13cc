/**
 * The lab: a multi-node mesh on one Linux machine, in network namespaces (see README.md here for the
 * topology). `mesh lab`, the end-to-end tests, the benchmarks and `npm run demo` all go through it.
 */
export { execCommand, type ExecOptions, labExec, resolveTarget } from "./exec.ts";
export { type Httpbin, type HttpbinOptions, handleHttpbin, startHttpbin } from "./httpbin.ts";
export {
  type ApplyOptions,
  type DownOptions,
  type DownReport,
  labApply,
  labDown,
  type LabLocation,
  labUp,
  requireLab,
  resolveStateDir,
  type UpOptions,
} from "./lifecycle.ts";
export { defaultStateDir, labNames, type LabNames } from "./names.ts";
export { ADDRESSES, hostsFile, type LabPlan, type LabPod, type LabService, type LabWaypoint, planFromYaml } from "./plan.ts";
export { type Progress } from "./reconcile.ts";
export { type LabState, loadState } from "./state.ts";
export { formatStatus, type LabStatus, type LabStatusEntry, labStatus } from "./status.ts";
export { REFUSED, egressConfig, l4OnlyConfig, missingRoles, runDemo } from "./demo.ts";
export { DEFAULT_UI_LISTEN, labUiUrl, runUiRelay } from "./ui_relay.ts";
