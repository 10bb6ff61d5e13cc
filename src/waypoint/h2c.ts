/**
 * HTTP/2 with prior knowledge (h2c) in a tunnel, for gRPC: node:http2 serves the client's session on the
 * tunnel and opens sessions to endpoints over HBONE tunnels of their own (one per endpoint and client,
 * reused while open). Every stream takes the same request path as HTTP/1.1; trailers pass through, and
 * the waypoint's own answers to a gRPC client are trailers-only responses with a grpc-status.
 */
import http2 from "node:http2";
import { logger } from "../core/mod.ts";
import { normalizePath } from "../policy/mod.ts";
import type { HeaderMap } from "../route/mod.ts";
import { applyHeaderModifier, shouldRetry, type TryOutcome } from "../route/mod.ts";
import { RequestBody } from "./body.ts";
import { ConnectFailure, type UpstreamConnector } from "./connect.ts";
import type { LocalReply, RequestContext, Tunnel } from "./context.ts";
import { type ByteStream, toDuplex } from "../stream/mod.ts";
import { grpcStatusOf, noHealthyUpstream, upstreamFailure, upstreamTimeout } from "./local_reply.ts";
import type { Endpoint, WaypointState } from "./state.ts";
import { admitEndpoint, decide, type StepInputs } from "./steps.ts";
import { nextTraceparent, type RequestTelemetry } from "./telemetry.ts";

const log = logger("waypoint");

export interface H2Inputs extends StepInputs {
  state: WaypointState;
  connector: UpstreamConnector;
  telemetry: RequestTelemetry;
  limits: { recordLimit: number };
  sessions: H2SessionPool;
}

const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings"]);

