/**
 * Forwarding one HTTP/1.1 request to its backend: an endpoint (round robin), a keep-alive connection
 * to it (reused, or a new HBONE tunnel), the request sent as the route rewrote it, and the response
 * streamed back. Route timeouts (whole request, per try) answer 504; retries follow the route's policy
 * (connection failures and per-try timeouts always, listed status codes), as long as the request body
 * can be sent again. A reused connection the workload closed just before our request is retried once on
 * a new one, whatever the policy (that request never reached the workload).
 */
import { applyHeaderModifier, shouldRetry, type TryOutcome } from "../../route/mod.ts";
import type { RequestBody } from "../body.ts";
import { ConnectFailure, type UpstreamConnector } from "../connect.ts";
import type { ForwardPlan, LocalReply, RequestContext } from "../context.ts";
import { type ByteStream, copyBidirectional } from "../../stream/mod.ts";
import { badUpstreamResponse, noHealthyUpstream, upstreamFailure, upstreamTimeout } from "../local_reply.ts";
import type { Endpoint, WaypointState } from "../state.ts";
import { admitEndpoint, type StepInputs } from "../steps.ts";
import type { RequestOutcome } from "../telemetry.ts";
import type { Http1Request, Http1Response, ResponseFraming } from "./downstream.ts";
import { headerMapOf, writeFields } from "./fields.ts";
import { fieldTokens, fieldValues, type ResponseHead } from "./head.ts";
import { Http1Upstream, type Http1UpstreamPool, UpstreamFailure } from "./upstream.ts";

export interface ForwardInputs {
  state: WaypointState;
  connector: UpstreamConnector;
  pool: Http1UpstreamPool;
  /**
   * Without any route timeout, a workload that never starts its response is given up after this (504),
   * so a client never waits forever. Default 5 minutes (Envoy's stream idle timeout).
   */
  responseHeadTimeoutMs?: number;
}

export type ForwardResult = { reply: LocalReply; tries: number; upstream?: Endpoint } | { outcome: RequestOutcome };

const UNSAFE_TARGET = /[\x00-\x20\x7f]/g;
const UNSAFE_VALUE = /[\r\n\0]/g;

/** Keep-alive connections are per endpoint and client, so the tunnel's forwarded for= stays true. */
function poolKey(e: Endpoint, ctx: RequestContext): string {
  return `${e.ip}:${e.port}|${ctx.tunnel.peerIdentity}|${ctx.tunnel.sourceIp}`;
}

/** The request head sent to the workload. */
export function requestHead(ctx: RequestContext, plan: ForwardPlan, req: Http1Request): Buffer {
  const path = plan.path.replace(UNSAFE_TARGET, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase());
  let h = `${ctx.method} ${path} HTTP/1.1\r\nhost: ${plan.host.replace(UNSAFE_VALUE, "")}\r\n`;
  h = writeFields(h, plan.headers);
  if (!plan.headers["x-forwarded-proto"]) h += "x-forwarded-proto: http\r\n";
  if (!plan.headers["x-request-id"]) h += `x-request-id: ${ctx.requestId}\r\n`;
  if (plan.headers["traceparent"]) {
    // Our span replaces the client's parent in the field we send (the trace id is the client's).
    h = h.replace(/\r\ntraceparent: [^\r]*/, `\r\ntraceparent: ${ctx.traceparent}`);
  } else h += `traceparent: ${ctx.traceparent}\r\n`;
  if (req.framing.kind === "length") h += `content-length: ${req.framing.length}\r\n`;
  else if (req.framing.kind === "chunked") h += "transfer-encoding: chunked\r\n";
  if (req.upgrade) h += `connection: upgrade\r\nupgrade: ${req.upgrade}\r\n`;
  return Buffer.from(h + "\r\n", "latin1");
}

const RESPONSE_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "content-length"]);

