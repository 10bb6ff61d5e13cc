/**
 * HTTP/1.1 in a tunnel, end to end: each request read by Http1Downstream goes through the request
 * path (src/waypoint/steps.ts), is forwarded (./forward.ts) or answered locally, and is recorded.
 */
import { logger } from "../../core/mod.ts";
import { normalizePath } from "../../policy/mod.ts";
import type { LocalReply, RequestContext, Tunnel } from "../context.ts";
import type { ByteStream } from "../../stream/mod.ts";
import { decide, type StepInputs } from "../steps.ts";
import { nextTraceparent, type RequestTelemetry } from "../telemetry.ts";
import { Http1Downstream, type Http1Request, type Http1Response } from "./downstream.ts";
import { headerMapOf } from "./fields.ts";
import { type ForwardInputs, forwardHttp1 } from "./forward.ts";

const log = logger("waypoint");

export interface Http1Inputs extends StepInputs, ForwardInputs {
  telemetry: RequestTelemetry;
  limits: {
    maxHeadBytes: number;
    idleTimeoutMs: number;
    headTimeoutMs: number;
    /** Body bytes kept for retries and mirrors. */
    recordLimit: number;
  };
  /** Mirrors a request (fire and forget); set by the proxy. */
  mirror?: (ctx: RequestContext, req: Http1Request) => void;
}

/** Serves HTTP/1.1 on `io`; `initial` is what the protocol sniffing already read. */
export function serveHttp1(inp: Http1Inputs, tunnel: Tunnel, io: ByteStream, initial: Uint8Array): Http1Downstream {
  return new Http1Downstream(
    io,
    (req, res) =>
      void handle(inp, tunnel, req, res).catch((e) => {
        // A rejection nobody awaits would end the process: this request's connection ends instead.
        log.error("request failed inside the waypoint", { error: (e as Error).message, stack: (e as Error).stack, trace_id: tunnel.traceId });
        if (!res.finished) res.abort();
      }),
    {
      maxHeadBytes: inp.limits.maxHeadBytes,
      idleTimeoutMs: inp.limits.idleTimeoutMs,
      headTimeoutMs: inp.limits.headTimeoutMs,
      recordLimit: () => inp.limits.recordLimit,
    },
    initial,
  );
}

/** origin-form, absolute-form, or "*" -> the normalized path with its query; undefined if unusable. */
function targetOf(req: Http1Request): { path: string; host?: string } | undefined {
  let t = req.head.target;
  let host: string | undefined;
  if (t === "*") return req.head.method === "OPTIONS" ? { path: "*" } : undefined;
  if (!t.startsWith("/")) {
    const m = /^https?:\/\/([^/?#]+)([^#]*)/i.exec(t);
    if (!m) return undefined;
    host = m[1];
    t = m[2] || "/";
  }
  const q = t.indexOf("?");
  const hash = t.indexOf("#");
  const pathEnd = q >= 0 ? q : hash >= 0 ? hash : t.length;
  const path = normalizePath(t.slice(0, pathEnd));
  const query = q >= 0 ? t.slice(q, hash > q ? hash : t.length) : "";
  return { path: path + query, host };
}

function contextOf(tunnel: Tunnel, req: Http1Request): RequestContext | undefined {
  const target = targetOf(req);
  if (!target) return undefined;
  const headers = headerMapOf(req.head.fields);
  const ct = headers["content-type"]?.[0];
  const d = tunnel.destination;
  const host = target.host ?? (req.host || (d.ip.includes(":") ? `[${d.ip}]:${d.port}` : `${d.ip}:${d.port}`));
  return {
    tunnel,
    protocol: req.head.minor === 1 ? "HTTP/1.1" : "HTTP/1.0",
    grpc: ct !== undefined && ct.startsWith("application/grpc"),
    method: req.head.method,
    path: target.path,
    host,
    headers,
    started: performance.now(),
    traceparent: nextTraceparent(headers["traceparent"]?.[0], tunnel.traceId),
    requestId: headers["x-request-id"]?.[0] ?? crypto.randomUUID(),
  };
}

function sendLocal(res: Http1Response, req: Http1Request, reply: LocalReply): number {
  const body = reply.body ? Buffer.from(reply.body, "utf8") : undefined;
  const fields: [string, string][] = reply.headers ? [...reply.headers] : [];
  if (body) fields.push(["content-type", "text/plain"]);
  // A body the client is still sending would be read for nothing: close after answering.
  if (!req.body.done) res.closeAfter = true;
  res.writeHead(reply.status, "", fields, { kind: "length", length: body?.length ?? 0 });
  res.end(body);
  req.body.discard();
  return res.bytesWritten;
}

async function handle(inp: Http1Inputs, tunnel: Tunnel, req: Http1Request, res: Http1Response): Promise<void> {
  const ctx = contextOf(tunnel, req);
  if (!ctx) {
    res.closeAfter = true;
    sendLocal(res, req, { status: 400, body: "request target not supported", flags: "-", details: `target ${req.head.target}` });
    return;
  }
  let reply: LocalReply | undefined;
  let tries = 0;
  let upstream;
  try {
    if (req.head.method === "CONNECT") {
      reply = { status: 405, body: "CONNECT is not supported through the waypoint", flags: "-", details: "CONNECT" };
    } else {
      reply = await decide(ctx, inp);
    }
    if (!reply) {
      if (ctx.plan!.mirrors.length && inp.mirror) inp.mirror(ctx, req);
      const r = await forwardHttp1(inp, ctx, req, res);
      if ("outcome" in r) {
        inp.telemetry.record(ctx, r.outcome);
        return;
      }
      reply = r.reply;
      tries = r.tries;
      upstream = r.upstream;
    }
  } catch (e) {
    log.error("request failed inside the waypoint", { error: (e as Error).message, stack: (e as Error).stack });
    reply = { status: 500, body: "internal error", flags: "-", details: (e as Error).message };
  }
  if (res.headSent || res.clientGone) {
    if (!res.finished) res.abort();
    inp.telemetry.record(ctx, { status: res.clientGone ? 0 : reply.status, flags: res.clientGone ? "DC" : reply.flags, details: reply.details, requestBytes: req.headLength + req.body.received, responseBytes: res.bytesWritten, tries, upstream });
    return;
  }
  const sent = sendLocal(res, req, reply);
  inp.telemetry.record(ctx, {
    status: reply.status,
    flags: reply.flags,
    details: reply.details,
    requestBytes: req.headLength + req.body.received,
    responseBytes: sent,
    tries,
    upstream,
  });
}
