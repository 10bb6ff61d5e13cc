/**
 * The process-level HTTP servers every role shares (DESIGN.md "Ports"): Prometheus metrics on 15020,
 * readiness on 15021, and the localhost admin API on 15000. Several roles in one process (`--role all`)
 * register into the same servers; the process is ready only when every role is.
 */
import { Hono } from "hono";
import { getLevels, logger, setLevel, type Level } from "../core/log.ts";
import type { Registry } from "../telemetry/metrics.ts";

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
}

export function splitAddr(addr: string, defaultPort: number): { hostname: string; port: number } {
  const m = addr.match(/^\[?([^\]]*?)\]?(?::(\d+))?$/);
  const hostname = m?.[1] || "0.0.0.0";
  return { hostname, port: m?.[2] !== undefined ? Number(m[2]) : defaultPort };
}

/**
 * The servers share their ports (SO_REUSEPORT) so a restarting process can start while its predecessor
 * drains (a ztunnel restart that keeps established connections); the kernel spreads requests over both.
 */
export function startAdminServers(addrs: AdminAddresses, metrics: Registry): AdminServers {
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
    log.info("log level changed", { scope, level });
    return c.json(getLevels());
  });
  admin.get("/healthz/ready", (c) => {
    const r = readiness();
    return c.json(r, r.ready ? 200 : 503);
  });

  if (addrs.metrics) {
    const { hostname, port } = splitAddr(addrs.metrics, 15020);
    const s = Bun.serve({
      hostname,
      port,
      reusePort: true,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/metrics" || path === "/stats/prometheus") {
          return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
        }
        return new Response("not found\n", { status: 404 });
      },
    });
    servers.push(s);
    ports.metrics = s.port;
  }
  if (addrs.ready) {
    const { hostname, port } = splitAddr(addrs.ready, 15021);
    const s = Bun.serve({
      hostname,
      port,
      reusePort: true,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path !== "/healthz/ready") return new Response("not found\n", { status: 404 });
        const r = readiness();
        return new Response(r.ready ? "ready\n" : `not ready: ${r.reasons.join("; ")}\n`, { status: r.ready ? 200 : 503 });
      },
    });
    servers.push(s);
    ports.ready = s.port;
  }
  if (addrs.admin) {
    const { hostname, port } = splitAddr(addrs.admin, 15000);
    const s = Bun.serve({ hostname, port, reusePort: true, fetch: admin.fetch });
    servers.push(s);
    ports.admin = s.port;
  }
  return {
    admin,
    ports,
    addRole: (r) => void roles.push(r),
    readiness,
    async close() {
      for (const s of servers) s.stop(true);
    },
  };
}
