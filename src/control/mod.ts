/** The control role: CA (CSR signing with node authorization) and config distribution on 15012. */
import { ErrorCode, MeshError } from "../core/errors.ts";
import type { RoleContext, RoleHandle } from "../admin/mod.ts";

export interface ControlOptions {
  /** mesh.yaml file or directory (file mode) */
  config?: string;
  /** read the cluster instead of a file */
  kubernetes: boolean;
  kubeconfig?: string;
  dataDir: string;
  /** "ADDR:15012" */
  listen: string;
}

// Placeholder until the control role lands.
export async function startControl(_opts: ControlOptions, _ctx: RoleContext): Promise<RoleHandle> {
  throw new MeshError(ErrorCode.Usage, "The control role is not available in this build yet");
}
