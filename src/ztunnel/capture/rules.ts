/**
 * The capture rule sets, as pure data: which TCP the kernel hands to the ztunnel's listeners
 * (docs/design.md "Capture"). Nothing here runs a command; ./iptables.ts applies what this builds.
 *
 * Every rule lives in chains this mesh owns (MESH-*), reached by one jump from the built-in nat chains,
 * so installing, refilling and removing them never touches anyone else's rules. The rules are written
 * in the exact form `iptables -S` prints them back, so verification is a plain comparison.
 */

/** Chains the ztunnel owns, all in the nat table. */
export const CHAINS = {
  prerouting: "MESH-PREROUTING",
  output: "MESH-OUTPUT",
} as const;

/** Every chain name `mesh iptables cleanup` may remove (it removes only these). */
export const OWNED_CHAINS: readonly string[] = [CHAINS.prerouting, CHAINS.output];

export const JUMP_COMMENT = "mesh ztunnel capture";

export interface CapturePorts {
  outbound: number; // 15001
  inboundPlaintext: number; // 15006
  hbone: number; // 15008
  /** The DNS proxy (15053); absent: DNS is not captured. */
  dns?: number;
}

export const DEFAULT_CAPTURE_PORTS: CapturePorts = { outbound: 15001, inboundPlaintext: 15006, hbone: 15008 };
export const DNS_PROXY_PORT = 15053;

/** A workload whose traffic is captured on this node or host. */
export interface CapturedWorkload {
  address: string;
  /** host mode: the workload ports inbound capture applies to; empty = every TCP port but the mesh's own. */
  ports: number[];
  /** node mode: its DNS (UDP and TCP to port 53) goes to the DNS proxy (unless it opted out). */
  dns?: boolean;
}

export interface NodeCaptureSpec {
  mode: "node";
  ports: CapturePorts;
  /** This node's pods in ambient namespaces. */
  workloads: CapturedWorkload[];
}

export interface HostCaptureSpec {
  mode: "host";
  ports: CapturePorts;
  /** The WorkloadEntries at this host's addresses. */
  workloads: CapturedWorkload[];
  /**
   * Sockets owned by this group are the ztunnel's own and are never captured. A dedicated group (the
   * ztunnel switches its effective gid to it) rather than a uid, because on a VM the workloads often run
   * as root too, and an owner match on uid 0 would let their traffic escape in plaintext.
   */
  exemptGid: number;
  /** Optional extra exemption by uid (a ztunnel running under its own user). */
  exemptUid?: number;
}

export type CaptureSpec = NodeCaptureSpec | HostCaptureSpec;

/** A jump from a built-in chain into one of ours. */
export interface Jump {
  table: "nat";
  from: "PREROUTING" | "OUTPUT";
  to: string;
}

/** What to install for one address family. */
export interface RuleSet {
  family: 4 | 6;
  /** chain name -> rules, each in `iptables -S` form ("-A CHAIN ...") */
  chains: Record<string, string[]>;
  jumps: Jump[];
}

/** Ports the mesh itself listens on: never redirected to 15006 on a host (admin, metrics, readiness, HBONE). */
export const MESH_OWN_PORTS = [15000, 15001, 15006, 15008, 15020, 15021];

const MULTIPORT_MAX = 15;

function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

function hostPrefix(address: string): string {
  return `${address}/${familyOf(address) === 6 ? 128 : 32}`;
}

function chunk<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function uniqueSorted(ports: number[]): number[] {
  return [...new Set(ports)].filter((p) => Number.isInteger(p) && p > 0 && p < 65536).sort((a, b) => a - b);
}

function uniqueAddresses(workloads: CapturedWorkload[], family: 4 | 6): CapturedWorkload[] {
  const byAddr = new Map<string, { ports: Set<number>; dns: boolean }>();
  for (const w of workloads) {
    if (familyOf(w.address) !== family) continue;
    const a = byAddr.get(w.address) ?? { ports: new Set<number>(), dns: false };
    for (const p of w.ports) a.ports.add(p);
    if (w.dns) a.dns = true;
    byAddr.set(w.address, a);
  }
  return [...byAddr.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([address, a]) => (a.dns ? { address, ports: uniqueSorted([...a.ports]), dns: true } : { address, ports: uniqueSorted([...a.ports]) }));
}

/**
 * Node mode (a Kubernetes node or a lab node; the ztunnel runs in the node's namespace and pods are
 * routed through it, so every pod packet crosses nat PREROUTING here):
 * - DNS from a captured pod (UDP and TCP to port 53) goes to the DNS proxy, when the ztunnel runs one
 *   and the pod did not opt out. Matched before the outbound rule, which would take its TCP.
 * - TCP from a captured pod, to anywhere, goes to the outbound listener. Matched first, so pod-to-pod
 *   traffic on one node is outbound traffic of its source.
 * - TCP to a captured pod on the HBONE port goes to the ztunnel's HBONE listener (its port is kept, so the
 *   original destination still names the pod).
 * - Any other TCP to a captured pod goes to the plaintext inbound listener.
 * The ztunnel's own connections start in this namespace and take the OUTPUT path, which has no rules:
 * they are never captured, with no mark or owner match needed.
 */
