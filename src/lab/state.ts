/**
 * The lab's memory: everything it created, written to STATE_DIR/state.json BEFORE each thing is created
 * (and updated after), so `mesh lab down` can remove all of it after a crash at any point, and nothing
 * it did not make. Processes are recorded with their start time (see platform/process.ts).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, MeshError, writeFileAtomic } from "../core/mod.ts";
import type { ProcessIdentity } from "../platform/mod.ts";
import type { LabPlan } from "./plan.ts";

export type NamespaceKind = "fabric" | "control" | "node" | "pod" | "waypoint" | "external";
/** "ui": the host-side relay of the traffic map (in the host's namespace: netns ""); "external": an ExternalHost's command or the lab's DNS server. */
export type ProcessKind = "control" | "ztunnel" | "waypoint" | "pod" | "ui" | "external";

export interface NamespaceRecord {
  name: string;
  kind: NamespaceKind;
  /** the /etc/netns/<name> directory made for its hosts file, if any */
  etcDir?: string;
}

export interface ProcessRecord extends Partial<ProcessIdentity> {
  /** "control", "ztunnel/<node>", "waypoint/<ns>/<name>", "pod/<ns>/<name>" */
  id: string;
  kind: ProcessKind;
  netns: string;
  argv: string[];
  log: string;
  /** where its /healthz/ready answers (mesh components only) */
  healthAddress?: string;
  /** TCP ports that must listen before it counts as ready (pods) */
  ports?: number[];
}

export interface NodeRecord {
  name: string;
  netns: string;
  /** its k: fabric address 10.99.0.(10+k), fabric-side link n<k> */
  index: number;
  address: string;
  /** next free k for its pod links p<k> */
  nextLink: number;
}

export interface EndpointRecord {
  /** "<ns>/<name>" */
  key: string;
  /** "external": an ExternalHost or the DNS server, hanging off the fabric (node "", link on the fabric side) */
  kind: "pod" | "waypoint" | "external";
  netns: string;
  node: string;
  ip: string;
  /** node-side link name */
  link: string;
}

export interface LabState {
  version: 1;
  /** --prefix, if any */
  prefix?: string;
  namePrefix: string;
  stateDir: string;
  mode: "mesh" | "no-mesh";
  phase: "starting" | "ready" | "failed" | "applying";
  createdAt: string;
  /** the file given to `up` or the last `apply` */
  source: string;
  /** the control plane's --config: apply overwrites it */
  configFile: string;
  /** how to run this mesh binary (argv prefix) */
  mesh: string[];
  /** directory put first in PATH for pod commands; holds `mesh` */
  binDir: string;
  namespaces: NamespaceRecord[];
  nodes: NodeRecord[];
  endpoints: EndpointRecord[];
  processes: ProcessRecord[];
  nextNodeIndex: number;
  /** the plan the lab currently runs */
  plan: LabPlan;
}

export const STATE_FILE = "state.json";

export function statePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

export function loadState(stateDir: string): LabState | undefined {
  const p = statePath(stateDir);
  if (!existsSync(p)) return undefined;
  let s: LabState;
  try {
    s = JSON.parse(readFileSync(p, "utf8")) as LabState;
  } catch (e) {
    throw new MeshError(ErrorCode.LabState, `Cannot read the lab state ${p}: ${(e as Error).message}`);
  }
  if (s.version !== 1) throw new MeshError(ErrorCode.LabState, `Lab state ${p} has unknown version ${s.version}`);
  return s;
}

/** Writes the state atomically: a crash leaves either the old or the new file, never half of one. */
export function saveState(state: LabState): void {
  mkdirSync(state.stateDir, { recursive: true });
  const p = statePath(state.stateDir);
  writeFileAtomic(p, JSON.stringify(state, null, 2) + "\n", 0o644);
}