/** The response fields sent to the client: hop-by-hop removed, the route's response modifiers applied. */
function responseFields(head: ResponseHead, plan: ForwardPlan, keepLength: boolean): string {
  const mods = plan.responseHeaderModifiers;
  const named = fieldTokens(head.fields, "connection");
  if (mods.length === 0) {
    let s = "";
    const f = head.fields;
    for (let i = 0; i < f.length; i += 2) {
      const n = f[i]!;
      if (RESPONSE_HOP.has(n) || (named.length && named.includes(n))) {
        if (keepLength && (n === "content-length" || n === "transfer-encoding")) s += n + ": " + f[i + 1] + "\r\n";
        continue;
      }
      s += n + ": " + f[i + 1] + "\r\n";
    }
    return s;
  }
  let map = headerMapOf(head.fields);
  for (const m of mods) map = applyHeaderModifier(map, m);
  let s = writeFields("", map);
  if (keepLength) for (const v of fieldValues(head.fields, "content-length")) s += `content-length: ${v}\r\n`;
  return s;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A stream of bytes as the response sink of an upstream connection. */
function sinkOf(res: Http1Response) {
  return { write: (c: Uint8Array) => res.write(c), onDrain: (fn: (() => void) | null) => res.onDrain(fn) };
}

export async function forwardHttp1(
  inp: ForwardInputs & StepInputs,
  ctx: RequestContext,
  req: Http1Request,
  res: Http1Response,
): Promise<ForwardResult> {
  const plan = ctx.plan!;
  const head = requestHead(ctx, plan, req);
  const body: RequestBody | null = req.framing.kind === "none" ? null : req.body;
  const headBytes = req.headLength;
  const start = ctx.started;
  const deadline = plan.timeoutMs !== undefined ? start + plan.timeoutMs : Infinity;
  let tries = 0;
  let staleRetried = false;
  let last: Endpoint | undefined;
  let current: Http1Upstream | null = null;
  let overallExpired = false;
  let gone = false;
  res.onClientGone(() => {
    gone = true;
    current?.destroy();
  });
  const overall = deadline !== Infinity
    ? setTimeout(() => {
      overallExpired = true;
      current?.destroy();
    }, Math.max(0, deadline - performance.now()))
    : undefined;
  const done = (r: ForwardResult): ForwardResult => {
    clearTimeout(overall);
    return r;
  };
  const timeLeft = () => deadline - performance.now() > 0;
  const canRetry = (outcome: TryOutcome) =>
    shouldRetry(plan.retry, tries - 1, outcome) && (body === null || body.replayable) && timeLeft() && !gone;
  const backoff = async () => {
    const base = plan.retry?.backoffMs ?? 25;
    await sleep(Math.min(base * (1 + Math.random()), Math.max(0, deadline - performance.now())));
  };

  for (;;) {
    if (gone) return done({ reply: upstreamFailure("DC", "client went away"), tries, upstream: last });
    const reuseEndpoint = tries === 0 && !staleRetried ? plan.endpoint : staleRetried && tries === 0 ? last : undefined;
    const endpoint = reuseEndpoint ??
      (plan.service ? inp.state.pickEndpoint(plan.service, plan.port, last) : plan.endpoint);
    if (!endpoint) {
      return done({
        reply: noHealthyUpstream(`no ready endpoint for ${plan.service ? `${plan.service.namespace}/${plan.service.name}:${plan.port}` : "the destination"}`),
        tries,
      });
    }
    // Admitted for another workload (a retry's next endpoint): its own policies decide first.
    const refused = await admitEndpoint(ctx, inp, endpoint, plan.service);
    if (refused) return done({ reply: refused, tries, upstream: endpoint });
    last = endpoint;
    tries++;
    const key = poolKey(endpoint, ctx);
    let conn = staleRetried && tries === 1 ? undefined : inp.pool.take(key);
    const reused = conn !== undefined;
    if (!conn) {
      let io: ByteStream;
      try {
        io = await withDeadline(
          inp.connector.connect(endpoint, { tunnel: ctx.tunnel, service: plan.service }),
          deadline,
        );
      } catch (e) {
        if (overallExpired || e === DEADLINE) return done({ reply: upstreamTimeout("request timeout while connecting"), tries, upstream: endpoint });
        const f = e instanceof ConnectFailure ? e : new ConnectFailure((e as Error).message, "UF");
        if (canRetry({ connectionError: true })) {
          await backoff();
          continue;
        }
        return done({ reply: upstreamFailure(tries > 1 ? "URX" : f.flag, f.message), tries, upstream: endpoint });
      }
      if (gone) {
        io.reset();
        continue;
      }
      conn = new Http1Upstream(io, key);
    }
    current = conn;
    let tryExpired = false;
    const headWait = plan.backendTimeoutMs === undefined && plan.timeoutMs === undefined
      ? inp.responseHeadTimeoutMs ?? 300_000
      : undefined;
    const perTry = plan.backendTimeoutMs !== undefined || headWait !== undefined
      ? setTimeout(() => {
        tryExpired = true;
        conn!.destroy();
      }, plan.backendTimeoutMs ?? headWait)
      : undefined;
    let response;
    try {
      response = await conn.request(head, body, {
        method: ctx.method,
        onInterim: (status, fields) => {
          const pairs: [string, string][] = [];
          for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
          res.interim(status, pairs);
        },
      });
    } catch (e) {
      clearTimeout(perTry);
      body?.detach();
      const f = e as UpstreamFailure;
      if (overallExpired) return done({ reply: upstreamTimeout("request timeout"), tries, upstream: endpoint });
      if (gone) continue;
      if (!tryExpired && reused && f.beforeResponse && !staleRetried && (body === null || body.replayable)) {
        // The workload closed this idle connection as we reused it: the request never reached it.
        staleRetried = true;
        tries--;
        continue;
      }
      const outcome: TryOutcome = tryExpired ? { backendTimeout: true } : { connectionError: true };
      if (canRetry(outcome)) {
        await backoff();
        continue;
      }
      if (tryExpired) return done({ reply: upstreamTimeout("per-try timeout"), tries, upstream: endpoint });
      if (f instanceof UpstreamFailure && f.flag === "UPE") return done({ reply: badUpstreamResponse(f.message), tries, upstream: endpoint });
      return done({ reply: upstreamFailure(tries > 1 ? "URX" : "UC", (e as Error).message), tries, upstream: endpoint });
    }
    const rh = response.head;
    // The default wait covers the response head only; a long body is the client's and workload's business.
    if (headWait !== undefined) clearTimeout(perTry);
    if (rh.status !== 101 && canRetry({ status: rh.status })) {
      clearTimeout(perTry);
      conn.destroy();
      body?.detach();
      await backoff();
      continue;
    }

    if (rh.status === 101) {
      clearTimeout(perTry);
      clearTimeout(overall);
      res.writeHead(101, rh.reason, responseFields(rh, plan, false), { kind: "none" });
      const client = res.upgraded();
      const upstream = conn.takeOver();
      const r = await copyBidirectional(client.stream, upstream.stream, { client: client.leftover, upstream: upstream.leftover });
      return {
        outcome: {
          status: 101,
          flags: r.error ? "UC" : "-",
          upstream: endpoint,
          requestBytes: headBytes + r.received,
          responseBytes: r.sent,
          tries,
        },
      };
    }

    const f = response.framing;
    const keepLength = f.kind === "none" && (ctx.method === "HEAD" || rh.status === 304);
    const framing: ResponseFraming = f.kind === "length"
      ? { kind: "length", length: f.length }
      : f.kind === "chunked"
      ? { kind: "chunked" }
      : f.kind === "close"
      ? { kind: "close" }
      : { kind: "none" };
    res.writeHead(rh.status, rh.reason, responseFields(rh, plan, keepLength), framing);
    let flags = "-";
    try {
      await conn.pipeBody(sinkOf(res));
      res.end();
    } catch (e) {
      flags = overallExpired || tryExpired ? "UT" : "UC";
      res.abort();
    }
    clearTimeout(perTry);
    clearTimeout(overall);
    if (flags === "-") {
      if (body === null || body.done) inp.pool.release(conn);
      else conn.destroy();
    }
    return {
      outcome: {
        status: rh.status,
        flags: tries > 1 && flags === "-" ? "-" : flags,
        upstream: endpoint,
        requestBytes: headBytes + (body?.received ?? 0),
        responseBytes: res.bytesWritten,
        tries,
      },
    };
  }
}

const DEADLINE = new Error("deadline");

function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  if (deadline === Infinity) return p;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      reject(DEADLINE);
      // A connection that arrives too late is closed.
      p.then((v) => (v as { reset?: () => void }).reset?.(), () => {});
    }, Math.max(0, deadline - performance.now()));
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
