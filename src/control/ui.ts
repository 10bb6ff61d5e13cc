/**
 * The traffic map (--ui-listen, default 127.0.0.1:15014): a page served by the control role, with its live
 * data, guarded like the admin API. A browser signs in once with an admin token (`mesh token create
 * --admin`) and gets a session cookie (HttpOnly, SameSite=Strict, 12 h); scripts may send the token as
 * `Authorization: Bearer`. Everything the page needs is in the binary (cytoscape included): no CDN, works
 * offline.
 *
 *   GET  /                      the map (or the sign-in page)
 *   POST /login, /logout        form field `token`
 *   GET  /api/graph?window=5m   the traffic graph over 1, 5 or 15 minutes
 *   GET  /api/flows?namespace=&workload=&verdict=&limit=    recent flows
 *   GET  /api/flows/stream?...  the same filters, live (server-sent events)
 *   GET  /api/flows/ID/explain  a flow, and for a denied one what `mesh explain` says about it
 */
import { randomBytes } from "node:crypto";
import { lstatSync, unlinkSync } from "node:fs";
import { Hono } from "hono";
import type { Context } from "hono";
import { ErrorCode, logger, MeshError, splitAddr } from "../core/mod.ts";
import { explainRequest, type ExplainQuery } from "../explain/mod.ts";
import type { Caller } from "../identity/mod.ts";
import type { MeshModel } from "../model/mod.ts";
import { type FlowFilter, filterOfQuery, type FlowRecord, matchFlow } from "../xds/mod.ts";
import { flowStream } from "./flow_api.ts";
import type { FlowStore } from "./flows.ts";
import { APP_JS, CYTOSCAPE_JS, LOGIN_HTML, PAGE_HTML } from "./ui/mod.ts";

const log = logger("control");
const COOKIE = "mesh_session";
const SESSION_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;
const WINDOWS: Record<string, number> = { "1m": 60_000, "5m": 300_000, "15m": 900_000 };

export interface UiOptions {
  /** "HOST:PORT", or "unix:PATH" (the lab relays the host's port to it). */
  listen: string;
  flows: FlowStore;
  model: () => MeshModel | undefined;
  /** Who a bearer token proves (admin tokens are verified by the control role's token key). */
  verifyToken: (token: string) => Promise<Caller>;
}

export interface UiServer {
  /** "http://127.0.0.1:15014", or "unix:PATH" */
  readonly url: string;
  stop(): Promise<void>;
}

/** The explain question a flow asks: its source identity (or address), its destination, its method and path. */
export function explainQueryOf(f: FlowRecord): ExplainQuery | undefined {
  const sa = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(f.src.identity ?? "");
  const from: ExplainQuery["from"] | undefined = sa
    ? { kind: "identity", namespace: sa[1]!, serviceAccount: sa[2]! }
    : f.src.address
    ? { kind: "ip", address: f.src.address.replace(/:\d+$/, "") }
    : undefined;
  let to: ExplainQuery["to"] | undefined;
  const [ns, name] = f.dst.service?.split("/") ?? [];
  if (f.l7 && ns && name && f.dst.port !== undefined) to = { kind: "service", namespace: ns, name, port: f.dst.port };
  else if (f.dst.address && f.dst.port !== undefined) to = { kind: "address", address: f.dst.address, port: f.dst.port };
  if (!from || !to) return undefined;
  return f.l7 ? { from, to, method: f.method, path: f.path } : { from, to };
}

/** The page's filters: namespace, workload (either end), verdict, since. */
function pageFilter(params: URLSearchParams): { filter: FlowFilter; workload?: string; limit?: number } {
  const { follow: _follow, limit, ...filter } = filterOfQuery(params);
  return { filter, workload: params.get("workload") || undefined, limit };
}

function matches(f: FlowRecord, filter: FlowFilter, workload?: string): boolean {
  if (!matchFlow(f, filter)) return false;
  return !workload || matchFlow(f, { from: workload }) || matchFlow(f, { to: workload });
}

