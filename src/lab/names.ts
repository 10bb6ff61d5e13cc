/**
 * Every name the lab gives to something outside its own state directory. All of them start with the
 * lab's prefix, so two labs (or a lab and the machine's own namespaces) never share a name, and `down`
 * can tell what is its own. Link names live only inside the lab's namespaces (veths are created there
 * directly), so they need no prefix and stay under the kernel's 15-byte limit.
 */
import { ErrorCode, MeshError } from "../core/mod.ts";

/** What `--prefix` may be: short, lowercase, no dash (the dash ends the prefix in every name). */
const PREFIX_RE = /^[a-z0-9]{1,16}$/;

export interface LabNames {
  /** "mlab-" for the default lab, "mlab.<prefix>-" for `--prefix <prefix>` */
  prefix: string;
  /** "default" or the --prefix value: names the default state directory */
  id: string;
  fabric: string;
  control: string;
  node(name: string): string;
  /** Kubernetes namespaces have no dots, so "<namespace>.<pod>" cannot be read two ways. */
  pod(namespace: string, name: string): string;
  waypoint(namespace: string, name: string): string;
  /** an ExternalHost's namespace */
  external(name: string): string;
  /** the lab's DNS server's namespace */
  dns: string;
}

export function labNames(prefix?: string): LabNames {
  if (prefix !== undefined && !PREFIX_RE.test(prefix)) {
    throw new MeshError(ErrorCode.Usage, `Invalid --prefix "${prefix}": use 1 to 16 lowercase letters or digits`);
  }
  const p = prefix ? `mlab.${prefix}-` : "mlab-";
  return {
    prefix: p,
    id: prefix ?? "default",
    fabric: `${p}fabric`,
    control: `${p}control`,
    node: (name) => `${p}node-${name}`,
    pod: (namespace, name) => `${p}pod-${namespace}.${name}`,
    waypoint: (namespace, name) => `${p}wp-${namespace}.${name}`,
    external: (name) => `${p}ext-${name}`,
    dns: `${p}dns`,
  };
}

/** The default state directory of a lab: under /run, so a reboot (which drops every namespace) clears it. */
export function defaultStateDir(prefix?: string): string {
  return `/run/mesh-lab/${prefix ?? "default"}`;
}

/** Link names inside the lab's namespaces (each at most 15 bytes). */
export const LINK = {
  /** a pod's or waypoint's own interface */
  podSide: "eth0",
  /** a node's link to the fabric */
  nodeUplink: "fabric",
  /** node side of the k-th pod or waypoint link of that node */
  nodePodSide: (k: number) => `p${k}`,
  /** fabric side of the k-th node's link */
  fabricNodeSide: (k: number) => `n${k}`,
  /** fabric side of the control plane's link */
  fabricControlSide: "control",
  /** control plane's link to the fabric */
  controlUplink: "fabric",
  /** fabric side of an external host's link, named after its address (8 hex digits) */
  fabricExternalSide: (ip: string) => `x${ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("")}`,
  /** fabric side of the DNS server's link */
  fabricDnsSide: "dns",
} as const;
