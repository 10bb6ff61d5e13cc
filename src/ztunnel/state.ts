/**
 * The ztunnel's view of the mesh: the current model (from the control plane, or last-known-good),
 * indexed once per version, plus what derives from it for this node.
 */
import { indexModel, type ModelIndex } from "../model/mod.ts";
import { emptyModel, type MeshModel, type Workload } from "../model/mod.ts";
import { capturedWorkloads } from "./capture/mod.ts";

export class ZtunnelState {
  readonly node: string;
  #index: ModelIndex = indexModel(emptyModel());
  #version: number | undefined;

  constructor(node: string) {
    this.node = node;
  }

  get index(): ModelIndex {
    return this.#index;
  }

  /** undefined until a configuration arrived. */
  get version(): number | undefined {
    return this.#version;
  }

  replace(model: MeshModel, version: number): void {
    this.#index = indexModel(model);
    this.#version = version;
  }

  /** The workloads this ztunnel captures and holds certificates for. */
  localWorkloads(): Workload[] {
    return capturedWorkloads(this.#index, this.node);
  }

  /** Identities of the local workloads (one certificate each). */
  localIdentities(): string[] {
    return [...new Set(this.localWorkloads().map((w) => w.identity))];
  }

  /** A workload of this node at `ip`, enrolled in ambient mode. */
  localWorkloadAt(ip: string): Workload | undefined {
    const w = this.#index.workloadByAddress(ip);
    return w && w.node === this.node && w.ambient ? w : undefined;
  }
}