export function uiApp(o: Omit<UiOptions, "listen">): Hono {
  const sessions = new Map<string, number>();
  const app = new Hono();

  const cookieOf = (c: Context) => {
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z0-9_-]+)`).exec(c.req.header("cookie") ?? "");
    return m?.[1];
  };
  const isAdmin = async (token: string) => {
    try {
      return (await o.verifyToken(token)).kind === "admin";
    } catch {
      return false;
    }
  };
  const signedIn = async (c: Context): Promise<boolean> => {
    const sid = cookieOf(c);
    if (sid) {
      const until = sessions.get(sid);
      if (until && until > Date.now()) return true;
      sessions.delete(sid);
    }
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
    return bearer !== undefined && await isAdmin(bearer);
  };

  app.get("/", async (c) => c.html(await signedIn(c) ? PAGE_HTML : LOGIN_HTML.replace("{{error}}", "")));
  app.post("/login", async (c) => {
    const form = await c.req.parseBody().catch(() => ({} as Record<string, unknown>));
    const token = typeof form.token === "string" ? form.token.trim() : "";
    if (!token || !await isAdmin(token)) {
      log.warn("traffic map sign-in refused: not an admin token");
      return c.html(LOGIN_HTML.replace("{{error}}", "That is not an admin token of this control plane (mesh token create --admin)."), 401);
    }
    const sid = randomBytes(32).toString("base64url");
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(sid, Date.now() + SESSION_MS);
    c.header("set-cookie", `${COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}`);
    return c.redirect("/", 303);
  });
  app.post("/logout", (c) => {
    const sid = cookieOf(c);
    if (sid) sessions.delete(sid);
    c.header("set-cookie", `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    return c.redirect("/", 303);
  });
  // The page's code is no secret; its data is.
  app.get("/assets/cytoscape.mjs", (c) => c.body(CYTOSCAPE_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "max-age=86400" }));
  app.get("/assets/app.js", (c) => c.body(APP_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));

  app.use("/api/*", async (c, next) => {
    if (!await signedIn(c)) return c.json({ error: "Sign in with an admin token (mesh token create --admin)", code: ErrorCode.TokenInvalid }, 401);
    await next();
  });
  app.get("/api/graph", (c) => {
    const w = WINDOWS[c.req.query("window") ?? "5m"];
    if (!w) return c.json({ error: "window must be 1m, 5m or 15m", code: ErrorCode.Usage }, 400);
    return c.json(o.flows.graph(w));
  });
  app.get("/api/flows", (c) => {
    const { filter, workload, limit } = pageFilter(new URL(c.req.url).searchParams);
    const all = o.flows.recent(filter, 10_000).filter((f) => matches(f, filter, workload));
    return c.json({ flows: all.slice(-(limit ?? 200)) });
  });
  app.get("/api/flows/stream", (c) => {
    const { filter, workload } = pageFilter(new URL(c.req.url).searchParams);
    const body = flowStream(o.flows, filter, [], {
      encode: (f) => (matches(f, filter, workload) ? `data: ${JSON.stringify(f)}\n\n` : ""),
      keepalive: ": keepalive\n\n",
    });
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
  });
  app.get("/api/flows/:id/explain", async (c) => {
    const f = o.flows.get(Number(c.req.param("id")));
    if (!f) return c.json({ error: "No such flow (the control role keeps the most recent ones)", code: ErrorCode.Usage }, 404);
    const model = o.model();
    const query = explainQueryOf(f);
    if (!model || !query) return c.json({ flow: f, explanation: null, note: model ? "not enough is known of this flow's ends to explain it" : "no configuration loaded" });
    try {
      const explanation = await explainRequest(model, query);
      return c.json({
        flow: f,
        query,
        explanation,
        note: f.l7 ? "explained from the flow's source, destination, method and path: its headers and token are not recorded" : undefined,
      });
    } catch (e) {
      return c.json({ flow: f, query, explanation: null, note: (e as Error).message });
    }
  });
  app.notFound((c) => c.json({ error: `No such page: ${c.req.path}` }, 404));
  return app;
}

/** Starts the page's server. @throws MeshError (MESH_USAGE) when it cannot listen. */
export function startUi(o: UiOptions): UiServer {
  const app = uiApp(o);
  const unix = o.listen.startsWith("unix:") ? o.listen.slice(5) : undefined;
  let server: ReturnType<typeof Bun.serve>;
  try {
    if (unix) {
      // A socket left by a control role that did not stop cleanly would refuse the bind.
      if (lstatSync(unix, { throwIfNoEntry: false })?.isSocket()) unlinkSync(unix);
      server = Bun.serve({ unix, fetch: app.fetch, idleTimeout: 60 });
    } else {
      const { hostname, port } = splitAddr(o.listen, 15014);
      server = Bun.serve({ hostname, port, fetch: app.fetch, idleTimeout: 60 });
    }
  } catch (e) {
    throw new MeshError(ErrorCode.Usage, `Cannot serve the traffic map on ${o.listen}: ${(e as Error).message}`, { cause: e });
  }
  const url = unix ? `unix:${unix}` : `http://${server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname}:${server.port}`;
  log.info("traffic map served", { url });
  return {
    url,
    async stop() {
      await server.stop(true);
    },
  };
}
