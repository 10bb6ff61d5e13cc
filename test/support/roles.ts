/**
 * A control role and one proxy (ztunnel or waypoint) started in this process, as `mesh run` starts them:
 * a temporary data directory, the configuration written to a file from YAML, a bootstrap token for the
 * node or the gateway, the proxy's configuration and certificates over the real control-plane stream.
 * Role tests use it to get a live control role without importing another role themselves.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import type { RoleHandle } from "../../src/admin/mod.ts";
import { type ControlHandle, startControl } from "../../src/control/mod.ts";
import { setSink } from "../../src/core/mod.ts";
import { createBootstrapToken } from "../../src/identity/mod.ts";
import { Registry } from "../../src/telemetry/mod.ts";
import { startWaypoint } from "../../src/waypoint/mod.ts";
import { startZtunnel } from "../../src/ztunnel/mod.ts";

/** The proxy to start: a waypoint for a Gateway "NAMESPACE/NAME", or the ztunnel of a node (`--redirect none`). */
export type ProxySpec =
  | { waypoint: string; hboneAddr: string }
  | { ztunnel: string; hboneAddr?: string; outboundAddr?: string; inboundPlaintextAddr?: string };

export interface InProcessMeshOptions {
  /** The mesh configuration (the control role's --config file). */
  yaml: string;
  proxy?: ProxySpec;
  /** The control role's listen address (default 127.0.0.1:0; a port given in advance comes from fixedPort). */
  listen?: string;
  /** The proxy's drain on stop (default 200 ms). */
  drainMs?: number;
  /** Keep the roles' log lines (default: silenced, and restored on stop). */
  logs?: boolean;
  /** Names the temporary directory. */
  prefix?: string;
}

export interface InProcessMesh {
  /** The temporary directory: mesh.yaml, control/ (the data directory), tokens, run/. */
  dir: string;
  control: ControlHandle;
  /** 127.0.0.1:PORT of the control role. */
  controlAddress: string;
  /** The proxy, when one was asked for. */
  proxy: RoleHandle | undefined;
  /** The proxy's admin API (request it in-process with admin.request(path)) and metrics. */
  admin: Hono;
  metrics: Registry;
  /** Replaces mesh.yaml and has the control role read it now. */
  reconfigure(yaml: string): Promise<void>;
  /** Stops the proxy, then the control role, and removes the directory. */
  stop(): Promise<void>;
}

export async function startInProcessMesh(opts: InProcessMeshOptions): Promise<InProcessMesh> {
  const restore = opts.logs ? undefined : setSink(() => {});
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? "mesh-roles-"));
  const config = join(dir, "mesh.yaml");
  const dataDir = join(dir, "control");
  const drainMs = opts.drainMs ?? 200;
  writeFileSync(config, opts.yaml);
  let control: ControlHandle | undefined;
  let proxy: RoleHandle | undefined;
  const stop = async () => {
    await proxy?.stop({ drainMs: Math.min(drainMs, 100) });
    await control?.stop({ drainMs: 0 });
    if (restore) setSink(restore);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    control = await startControl(
      { config, kubernetes: false, dataDir, listen: opts.listen ?? "127.0.0.1:0" },
      { metrics: new Registry(), admin: new Hono() },
    );
    const admin = new Hono();
    const metrics = new Registry();
    const common = { controlPlane: `127.0.0.1:${control.port}`, caCert: join(dataDir, "root-cert.pem"), drainMs };
    const tokenFile = async (name: string, who: { node: string } | { gateway: string }) => {
      const path = join(dir, name);
      writeFileSync(path, await createBootstrapToken(dataDir, { ...who, ttlSeconds: 600 }));
      return path;
    };
    if (opts.proxy && "waypoint" in opts.proxy) {
      const gateway = opts.proxy.waypoint;
      proxy = await startWaypoint({ ...common, gateway, hboneAddr: opts.proxy.hboneAddr, tokenFile: await tokenFile("waypoint.token", { gateway }) }, { metrics, admin });
    } else if (opts.proxy) {
      const node = opts.proxy.ztunnel;
      proxy = await startZtunnel({
        ...common,
        node,
        tokenFile: await tokenFile("node.token", { node }),
        redirect: "none",
        hboneAddr: opts.proxy.hboneAddr ?? "127.0.0.1:0",
        outboundAddr: opts.proxy.outboundAddr ?? "127.0.0.1:0",
        inboundPlaintextAddr: opts.proxy.inboundPlaintextAddr ?? "127.0.0.1:0",
        runDir: join(dir, "run"),
      }, { metrics, admin });
    }
    const c = control;
    return {
      dir,
      control: c,
      controlAddress: `127.0.0.1:${c.port}`,
      proxy,
      admin,
      metrics,
      reconfigure: async (yaml) => {
        // Rename into place, as editors do, so the watcher never reads a half-written file.
        const tmp = join(dir, `.mesh.yaml.${Math.random().toString(36).slice(2)}`);
        writeFileSync(tmp, yaml);
        renameSync(tmp, config);
        await c.refresh();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