/** Client sessions to endpoints, one per endpoint and client. */
export class H2SessionPool {
  #sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  get size(): number {
    return this.#sessions.size;
  }

  session(key: string, open: () => Promise<ByteStream>): Promise<http2.ClientHttp2Session> {
    let p = this.#sessions.get(key);
    if (p) return p;
    p = open().then((io) => {
      const s = http2.connect("http://upstream", { createConnection: () => toDuplex(io) as never });
      const drop = () => {
        if (this.#sessions.get(key) === p) this.#sessions.delete(key);
      };
      s.on("close", drop);
      s.on("goaway", drop);
      s.on("error", (e) => {
        drop();
        log.debug("h2c upstream session error", { key, error: e.message });
      });
      return s;
    });
    p.catch(() => this.#sessions.delete(key));
    this.#sessions.set(key, p);
    return p;
  }

  close(): void {
    for (const p of this.#sessions.values()) p.then((s) => s.destroy(), () => {});
    this.#sessions.clear();
  }
}

function headerMapOfH2(h: http2.IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = {};
  for (const k in h) {
    if (k.charCodeAt(0) === 0x3a || HOP.has(k)) continue;
    const v = h[k];
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? [...v] : [String(v)];
  }
  return out;
}

/** Serves HTTP/2 (prior knowledge) on `io`. */
export function serveH2c(inp: H2Inputs, tunnel: Tunnel, io: ByteStream, initial: Uint8Array): void {
  const server = http2.createServer({ settings: { initialWindowSize: 1 << 20 } });
  server.on("stream", (stream, headers) => {
    const s = stream as http2.ServerHttp2Stream;
    handleStream(inp, tunnel, s, headers).catch((e) => {
      // A rejection nobody awaits would end the process: this stream ends instead.
      log.error("h2c stream failed inside the waypoint", { error: (e as Error).message, stack: (e as Error).stack, trace_id: tunnel.traceId });
      if (!s.destroyed) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  });
  server.on("sessionError", (e) => log.debug("h2c session error", { error: e.message }));
  const d = toDuplex(io, initial);
  server.emit("connection", d);
}

function localH2(stream: http2.ServerHttp2Stream, ctx: RequestContext, reply: LocalReply): number {
  if (stream.destroyed || stream.headersSent) return 0;
  if (ctx.grpc) {
    const h: http2.OutgoingHttpHeaders = {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(grpcStatusOf(reply.status)),
      "grpc-message": encodeURIComponent(reply.body || `HTTP ${reply.status}`),
    };
    for (const [k, v] of reply.headers ?? []) h[k] = v;
    stream.respond(h, { endStream: true });
    return 0;
  }
  const h: http2.OutgoingHttpHeaders = { ":status": reply.status };
  for (const [k, v] of reply.headers ?? []) h[k] = v;
  if (reply.body) h["content-type"] = "text/plain";
  stream.respond(h);
  stream.end(reply.body);
  return reply.body.length;
}

async function handleStream(inp: H2Inputs, tunnel: Tunnel, stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): Promise<void> {
  const rawPath = String(h[":path"] ?? "/");
  const q = rawPath.indexOf("?");
  const headers = headerMapOfH2(h);
  const d = tunnel.destination;
  const ctx: RequestContext = {
    tunnel,
    protocol: "HTTP/2",
    grpc: (headers["content-type"]?.[0] ?? "").startsWith("application/grpc"),
    method: String(h[":method"] ?? "GET"),
    path: normalizePath(q >= 0 ? rawPath.slice(0, q) : rawPath) + (q >= 0 ? rawPath.slice(q) : ""),
    host: String(h[":authority"] ?? h.host ?? `${d.ip}:${d.port}`),
    headers,
    started: performance.now(),
    traceparent: nextTraceparent(headers["traceparent"]?.[0], tunnel.traceId),
    requestId: headers["x-request-id"]?.[0] ?? crypto.randomUUID(),
  };
  stream.on("error", () => {});
  const body = new RequestBody({
    recordLimit: inp.limits.recordLimit,
    pauseSource: () => stream.pause(),
    resumeSource: () => stream.resume(),
  });
  stream.on("data", (c: Buffer) => body.push(c));
  stream.on("end", () => body.finish());
  stream.on("aborted", () => body.fail(new Error("client reset the stream")));
  if (stream.readableEnded) body.finish();

  let reply: LocalReply | undefined;
  try {
    reply = await decide(ctx, inp);
  } catch (e) {
    reply = { status: 500, body: "internal error", flags: "-", details: (e as Error).message };
  }
  if (!reply) {
    const r = await forwardH2(inp, ctx, stream, body);
    if ("outcome" in r) {
      inp.telemetry.record(ctx, r.outcome);
      return;
    }
    reply = r.reply;
  }
  body.discard();
  const sent = localH2(stream, ctx, reply);
  inp.telemetry.record(ctx, {
    status: reply.status,
    flags: reply.flags,
    details: reply.details,
    requestBytes: body.received,
    responseBytes: sent,
    ...(ctx.grpc ? { grpcStatus: String(grpcStatusOf(reply.status)) } : {}),
  });
}

type H2Result =
  | { reply: LocalReply }
  | { outcome: import("./telemetry.ts").RequestOutcome };

async function forwardH2(
  inp: H2Inputs,
  ctx: RequestContext,
  down: http2.ServerHttp2Stream,
  body: RequestBody,
): Promise<H2Result> {
  const plan = ctx.plan!;
  const deadline = plan.timeoutMs !== undefined ? ctx.started + plan.timeoutMs : Infinity;
  let tries = 0;
  let last: Endpoint | undefined;
  const canRetry = (o: TryOutcome) =>
    shouldRetry(plan.retry, tries - 1, o) && body.replayable && deadline - performance.now() > 0 && !down.destroyed;
  const out: http2.OutgoingHttpHeaders = {
    ":method": ctx.method,
    ":path": plan.path,
    ":authority": plan.host,
    ":scheme": "http",
  };
  for (const k in plan.headers) out[k] = plan.headers[k]!.length === 1 ? plan.headers[k]![0] : plan.headers[k];
  out["traceparent"] = ctx.traceparent;
  out["x-request-id"] ??= ctx.requestId;
  out["x-forwarded-proto"] ??= "http";

  for (;;) {
    const endpoint = tries === 0 && plan.endpoint
      ? plan.endpoint
      : plan.service
      ? inp.state.pickEndpoint(plan.service, plan.port, last)
      : plan.endpoint;
    if (!endpoint) return { reply: noHealthyUpstream("no ready endpoint") };
    // Admitted for another workload (a retry's next endpoint): its own policies decide first.
    const refused = await admitEndpoint(ctx, inp, endpoint, plan.service);
    if (refused) return { reply: refused };
    last = endpoint;
    tries++;
    const key = `${endpoint.ip}:${endpoint.port}|${ctx.tunnel.peerIdentity}|${ctx.tunnel.sourceIp}`;
    let session: http2.ClientHttp2Session;
    try {
      session = await inp.sessions.session(
        key,
        () => inp.connector.connect(endpoint, { tunnel: ctx.tunnel, service: plan.service }),
      );
    } catch (e) {
      if (canRetry({ connectionError: true })) continue;
      const f = e instanceof ConnectFailure ? e : new ConnectFailure((e as Error).message, "UF");
      return { reply: upstreamFailure(f.flag, f.message) };
    }
    type TryResult =
      | { kind: "response"; status: number; finished: Promise<{ bytes: number; grpcStatus?: string }> }
      | { kind: "failed"; outcome: TryOutcome; reason: string }
      | { kind: "timeout" };
    const result = await new Promise<TryResult>((resolve) => {
      let settled = false;
      let overall: ReturnType<typeof setTimeout> | undefined;
      let perTry: ReturnType<typeof setTimeout> | undefined;
      const settle = (v: TryResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(perTry);
        if (v.kind !== "response") clearTimeout(overall);
        resolve(v);
      };
      let up: http2.ClientHttp2Stream;
      try {
        up = session.request(out, { endStream: false });
      } catch (e) {
        settle({ kind: "failed", outcome: { connectionError: true }, reason: (e as Error).message });
        return;
      }
      const cancel = () => {
        if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
      };
      if (deadline !== Infinity) {
        overall = setTimeout(() => {
          cancel();
          if (!settled) settle({ kind: "timeout" });
          else if (!down.destroyed) down.close(http2.constants.NGHTTP2_CANCEL);
        }, Math.max(0, deadline - performance.now()));
      }
      if (plan.backendTimeoutMs !== undefined) {
        perTry = setTimeout(() => {
          cancel();
          settle({ kind: "failed", outcome: { backendTimeout: true }, reason: "per-try timeout" });
        }, plan.backendTimeoutMs);
      }
      up.on("error", (e) => settle({ kind: "failed", outcome: { connectionError: true }, reason: e.message }));
      const onEarlyClose = () => settle({ kind: "failed", outcome: { connectionError: true }, reason: "upstream stream closed" });
      up.on("close", onEarlyClose);
      up.on("drain", () => body.drained());
      if (!body.attach({ write: (c) => up.write(c), end: () => up.end() })) {
        cancel();
        settle({ kind: "failed", outcome: { connectionError: true }, reason: "request body cannot be sent again" });
        return;
      }
      up.on("response", (rh) => {
        const status = Number(rh[":status"]);
        if (canRetry({ status })) {
          cancel();
          body.detach();
          settle({ kind: "failed", outcome: { status }, reason: `status ${status}` });
          return;
        }
        up.off("close", onEarlyClose);
        let map = headerMapOfH2(rh);
        for (const m of plan.responseHeaderModifiers) map = applyHeaderModifier(map, m);
        const rsp: http2.OutgoingHttpHeaders = { ":status": status };
        for (const k in map) rsp[k] = map[k]!.length === 1 ? map[k]![0] : map[k];
        let trailers: http2.IncomingHttpHeaders | undefined;
        let bytes = 0;
        let grpcStatus: string | undefined = rh["grpc-status"] !== undefined ? String(rh["grpc-status"]) : undefined;
        const finished = new Promise<{ bytes: number; grpcStatus?: string }>((done) => {
          down.on("close", () => {
            clearTimeout(overall);
            cancel();
            done({ bytes, grpcStatus });
          });
        });
        up.on("trailers", (t) => {
          trailers = t;
          if (t["grpc-status"] !== undefined) grpcStatus = String(t["grpc-status"]);
        });
        if (down.destroyed) {
          cancel();
        } else {
          down.respond(rsp, { waitForTrailers: true });
          down.on("wantTrailers", () => {
            const t: http2.OutgoingHttpHeaders = {};
            for (const k in trailers ?? {}) if (k.charCodeAt(0) !== 0x3a) t[k] = trailers![k];
            if (Object.keys(t).length) down.sendTrailers(t);
            else down.close();
          });
          up.on("data", (c: Buffer) => {
            bytes += c.length;
            if (!down.write(c)) up.pause();
          });
          down.on("drain", () => up.resume());
          up.on("end", () => down.end());
          up.on("close", () => {
            // Reset by the workload mid-response: the client's stream is reset too.
            if (!down.writableEnded) down.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          });
        }
        settle({ kind: "response", status, finished });
      });
    });
    if (result.kind === "response") {
      const f = await result.finished;
      return {
        outcome: {
          status: result.status,
          flags: "-",
          upstream: endpoint,
          requestBytes: body.received,
          responseBytes: f.bytes,
          tries,
          ...(ctx.grpc && f.grpcStatus !== undefined ? { grpcStatus: f.grpcStatus } : {}),
        },
      };
    }
    if (result.kind === "timeout") return { reply: upstreamTimeout("request timeout") };
    if (canRetry(result.outcome)) continue;
    if ("backendTimeout" in result.outcome) return { reply: upstreamTimeout(result.reason) };
    return { reply: upstreamFailure(tries > 1 ? "URX" : "UC", result.reason) };
  }
}
