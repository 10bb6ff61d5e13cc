/**
 * The process-level HTTP servers every role shares (README "Ports"): Prometheus metrics on 15020,
 * readiness on 15021, and the localhost admin API on 15000. Several roles in one process (`--role all`)
 * register into the same servers; the process is ready only when every role is.
 */
import { rmSync } from "node:fs";
import { Hono } from "hono";
import { getLevels, logger, setLevel, splitAddr, type Level } from "../core/mod.ts";
import type { Registry } from "../telemetry/mod.ts";
import { AdminGuard, type AdminAuthOptions, ensureAdminSecret, restoreSecret } from "./auth.ts";

const log = logger("admin");

export interface Readiness {
  ready: boolean;
  /** Why not ready yet (shown by /healthz/ready and `mesh lab status`). */
  reasons: string[];
}

/** What a running role exposes to the process. */
export interface RoleHandle {
  readonly name: string;
  readiness(): Readiness;
  /** Graceful stop: stop accepting, let open work finish up to drainMs, then close. */
  stop(opts?: { drainMs?: number }): Promise<void>;
}

/** What the process hands each role when starting it. */
export interface RoleContext {
  metrics: Registry;
  /** The localhost admin API (hono): roles add /config_dump, /certs ... */
  admin: Hono;
}

export interface AdminAddresses {
  metrics?: string; // "0.0.0.0:15020"; "" disables
  ready?: string; // "0.0.0.0:15021"
  admin?: string; // "127.0.0.1:15000"
}

export interface AdminServers {
  readonly admin: Hono;
  addRole(role: RoleHandle): void;
  readiness(): Readiness;
  close(): Promise<void>;
  /** Actual bound ports (useful with port 0 in tests). */
  ports: { metrics?: number; ready?: number; admin?: number };
  /** Where the admin API's secret is (absent when the admin API is off or unauthenticated). */
  adminSecretPath?: string;
}

export interface AdminServerOptions {
  /**
   * Authentication of the admin API (see ./auth.ts): on by default; `false` only for tests that call it
   * without credentials. In-process callers (`admin.request()`) are never asked.
   */
  auth?: AdminAuthOptions | false;
}

/**
 * The servers share their ports (SO_REUSEPORT) so a restarting process can start while its predecessor
 * drains (a ztunnel restart that keeps established connections); the kernel spreads requests over both.
 */
export function startAdminServers(addrs: AdminAddresses, metrics: Registry, options: AdminServerOptions = {}): AdminServers {
  const roles: RoleHandle[] = [];
  const admin = new Hono();
  const servers: { stop(force?: boolean): void }[] = [];
  const ports: AdminServers["ports"] = {};

  const readiness = (): Readiness => {
    if (!roles.length) return { ready: false, reasons: ["no role started yet"] };
    const reasons = roles.flatMap((r) => r.readiness().reasons.map((why) => `${r.name}: ${why}`));
    return { ready: roles.every((r) => r.readiness().ready), reasons };
  };

  admin.get("/logging", (c) => c.json(getLevels()));
  // POST /logging?level=debug (all scopes) or ?scope=ztunnel&level=debug
  admin.post("/logging", (c) => {
    const level = c.req.query("level") as Level | undefined;
    const scope = c.req.query("scope") ?? "default";
    if (!level) return c.json({ error: "Missing ?level=debug|info|warn|error" }, 400);
    try {
      setLevel(scope, level);
    } catch (e) {
      return c.json({ error: (e as Error).message }, 400);
    }
    // Named apart from the line's own "scope" and "level" fields, which they would overwrite.
    log.info("log level changed", { forScope: scope, to: level });
    return c.json(getLevels());
  });
  admin.get("/healthz/ready", (c) => {
    const r = readiness();
    return c.json(r, r.ready ? 200 : 503);
  });

  // The metrics and readiness servers answer one path each, for scrapers and probes that send no credential.
  const plain = (addr: string, defaultPort: number, fetch: (path: string) => Response) =>
    Bun.serve({ ...splitAddr(addr, defaultPort), reusePort: true, fetch: (req) => fetch(new URL(req.url).pathname) });
  if (addrs.metrics) {
    const s = plain(addrs.metrics, 15020, (path) =>
      path === "/metrics" || path === "/stats/prometheus"
        ? new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } })
        : new Response("not found\n", { status: 404 }));
    servers.push(s);
    ports.metrics = s.port;
  }
  if (addrs.ready) {
    const s = plain(addrs.ready, 15021, (path) => {
      if (path !== "/healthz/ready") return new Response("not found\n", { status: 404 });
      const r = readiness();
      return new Response(r.ready ? "ready\n" : `not ready: ${r.reasons.join("; ")}\n`, { status: r.ready ? 200 : 503 });
    });
    servers.push(s);
    ports.ready = s.port;
  }
  let adminSecretPath: string | undefined;
  let secretKeeper: ReturnType<typeof setInterval> | undefined;
  if (addrs.admin) {
    const { hostname, port } = splitAddr(addrs.admin, 15000);
    const auth = options.auth;
    let guard: AdminGuard | undefined;
    const refused = auth === false ? undefined : metrics.counter("mesh_admin_refused_total", "Admin API requests refused for a missing or wrong credential");
    const s = Bun.serve({
      hostname,
      port,
      reusePort: true,
      fetch: async (req, server) => {
        if (auth === false) return admin.fetch(req);
        // Fail closed: no guard yet means no request is served.
        const verdict = guard ? await guard.check(req) : { ok: false as const, status: 401 as const, error: "The admin API is starting" };
        if (!verdict.ok) {
          refused?.inc();
          log.warn("admin request refused", { path: new URL(req.url).pathname, remote: server.requestIP(req)?.address, reason: verdict.error });
          return Response.json({ error: verdict.error }, { status: verdict.status, headers: { "www-authenticate": 'Bearer realm="mesh-admin"' } });
        }
        return admin.fetch(req);
      },
    });
    servers.push(s);
    ports.admin = s.port;
    if (auth !== false) {
      try {
        const secret = ensureAdminSecret(s.port!, auth?.secretDir ? [auth.secretDir] : undefined);
        guard = new AdminGuard(secret, auth?.verifyToken);
        adminSecretPath = secret.path;
        // A predecessor that stopped while this process was starting may have removed the shared file.
        secretKeeper = setInterval(() => restoreSecret(secret), 10_000);
        (secretKeeper as { unref?: () => void }).unref?.();
      } catch (e) {
        // Without a secret nobody can be let in: the admin API refuses everything, and says why.
        log.error("admin API secret unavailable: every admin request will be refused", { error: (e as Error).message });
      }
    }
  }
  return {
    admin,
    ports,
    adminSecretPath,
    addRole: (r) => void roles.push(r),
    readiness,
    async close() {
      for (const s of servers) s.stop(true);
      clearInterval(secretKeeper);
      // The secret goes with the last process on its port: a successor still listening (an overlapping
      // restart) keeps it. An ephemeral port (0: tests) is never shared.
      if (adminSecretPath && addrs.admin) {
        const { hostname, port } = splitAddr(addrs.admin, 15000);
        if (port === 0 || !(await listening(hostname, ports.admin!))) rmSync(adminSecretPath, { force: true });
      }
    },
  };
}

/** Whether something still accepts connections at host:port (another process sharing it). */
async function listening(hostname: string, port: number): Promise<boolean> {
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "::1" : hostname;
  return await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 500);
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(s) {
          clearTimeout(timer);
          s.end();
          resolve(true);
        },
        data() {},
        connectError() {
          clearTimeout(timer);
          resolve(false);
        },
      },
    }).catch(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
