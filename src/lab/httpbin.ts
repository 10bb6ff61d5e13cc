/**
 * A small httpbin: the endpoints the article's walkthrough and our tests call, answering JSON shaped like
 * httpbin.org's, so the lab needs no container images. A real HTTP/1.1 server (Bun.serve).
 *
 *   /get /headers /ip /user-agent /status/N[,M...] /delay/N (at most 10 s) /anything[/...]
 *   /post /put /patch /delete (method-checked echoes) /bytes/N (at most 10 MiB) /uuid
 */
export interface HttpbinOptions {
  port: number;
  hostname?: string;
  /** called with one JSON line per request (the access log); omitted: no log */
  log?: (line: string) => void;
}

export interface Httpbin {
  port: number;
  stop(): Promise<void>;
}

const MAX_DELAY_S = 10;
const MAX_BYTES = 10 * 1024 * 1024;

/** "user-agent" -> "User-Agent", as httpbin (behind gunicorn) shows header names. */
function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function headersOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  req.headers.forEach((value, key) => {
    out[titleCase(key)] = value;
  });
  return out;
}

function argsOf(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(key);
    out[key] = all.length === 1 ? all[0]! : all;
  }
  return out;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
  });
}

interface Ctx {
  req: Request;
  url: URL;
  origin: string;
}

function basic(c: Ctx) {
  return { args: argsOf(c.url), headers: headersOf(c.req), origin: c.origin, url: c.url.toString() };
}

async function echo(c: Ctx) {
  const text = await c.req.text();
  const type = c.req.headers.get("content-type") ?? "";
  let parsed: unknown = null;
  let form: Record<string, string | string[]> = {};
  if (type.includes("application/x-www-form-urlencoded")) {
    form = argsOf(new URL(`http://x/?${text}`));
  } else {
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
  }
  return {
    args: argsOf(c.url),
    data: form && Object.keys(form).length ? "" : text,
    files: {},
    form,
    headers: headersOf(c.req),
    json: parsed,
    method: c.req.method,
    origin: c.origin,
    url: c.url.toString(),
  };
}

function statusResponse(spec: string): Response {
  const codes = spec.split(",").map((s) => Number(s.trim()));
  if (!codes.length || codes.some((n) => !Number.isInteger(n) || n < 100 || n > 599)) {
    return json({ error: `invalid status code "${spec}"` }, 400);
  }
  const code = codes[Math.floor(Math.random() * codes.length)]!;
  const headers: Record<string, string> = { "content-type": "text/html; charset=utf-8" };
  if (code >= 300 && code < 400) headers.location = "/redirect/1";
  // 1xx, 204 and 304 carry no body by definition.
  const body = code < 200 || code === 204 || code === 304 ? null : "";
  return new Response(body, { status: code, headers });
}

export async function handleHttpbin(req: Request, origin: string): Promise<Response> {
  const url = new URL(req.url);
  const c: Ctx = { req, url, origin };
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const method = req.method;
  const onlyMethod = async (m: string) =>
    method === m ? json(await echo(c)) : new Response("Method Not Allowed\n", { status: 405, headers: { allow: m } });
  if (path === "/") {
    return new Response("mesh httpbin: /get /headers /ip /user-agent /status/N /delay/N /anything /post /put /patch /delete /bytes/N /uuid\n", {
      headers: { "content-type": "text/plain" },
    });
  }
  if (path === "/get") return method === "GET" || method === "HEAD" ? json(basic(c)) : new Response("Method Not Allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  if (path === "/headers") return json({ headers: headersOf(req) });
  if (path === "/ip") return json({ origin });
  if (path === "/user-agent") return json({ "user-agent": req.headers.get("user-agent") });
  if (path === "/uuid") return json({ uuid: crypto.randomUUID() });
  if (path === "/post") return onlyMethod("POST");
  if (path === "/put") return onlyMethod("PUT");
  if (path === "/patch") return onlyMethod("PATCH");
  if (path === "/delete") return onlyMethod("DELETE");
  if (path === "/anything" || path.startsWith("/anything/")) return json(await echo(c));
  let m = /^\/status\/([\d,\s]+)$/.exec(decodeURIComponent(path));
  if (m) return statusResponse(m[1]!);
  m = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(path);
  if (m) {
    await Bun.sleep(Math.min(Number(m[1]), MAX_DELAY_S) * 1000);
    return json(await echo(c));
  }
  m = /^\/bytes\/(\d+)$/.exec(path);
  if (m) {
    const n = Math.min(Number(m[1]), MAX_BYTES);
    const buf = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(buf.subarray(i, Math.min(n, i + 65536)));
    return new Response(buf, { headers: { "content-type": "application/octet-stream" } });
  }
  return new Response("Not Found\n", { status: 404, headers: { "content-type": "text/plain" } });
}

/** Starts the server; `port: 0` picks a free port (see the returned `port`). */
export function startHttpbin(options: HttpbinOptions): Httpbin {
  const server = Bun.serve({
    port: options.port,
    hostname: options.hostname ?? "0.0.0.0",
    // /delay/10 must not be cut by the default idle timeout (10 s).
    idleTimeout: MAX_DELAY_S + 20,
    async fetch(req, srv) {
      const started = performance.now();
      const origin = (srv.requestIP(req)?.address ?? "").replace(/^::ffff:/, "");
      let res: Response;
      try {
        res = await handleHttpbin(req, origin);
      } catch (e) {
        res = json({ error: (e as Error).message }, 500);
      }
      options.log?.(
        JSON.stringify({
          time: new Date().toISOString(),
          method: req.method,
          path: new URL(req.url).pathname,
          status: res.status,
          origin,
          ms: Math.round((performance.now() - started) * 10) / 10,
        }),
      );
      return res;
    },
  });
  return { port: server.port ?? options.port, stop: () => server.stop(true) };
}
