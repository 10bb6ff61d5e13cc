/**
 * Troubleshooting answers computed from the configuration (and, when given, live facts of a running
 * mesh): `mesh describe` for a Pod, WorkloadEntry or Service, and the flags `mesh proxy-status` puts on
 * proxies. Pure: no I/O (the CLI gathers live facts and log lines and passes them in).
 */
export { DATAPLANE_LABEL, describe, type DescribeOptions, describeService, type DescribeTarget, describeWorkload, parseTarget } from "./describe.ts";
export { formatDescription, formatService, formatWorkload } from "./format.ts";
export { describeServiceEntry, formatServiceEntry, type ServiceEntryDescription } from "./service_entry.ts";
export { type AccessLogEntry, type LiveFacts, parseAccessLog, type ProxyFact, type ReadinessFact } from "./live.ts";
export { connectionsFor, type ConnectionFilter } from "./connections.ts";
export { relative } from "./facts.ts";
export type * from "./types.ts";
export {
  type ConfigDump,
  certRecords,
  formatLogLevels,
  formatProxyConfig,
  PROXY_CONFIG_KINDS,
  type ProxyConfig,
  proxyConfig,
  type ProxyConfigKind,
  proxyIdOfDump,
} from "./proxy_config.ts";
export {
  type ConfigDiagnostic,
  configErrors,
  expectedProxies,
  formatProxyStatus,
  type ProxyState,
  proxyStatus,
  type ProxyStatusOptions,
  type ProxyStatusReport,
  type ProxyStatusRow,
  type StatusInput,
} from "./proxy_status.ts";
