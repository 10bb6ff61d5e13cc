/**
 * Stand-in for src/model/attach.ts (the POLICY engineer's), with the same signature and Istio semantics,
 * until that file is committed; then this file goes and lint.ts imports from ../model/mod.ts.
 */
import type { MeshConfig, PolicyScope, Workload } from "../model/types.ts";

export function scopeSelectsWorkload(scope: PolicyScope, policyNamespace: string, workload: Workload, meshConfig: MeshConfig): boolean {
  const inRoot = policyNamespace === meshConfig.rootNamespace;
  switch (scope.kind) {
    case "root":
    case "namespace":
      return inRoot || policyNamespace === workload.namespace;
    case "selector":
      if (!inRoot && policyNamespace !== workload.namespace) return false;
      return Object.entries(scope.matchLabels).every(([k, v]) => workload.labels[k] === v);
    case "targetRefs":
      return false;
  }
}
