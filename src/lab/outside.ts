/**
 * The lab's world outside the cluster: ExternalHosts (a namespace each, on the fabric, running their
 * command) and, when there is any, a real DNS server that knows their names (dnsmasq from Debian, in its
 * own namespace at 10.99.0.3). Pods and nodes then use it as their resolver, so a pod's DNS crosses its
 * node like any packet and the ztunnel's DNS proxy sees it; the ztunnel forwards what is not the mesh's
 * to the same server.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError } from "../core/mod.ts";
import { inNetns, runCommand } from "../platform/mod.ts";
import { isAlive, startExternal, stopRecorded, waitReady } from "./components.ts";
import { LINK, labNames } from "./names.ts";
import { ADDRESSES, type LabExternalHost, type LabPlan } from "./plan.ts";
import { type LabState, type ProcessRecord, saveState } from "./state.ts";
import { createOutsideEndpoint, removeEndpoint } from "./topology.ts";

/** Not a Kubernetes name (those never start with a dot): no ExternalHost can take it. */
const DNS_KEY = "external/.dns";
const externalKey = (name: string) => `external/${name}`;

/** The resolver pods and nodes use: the lab's DNS server when there is one. */
export function labNameserver(plan: LabPlan): string | undefined {
  return plan.externalHosts?.length ? ADDRESSES.dns : undefined;
}

function dnsHostsFile(state: LabState): string {
  return join(state.stateDir, "dns", "hosts");
}

/** Removes external hosts the plan drops or changes, creates the new ones and the DNS server's namespace. */
export async function reconcileOutsideNetwork(state: LabState, plan: LabPlan): Promise<{ added: LabExternalHost[]; dnsChanged: boolean }> {
  const names = labNames(state.prefix);
  const before = new Map((state.plan.externalHosts ?? []).map((x) => [x.name, JSON.stringify(x)]));
  const after = plan.externalHosts ?? [];
  const afterByName = new Map(after.map((x) => [x.name, JSON.stringify(x)]));
  for (const [name, json] of before) {
    if (afterByName.get(name) === json) continue;
    await stopRecorded(state, externalKey(name));
    await removeEndpoint(state, externalKey(name), "external");
  }
  const added = after.filter((x) => before.get(x.name) !== JSON.stringify(x));
  for (const x of added) createOutsideEndpoint(state, externalKey(x.name), names.external(x.name), x.ip, LINK.fabricExternalSide(x.ip));
  const hasDns = state.endpoints.some((e) => e.key === DNS_KEY);
  if (after.length && !hasDns) createOutsideEndpoint(state, DNS_KEY, names.dns, ADDRESSES.dns, LINK.fabricDnsSide);
  if (!after.length && hasDns) {
    await stopRecorded(state, DNS_KEY);
    await removeEndpoint(state, DNS_KEY, "external");
  }
  const hosts = after.map((x) => `${x.ip} ${x.hostnames.join(" ")}`).join("\n") + "\n";
  const dnsChanged = added.length > 0 || before.size !== after.length;
  if (after.length) {
    mkdirSync(join(state.stateDir, "dns"), { recursive: true });
    writeFileSync(dnsHostsFile(state), hosts);
  }
  state.plan = { ...state.plan, externalHosts: (state.plan.externalHosts ?? []).filter((x) => afterByName.get(x.name) === JSON.stringify(x)) };
  saveState(state);
  return { added, dnsChanged };
}

/** dnsmasq as the lab's DNS server: only the external hosts' names (no upstream, no /etc/hosts), short TTL. */
function dnsmasqArgv(state: LabState): string[] {
  const found = runCommand(["sh", "-c", "command -v dnsmasq || ls /usr/sbin/dnsmasq"]).stdout.trim().split("\n")[0];
  if (!found) {
    throw new MeshError(ErrorCode.LabState, "The lab's DNS server needs dnsmasq: install the Debian package dnsmasq-base (apt-get install dnsmasq-base)");
  }
  return [
    found,
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--no-poll",
    `--addn-hosts=${dnsHostsFile(state)}`,
    `--listen-address=${ADDRESSES.dns}`,
    "--bind-interfaces",
    "--port=53",
    "--local-ttl=5",
    "--log-queries",
    "--log-facility=-",
    "--pid-file=",
    "--user=root",
    "--group=root",
  ];
}

/** Starts the added hosts' commands and (re)starts the DNS server when the names changed; waits until ready. */
export async function startOutside(
  state: LabState,
  plan: LabPlan,
  change: { added: LabExternalHost[]; dnsChanged: boolean },
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<void> {
  const names = labNames(state.prefix);
  const started: ProcessRecord[] = [];
  if (plan.externalHosts?.length) {
    const dns = state.processes.find((p) => p.id === DNS_KEY);
    if (change.dnsChanged || !dns || !isAlive(dns)) {
      await stopRecorded(state, DNS_KEY);
      started.push(startExternal(state, { id: DNS_KEY, netns: names.dns, argv: inNetns(names.dns, dnsmasqArgv(state)), ports: [53] }));
    }
  }
  for (const x of change.added) {
    if (!x.command.length) continue;
    const netns = names.external(x.name);
    started.push(startExternal(state, { id: externalKey(x.name), netns, argv: inNetns(netns, x.command), ports: x.ports }));
  }
  await waitReady(started, timeoutMs, (p, ms) => {
    const x = plan.externalHosts?.find((h) => externalKey(h.name) === p.id);
    const what = x ? `${x.name} ${x.ip} (${x.hostnames.join(", ")}): ${x.command.join(" ")}` : `DNS server ${ADDRESSES.dns}:53 (dnsmasq) for ${plan.externalHosts?.length} external host(s)`;
    progress(`  external   ${what} ready (${(ms / 1000).toFixed(1)} s)`);
  });
  state.plan = { ...state.plan, externalHosts: plan.externalHosts };
  saveState(state);
}
