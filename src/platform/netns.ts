/**
 * Network namespaces and the links between them, through iproute2. Used by `mesh lab` to build its
 * topology and by tests that need real iptables without touching the host's own namespace. Every
 * function takes explicit names: nothing here picks or guesses a name, so callers keep them unique.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";
import { runChecked, runCommand } from "./exec.ts";

/** Linux limits interface names to 15 bytes (IFNAMSIZ - 1). */
export const MAX_LINK_NAME = 15;

/** Names of the existing named network namespaces (those under /run/netns). */
export function listNetns(): string[] {
  const r = runCommand(["ip", "-json", "netns", "list"]);
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

export function netnsExists(name: string): boolean {
  return listNetns().includes(name);
}

/** Creates a namespace with its loopback up. Fails if it already exists. */
export function createNetns(name: string): void {
  runChecked(["ip", "netns", "add", name]);
  runChecked(["ip", "-n", name, "link", "set", "lo", "up"]);
}

/** Deletes a namespace if present; returns whether it existed. Links inside it go with it. */
export function deleteNetns(name: string): boolean {
  if (!netnsExists(name)) return false;
  runChecked(["ip", "netns", "delete", name]);
  return true;
}

/** argv that runs `argv` inside namespace `ns` (the host namespace when ns is undefined). */
export function inNetns(ns: string | undefined, argv: string[]): string[] {
  return ns ? ["ip", "netns", "exec", ns, ...argv] : argv;
}

/** Runs a command inside a namespace and returns its stdout; throws on a non-zero exit. */
export function execInNetns(ns: string, argv: string[], options: { input?: string; timeoutMs?: number } = {}): string {
  return runChecked(inNetns(ns, argv), options);
}

/** `ip ...` run inside a namespace (`ip -n NS ...`). */
export function ipIn(ns: string | undefined, args: string[]): string {
  return runChecked(ns ? ["ip", "-n", ns, ...args] : ["ip", ...args]);
}

export interface VethEnd {
  /** link name, at most 15 bytes */
  name: string;
  /** namespace to move this end into (undefined: stay in the caller's namespace) */
  netns?: string;
  /** "ADDR/PREFIX" to assign */
  address?: string;
}

/** Creates a veth pair, moves each end into its namespace, assigns addresses and brings both up. */
export function createVeth(a: VethEnd, b: VethEnd): void {
  for (const end of [a, b]) {
    if (end.name.length > MAX_LINK_NAME) {
      throw new MeshError(ErrorCode.Platform, `Link name "${end.name}" is longer than ${MAX_LINK_NAME} bytes`);
    }
  }
  // Create both ends directly in their namespaces, so a crash never leaves a link in the host namespace.
  const where = (e: VethEnd) => (e.netns ? ["netns", e.netns] : []);
  runChecked(["ip", "link", "add", a.name, ...where(a), "type", "veth", "peer", "name", b.name, ...where(b)]);
  for (const end of [a, b]) {
    if (end.address) ipIn(end.netns, ["addr", "add", end.address, "dev", end.name]);
    ipIn(end.netns, ["link", "set", end.name, "up"]);
  }
}

/** Deletes a link (and so its veth peer) if it exists. Returns whether it existed. */
export function deleteLink(name: string, netns?: string): boolean {
  const r = runCommand(netns ? ["ip", "-n", netns, "link", "del", name] : ["ip", "link", "del", name]);
  return r.code === 0;
}

/** Names of the links in a namespace (the host's when undefined). */
export function listLinks(netns?: string): string[] {
  const r = runCommand(netns ? ["ip", "-n", netns, "-json", "link", "show"] : ["ip", "-json", "link", "show"]);
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

/** Adds a route in a namespace, e.g. addRoute(ns, "10.244.1.10/32", { dev: "veth0" }). */
export function addRoute(netns: string, destination: string, via: { gateway?: string; dev?: string; onlink?: boolean }): void {
  const args = ["route", "add", destination];
  if (via.gateway) args.push("via", via.gateway);
  if (via.dev) args.push("dev", via.dev);
  if (via.onlink) args.push("onlink");
  ipIn(netns, args);
}

/** Sets a sysctl inside a namespace (net.* sysctls are per namespace). */
export function setSysctl(netns: string, key: string, value: string): void {
  execInNetns(netns, ["sysctl", "-q", "-w", `${key}=${value}`]);
}
