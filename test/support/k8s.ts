/** Helpers for the Kubernetes tests: the manifests in k8s/ as objects, and their RBAC as the fake API server enforces it. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { RbacGrant, RbacRule } from "../../src/kube/_test_apiserver.ts";

export const K8S_DIR = join(import.meta.dir, "..", "..", "k8s");

export interface Manifest {
  file: string;
  // deno-lint-ignore no-explicit-any
  obj: any;
}

/** Every object of every *.yaml in k8s/ (what `kubectl apply -f k8s/` reads). */
export function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const f of readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(K8S_DIR, f), "utf8"))) {
      if (doc.errors.length) throw new Error(`${f}: ${doc.errors[0]!.message}`);
      const obj = doc.toJS();
      if (obj) out.push({ file: f, obj });
    }
  }
  return out;
}

export function find(kind: string, name: string): Manifest["obj"] {
  const m = manifests().find((x) => x.obj.kind === kind && x.obj.metadata?.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in k8s/`);
  return m.obj;
}

/** RBAC grants per user, from the (Cluster)Roles and their bindings to service accounts. */
export function rbacGrants(): Map<string, RbacGrant[]> {
  const all = manifests().map((m) => m.obj);
  const roles = new Map<string, RbacRule[]>();
  for (const o of all) {
    if (o.kind === "ClusterRole") roles.set(`ClusterRole/${o.metadata.name}`, o.rules);
    if (o.kind === "Role") roles.set(`Role/${o.metadata.namespace}/${o.metadata.name}`, o.rules);
  }
  const out = new Map<string, RbacGrant[]>();
  for (const o of all) {
    if (o.kind !== "ClusterRoleBinding" && o.kind !== "RoleBinding") continue;
    const key = o.roleRef.kind === "ClusterRole" ? `ClusterRole/${o.roleRef.name}` : `Role/${o.metadata.namespace}/${o.roleRef.name}`;
    const rules = roles.get(key);
    if (!rules) throw new Error(`${o.kind} ${o.metadata.name} refers to missing ${key}`);
    for (const s of o.subjects) {
      if (s.kind !== "ServiceAccount") continue;
      const user = `system:serviceaccount:${s.namespace}:${s.name}`;
      const grant: RbacGrant = o.kind === "RoleBinding" ? { rules, namespace: o.metadata.namespace } : { rules };
      out.set(user, [...(out.get(user) ?? []), grant]);
    }
  }
  return out;
}

/** Every (apiGroup, resource, verb) the manifests grant a user: "group|resource|verb". */
export function grantedTriples(grants: RbacGrant[]): string[] {
  const out: string[] = [];
  for (const g of grants) {
    for (const r of g.rules) for (const grp of r.apiGroups ?? [""]) for (const res of r.resources ?? []) for (const v of r.verbs) out.push(`${grp}|${res}|${v}`);
  }
  return [...new Set(out)].sort();
}

