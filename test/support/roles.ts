/**
 * A control role and one proxy (ztunnel or waypoint) started in this process, as `mesh run` starts them:
 * a temporary data directory, the configuration written to a file from YAML, a bootstrap token for the
 * node or the gateway, the proxy's configuration and certificates over the real control-plane stream.
 * Role tests use it to get a live control role without importing another role themselves; the control
 * role's own tests start theirs with startTestControl, the same way.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Hono } from "hono";
import type { RoleHandle } from "../../src/admin/mod.ts";
import type { ControlHandle } from "../../src/control/mod.ts";
import { setSink } from "../../src/core/mod.ts";
import type { Registry } from "../../src/telemetry/mod.ts";

// The roles (and what only they need) are imported when a test starts one: every test enters
// test/support through its mod.ts, for waitFor or the builders, and most never start a role.
const roleContext = async () => {
  const [{ Hono }, { Registry }] = await Promise.all([import("hono"), import("../../src/telemetry/mod.ts")]);
  return { metrics: new Registry(), admin: new Hono() };
};

export interface TestControlOptions {
  /** The --config file (default DIR/mesh.yaml). */
  config?: string;
  /** The data directory (default DIR/data). */
  dataDir?: string;
  /** Default 127.0.0.1:0; a port given in advance (a restart on the same port) comes from fixedPort. */
  listen?: string;
  /** Debounce of file events (default 20 ms: tests save and wait). */
  debounceMs?: number;
  clientCertTtlSeconds?: number;
}

export interface TestControl {
  handle: ControlHandle;
  metrics: Registry;
  admin: Hono;
  /** 127.0.0.1:PORT */
  address: string;
  dataDir: string;
}

/** A control role in this process over the files of `dir`. */
export async function startTestControl(dir: string, opts: TestControlOptions = {}): Promise<TestControl> {
  const { metrics, admin } = await roleContext();
  const dataDir = opts.dataDir ?? join(dir, "data");
  const { startControl } = await import("../../src/control/mod.ts");
  const handle = await startControl({
    config: opts.config ?? join(dir, "mesh.yaml"),
    kubernetes: false,
    dataDir,
    listen: opts.listen ?? "127.0.0.1:0",
    debounceMs: opts.debounceMs ?? 20,
    clientCertTtlSeconds: opts.clientCertTtlSeconds,
  }, { metrics, admin });
  return { handle, metrics, admin, address: `127.0.0.1:${handle.port}`, dataDir };
}

/** A bootstrap token of the control role whose data directory is `dataDir`, valid ten minutes. */
export async function bootstrapToken(dataDir: string, who: { node: string } | { gateway: string } | { admin: true }): Promise<string> {
  const { createBootstrapToken } = await import("../../src/identity/mod.ts");
  return await createBootstrapToken(dataDir, { ...who, ttlSeconds: 600 } as Parameters<typeof createBootstrapToken>[1]);
}

/** Replaces a file by renaming a new one into place, as editors do, so a watcher never reads it half-written. */
export function replaceFile(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

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
    control = (await startTestControl(dir, { config, dataDir, listen: opts.listen })).handle;
    const { metrics, admin } = await roleContext();
    const common = { controlPlane: `127.0.0.1:${control.port}`, caCert: join(dataDir, "root-cert.pem"), drainMs };
    const tokenFile = async (name: string, who: { node: string } | { gateway: string }) => {
      const path = join(dir, name);
      writeFileSync(path, await bootstrapToken(dataDir, who));
      return path;
    };
    if (opts.proxy && "waypoint" in opts.proxy) {
      const { startWaypoint } = await import("../../src/waypoint/mod.ts");
      const gateway = opts.proxy.waypoint;
      proxy = await startWaypoint({ ...common, gateway, hboneAddr: opts.proxy.hboneAddr, tokenFile: await tokenFile("waypoint.token", { gateway }) }, { metrics, admin });
    } else if (opts.proxy) {
      const { startZtunnel } = await import("../../src/ztunnel/mod.ts");
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
        replaceFile(config, yaml);
        await c.refresh();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
