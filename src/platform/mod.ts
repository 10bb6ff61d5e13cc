/**
 * The operating system, reached from one place: network namespaces and veth links (iproute2), short
 * system commands, process identity (PID plus start time, so a recorded PID is never confused with a
 * reused one), and libc calls through bun:ffi (SO_ORIGINAL_DST). Roles and the lab import from here.
 */
export { type CommandResult, runChecked, runCommand } from "./exec.ts";
export {
  type DetachedOptions,
  isRunning,
  killNetnsProcesses,
  netnsOfProcess,
  pidsInNetns,
  type ProcessIdentity,
  processStartTime,
  spawnDetached,
  stopProcess,
} from "./process.ts";
export {
  addRoute,
  createNetns,
  createVeth,
  deleteLink,
  deleteNetns,
  execInNetns,
  inNetns,
  ipIn,
  listLinks,
  listNetns,
  MAX_LINK_NAME,
  netnsExists,
  setSysctl,
  type VethEnd,
} from "./netns.ts";
export { getOriginalDestination, type OriginalDestination } from "./original_dst.ts";
export { configFilePaths, readConfigFiles } from "./config_files.ts";
export { readText } from "./files.ts";
export { type ServerCertificate, writeServerCertificates } from "./certs.ts";