function nodeRules(spec: NodeCaptureSpec, family: 4 | 6): RuleSet {
  const p = spec.ports;
  const pre: string[] = [];
  const workloads = uniqueAddresses(spec.workloads, family);
  for (const w of workloads) {
    if (!w.dns || p.dns === undefined) continue;
    for (const proto of ["udp", "tcp"]) {
      pre.push(`-A ${CHAINS.prerouting} -s ${hostPrefix(w.address)} -p ${proto} -m ${proto} --dport 53 -j REDIRECT --to-ports ${p.dns}`);
    }
  }
  for (const w of workloads) {
    pre.push(`-A ${CHAINS.prerouting} -s ${hostPrefix(w.address)} -p tcp -j REDIRECT --to-ports ${p.outbound}`);
  }
  for (const w of workloads) {
    const d = hostPrefix(w.address);
    pre.push(`-A ${CHAINS.prerouting} -d ${d} -p tcp -m tcp --dport ${p.hbone} -j REDIRECT --to-ports ${p.hbone}`);
    pre.push(`-A ${CHAINS.prerouting} -d ${d} -p tcp -j REDIRECT --to-ports ${p.inboundPlaintext}`);
  }
  return {
    family,
    chains: { [CHAINS.prerouting]: pre },
    jumps: [{ table: "nat", from: "PREROUTING", to: CHAINS.prerouting }],
  };
}

/**
 * Host mode (a VM; the workloads are local processes):
 * - Locally originated TCP goes to the outbound listener, except the ztunnel's own sockets (owner match)
 *   and loopback traffic, which is the host talking to itself.
 * - Inbound TCP to the workload ports of the local WorkloadEntries goes to the plaintext listener; HBONE
 *   (15008) reaches the ztunnel directly because it listens on that port itself.
 */
function hostRules(spec: HostCaptureSpec, family: 4 | 6): RuleSet {
  const p = spec.ports;
  const out: string[] = [];
  const loopback = family === 6 ? "::1/128" : "127.0.0.0/8";
  if (spec.exemptUid !== undefined) {
    out.push(`-A ${CHAINS.output} -p tcp -m owner --uid-owner ${spec.exemptUid} -j RETURN`);
  }
  out.push(`-A ${CHAINS.output} -p tcp -m owner --gid-owner ${spec.exemptGid} -j RETURN`);
  out.push(`-A ${CHAINS.output} -d ${loopback} -p tcp -j RETURN`);
  out.push(`-A ${CHAINS.output} -p tcp -j REDIRECT --to-ports ${p.outbound}`);

  const pre: string[] = [];
  const own = uniqueSorted([...MESH_OWN_PORTS, p.outbound, p.inboundPlaintext, p.hbone]);
  for (const w of uniqueAddresses(spec.workloads, family)) {
    const d = hostPrefix(w.address);
    const ports = w.ports.filter((x) => !own.includes(x));
    if (w.ports.length === 0) {
      // No declared ports: capture every TCP port but the mesh's own, so nothing reaches the workload
      // unchecked (a STRICT PeerAuthentication then refuses plaintext everywhere, as it should).
      for (const group of chunk(own, MULTIPORT_MAX)) {
        pre.push(`-A ${CHAINS.prerouting} -d ${d} -p tcp -m multiport --dports ${group.join(",")} -j RETURN`);
      }
      pre.push(`-A ${CHAINS.prerouting} -d ${d} -p tcp -j REDIRECT --to-ports ${p.inboundPlaintext}`);
      continue;
    }
    for (const group of chunk(ports, MULTIPORT_MAX)) {
      pre.push(
        `-A ${CHAINS.prerouting} -d ${d} -p tcp -m multiport --dports ${group.join(",")} -j REDIRECT --to-ports ${p.inboundPlaintext}`,
      );
    }
  }
  return {
    family,
    chains: { [CHAINS.output]: out, [CHAINS.prerouting]: pre },
    jumps: [
      { table: "nat", from: "OUTPUT", to: CHAINS.output },
      { table: "nat", from: "PREROUTING", to: CHAINS.prerouting },
    ],
  };
}

/** The rule sets for IPv4 and, when any captured workload has an IPv6 address, IPv6. */
export function captureRules(spec: CaptureSpec): RuleSet[] {
  const build = (f: 4 | 6) => spec.mode === "node" ? nodeRules(spec, f) : hostRules(spec, f);
  const sets = [build(4)];
  if (spec.workloads.some((w) => familyOf(w.address) === 6)) sets.push(build(6));
  return sets;
}

/**
 * iptables-restore input (used with --noflush) that creates our chains if missing and replaces their
 * contents atomically: declaring a chain in a restore flushes it, and with --noflush nothing else is
 * touched. The jumps are not in it, because a restore cannot say "add unless present".
 */
export function restoreInput(set: RuleSet): string {
  const lines = ["*nat"];
  for (const chain of Object.keys(set.chains)) lines.push(`:${chain} - [0:0]`);
  for (const rules of Object.values(set.chains)) lines.push(...rules);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** The jump rule's arguments after the chain name, e.g. for `-C PREROUTING ...` and `-D PREROUTING ...`. */
export function jumpArgs(jump: Jump): string[] {
  return ["-m", "comment", "--comment", JUMP_COMMENT, "-j", jump.to];
}
