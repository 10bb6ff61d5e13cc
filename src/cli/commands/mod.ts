/** The subcommands of `mesh`, one file each. */
export { check } from "./check.ts";
export { describe } from "./describe.ts";
export { explain } from "./explain.ts";
export { httpbin } from "./httpbin.ts";
export { iptables } from "./iptables.ts";
export { lab } from "./lab.ts";
export { observe } from "./observe.ts";
export { proxyConfigCommand } from "./proxy_config.ts";
export { proxyStatusCommand } from "./proxy_status.ts";
export { run } from "./run.ts";
export { status } from "./status.ts";
export { token } from "./token.ts";
export { version } from "./version.ts";
