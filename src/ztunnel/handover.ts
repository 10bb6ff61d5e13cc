/**
 * Lossless hand-over between an old and a new ztunnel during an overlapping restart. Both listen on the
 * same ports with SO_REUSEPORT; the kernel spreads new connections over both. When the old one closes its
 * listeners, the connections still queued on them (handshake done or in progress, not yet accepted) would
 * be reset. With `net.ipv4.tcp_migrate_req=1` (Linux 5.14+, per network namespace) the kernel moves them
 * to another listener of the same group instead: nothing queued is lost.
 *
 * The ztunnel sets it in its own network namespace (the node's, or the VM's) at start. Where /proc/sys is
 * read-only (a container runtime, systemd's ProtectKernelTunables) it says how to set it instead.
 */
import { readFileSync, writeFileSync } from "node:fs";

const SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req";

export interface ListenerMigration {
  enabled: boolean;
  /** Why it could not be enabled. */
  error?: string;
}

/** Turns on request migration between SO_REUSEPORT listeners in this network namespace. */
export function enableListenerMigration(path = SYSCTL): ListenerMigration {
  try {
    if (readFileSync(path, "utf8").trim() === "1") return { enabled: true };
  } catch (e) {
    return { enabled: false, error: `${path} cannot be read (Linux 5.14 or later has it): ${(e as Error).message}` };
  }
  try {
    writeFileSync(path, "1");
    return { enabled: true };
  } catch (e) {
    return {
      enabled: false,
      error: `${path} cannot be written (${
        (e as NodeJS.ErrnoException).code ?? (e as Error).message
      }): set net.ipv4.tcp_migrate_req=1 on the node (sysctl), or an overlapping restart may reset connections queued on the old process`,
    };
  }
}
