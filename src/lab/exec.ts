/** `mesh lab exec`: run a command inside a pod's (or node's, waypoint's, the control plane's) namespace. */
import { ErrorCode, MeshError } from "../core/mod.ts";
import { inNetns } from "../platform/mod.ts";
import { type LabLocation, requireLab } from "./lifecycle.ts";
import { childEnv, requireRoot } from "./runtime.ts";
import type { LabState } from "./state.ts";

/**
 * The namespace a target names: `[NAMESPACE/]POD`, `node/NAME`, `waypoint/NAMESPACE/NAME`, `control`,
 * `external/NAME` (an ExternalHost; `external/.dns` is the lab's DNS server).
 * A bare pod name is accepted when exactly one pod has it; otherwise it means namespace "default".
 */
export function resolveTarget(state: LabState, target: string): string {
  const known = () =>
    [
      ...state.endpoints.filter((e) => e.kind === "pod").map((e) => e.key),
      ...state.nodes.map((n) => `node/${n.name}`),
      ...state.endpoints.filter((e) => e.kind === "waypoint").map((e) => `waypoint/${e.key}`),
      ...(state.namespaces.some((n) => n.kind === "control") ? ["control"] : []),
      ...state.endpoints.filter((e) => e.kind === "external").map((e) => e.key),
    ].join(", ");
  const fail = (why: string): never => {
    throw new MeshError(ErrorCode.Usage, `${why}; this lab has: ${known()}`);
  };
  if (target === "control") {
    const ns = state.namespaces.find((n) => n.kind === "control");
    return ns ? ns.name : fail(`This lab has no control plane (--no-mesh)`);
  }
  if (target.startsWith("node/")) {
    const node = state.nodes.find((n) => n.name === target.slice(5));
    return node ? node.netns : fail(`No node "${target.slice(5)}"`);
  }
  if (target.startsWith("external/")) {
    const ext = state.endpoints.find((e) => e.kind === "external" && e.key === target);
    return ext ? ext.netns : fail(`No external host "${target.slice(9)}"`);
  }
  if (target.startsWith("waypoint/")) {
    const wp = state.endpoints.find((e) => e.kind === "waypoint" && e.key === target.slice(9));
    return wp ? wp.netns : fail(`No waypoint "${target.slice(9)}"`);
  }
  const pods = state.endpoints.filter((e) => e.kind === "pod");
  if (target.includes("/")) {
    const pod = pods.find((e) => e.key === target);
    return pod ? pod.netns : fail(`No pod "${target}"`);
  }
  const byName = pods.filter((e) => e.key.split("/")[1] === target);
  if (byName.length === 1) return byName[0]!.netns;
  const inDefault = pods.find((e) => e.key === `default/${target}`);
  if (inDefault) return inDefault.netns;
  return fail(byName.length ? `Pod name "${target}" is ambiguous: say NAMESPACE/${target}` : `No pod "${target}"`);
}

export interface ExecOptions extends LabLocation {
  target: string;
  command: string[];
}

/** The argv and environment that run `command` in the target's namespace. */
export function execCommand(opts: ExecOptions): { argv: string[]; env: Record<string, string>; netns: string } {
  requireRoot("mesh lab exec");
  if (!opts.command.length) throw new MeshError(ErrorCode.Usage, "Nothing to run: mesh lab exec TARGET -- CMD...");
  const state = requireLab(opts);
  const netns = resolveTarget(state, opts.target);
  return { argv: inNetns(netns, opts.command), env: childEnv(state.binDir), netns };
}

/** Runs it with the terminal attached; returns its exit code. */
export async function labExec(opts: ExecOptions): Promise<number> {
  const { argv, env } = execCommand(opts);
  const child = Bun.spawn(argv, { stdio: ["inherit", "inherit", "inherit"], env });
  return await child.exited;
}
