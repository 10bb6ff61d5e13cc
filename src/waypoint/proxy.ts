/**
 * The waypoint's data plane, independent of how it was started: it accepts HBONE CONNECT streams,
 * checks that each names a destination this waypoint serves, and serves what flows inside (HTTP/1.1,
 * HTTP/2 with prior knowledge, or opaque TCP) through the request path. Everything it needs comes in as
 * one bundle (WaypointInputs), so tests run it with a static view, test certificates and loopback
 * sockets.
 */
import { hostOf, logger } from "../core/mod.ts";
import { type KeyResolver, trustedSource, type VerifiedTokens } from "../policy/mod.ts";
import { newTraceId, parseTraceparent } from "../telemetry/mod.ts";
import { RequestBody } from "./body.ts";
import type { UpstreamConnector } from "./connect.ts";
import type { RequestContext, Tunnel } from "./context.ts";
import { H2SessionPool, serveH2c } from "./h2c.ts";
import type { Http1Downstream, Http1Request } from "./http1/mod.ts";
import { requestHead } from "./http1/mod.ts";
import { serveHttp1 } from "./http1/mod.ts";
import { Http1Upstream, Http1UpstreamPool } from "./http1/mod.ts";
import type { HboneStreamEvents } from "../hbone/mod.ts";
import type { ByteStream } from "../stream/mod.ts";
import { authorizeConnection, serveTcp } from "./tcp.ts";
import type { RequestTelemetry } from "./telemetry.ts";
import type { WaypointState } from "./state.ts";
import { admitEndpoint } from "./steps.ts";

const log = logger("waypoint");

/** A CONNECT stream as the HBONE server hands it over (src/hbone HboneStream). */
export interface IncomingTunnel extends ByteStream {
  readonly authority: string;
  readonly headers: Record<string, string>;
  readonly peerIdentity: string;
  readonly peerAddress: string;
  respond(status: number, headers?: Record<string, string>): void;
  /** Listeners beside the consumer: protocol sniffing before one is chosen, and the open-tunnel count. */
  on<E extends keyof HboneStreamEvents>(event: E, fn: HboneStreamEvents[E]): unknown;
  off<E extends keyof HboneStreamEvents>(event: E, fn: HboneStreamEvents[E]): unknown;
}

export interface WaypointLimits {
  /** Largest HTTP/1.1 request head (431 above). Default 60 KiB (Envoy's). */
  maxHeadBytes: number;
  /** A keep-alive client connection idle this long is closed. Default 5 minutes. */
  idleTimeoutMs: number;
  /** A request head must arrive within this. Default 60 s. */
  headTimeoutMs: number;
  /** Request body bytes kept so retries and mirrors can send the body again. Default 1 MiB. */
  recordLimit: number;
  /** A mirrored request is given up after this. Default 30 s. */
  mirrorTimeoutMs: number;
  /** HTTP/1.1 without a route timeout: a response head that does not come within this is a 504. Default 5 minutes. */
  responseHeadTimeoutMs: number;
}

export interface WaypointInputs {
  state: WaypointState;
  /** Verification keys of JWT rules (src/waypoint/jwks.ts). */
  keys: KeyResolver;
  /** Tokens whose signature already verified (src/waypoint/token_cache.ts). */
  tokens?: VerifiedTokens;
  connector: UpstreamConnector;
  telemetry: RequestTelemetry;
  /** Clock for token expiry (tests). */
  now?: () => Date;
  limits?: Partial<WaypointLimits>;
}

const DEFAULT_LIMITS: WaypointLimits = {
  maxHeadBytes: 60 * 1024,
  idleTimeoutMs: 5 * 60_000,
  headTimeoutMs: 60_000,
  recordLimit: 1024 * 1024,
  mirrorTimeoutMs: 30_000,
  responseHeadTimeoutMs: 300_000,
};

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
// RFC 9110 token characters, for recognizing an HTTP/1 method.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

type Sniffed = "h2" | "http1" | "tcp" | "more";

/** What the first bytes of a tunnel are. */
export function sniff(b: Uint8Array): Sniffed {
  const n = Math.min(b.length, PREFACE.length);
  let h2 = true;
  for (let i = 0; i < n; i++) {
    if (b[i] !== PREFACE[i]) {
      h2 = false;
      break;
    }
  }
  if (h2) return n === PREFACE.length ? "h2" : "more";
  // Empty lines before a request line are allowed (RFC 9112 2.2): they must not make HTTP look like TCP.
  let start = 0;
  while (start < b.length && start < 8 && (b[start] === 0x0d || b[start] === 0x0a)) start++;
  if (start === b.length) return start >= 8 ? "tcp" : "more";
  for (let i = start; i < b.length && i < start + 24; i++) {
    const c = b[i]!;
    if (c === 0x20) return i > start ? "http1" : "tcp";
    if (c >= 128 || TCHAR[c] === 0) return "tcp";
  }
  return b.length >= start + 24 ? "tcp" : "more";
}

/** Service port protocols the waypoint does not parse, and those it must (Istio's port naming and appProtocol). */
const OPAQUE = new Set(["tcp", "tls", "https", "mongo", "mysql", "redis"]);
const HTTP = new Set(["http", "http2", "grpc", "grpc-web", "h2c"]);

function declaredProtocol(tunnel: Tunnel): "opaque" | "http" | undefined {
  const d = tunnel.destination;
  const p = d.service?.ports.find((x) => x.port === d.port);
  const raw = (p?.appProtocol ?? p?.name ?? "").toLowerCase();
  const proto = HTTP.has(raw) ? raw : raw.split("-")[0]!;
  if (OPAQUE.has(proto)) return "opaque";
  if (HTTP.has(proto)) return "http";
  return undefined;
}

export class WaypointProxy {
  readonly inputs: WaypointInputs;
  readonly limits: WaypointLimits;
  readonly http1Pool = new Http1UpstreamPool();
  readonly h2Sessions = new H2SessionPool();
  #nextId = 1;
  #downstreams = new Set<Http1Downstream>();
  #accepting = true;
  #open = 0;

  constructor(inputs: WaypointInputs) {
    this.inputs = inputs;
    this.limits = { ...DEFAULT_LIMITS, ...inputs.limits };
  }

  /** Tunnels being served. */
  get openTunnels(): number {
    return this.#open;
  }

  /** The HBONE server's onStream. */
  onStream = (t: IncomingTunnel): void => {
    const state = this.inputs.state;
    // The source ztunnel's trace for this connection (docs/hbone.md §4: one of ours when there is none).
    const traceId = parseTraceparent(t.headers.traceparent)?.traceId ?? newTraceId();
    if (!this.#accepting || !state.waypoint) {
      log.info("tunnel refused", { authority: t.authority, peer: t.peerIdentity, status: 503, reason: "the waypoint is not serving (starting or draining)", trace_id: traceId });
      t.respond(503);
      return;
    }
    const answer = state.destination(t.authority);
    if (!answer.ok) {
      log.info("tunnel refused", { authority: t.authority, peer: t.peerIdentity, status: answer.status, reason: answer.reason, trace_id: traceId });
      t.respond(answer.status);
      return;
    }
    log.debug("tunnel accepted", { authority: t.authority, peer: t.peerIdentity, trace_id: traceId });
    const peerIp = hostOf(t.peerAddress);
    const source = trustedSource(state.index, t.peerIdentity, peerIp, t.headers.forwarded);
    const tunnel: Tunnel = {
      id: this.#nextId++,
      peerIdentity: t.peerIdentity,
      peerIp,
      sourceIp: source.ip,
      sourceWorkload: source.workload,
      destination: answer.destination,
      baggage: t.headers.baggage,
      traceId,
    };
    const declared = declaredProtocol(tunnel);
    if (declared === "opaque") {
      const pre = authorizeConnection(this.#tcpInputs(), tunnel);
      if (!pre.decision.allowed) {
        log.info("tcp connection denied", { source: tunnel.peerIdentity, authority: t.authority, reason: pre.decision.reason, trace_id: traceId });
        this.inputs.telemetry.onTcpFlow?.(tunnel, { decision: pre.decision, received: 0, sent: 0, durationMs: 0 });
        t.respond(401);
        return;
      }
      t.respond(200);
      this.#track(t);
      this.#serveTcp(tunnel, t, new Uint8Array(0), pre);
      return;
    }
    t.respond(200);
    this.#track(t);
    let held: Buffer | null = null;
    const onData = (chunk: Uint8Array) => {
      const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      held = held ? Buffer.concat([held, b]) : b;
      const kind = sniff(held);
      if (kind === "more") return;
      t.off("data", onData);
      t.off("end", onEnd);
      t.pause();
      const first = held;
      held = null;
      if (kind === "tcp" && declared === "http") {
        // A port declared HTTP carries HTTP: anything else is refused, never passed on unparsed.
        log.info("tunnel refused: not HTTP on a port declared HTTP", { authority: t.authority, peer: t.peerIdentity, trace_id: traceId });
        t.reset();
        return;
      }
      this.#serve(kind, tunnel, t, first);
      t.resume();
    };
    const onEnd = () => {
      t.off("data", onData);
      if (held && declared !== "http") this.#serve("tcp", tunnel, t, held);
      else t.end();
    };
    t.on("data", onData);
    t.on("end", onEnd);
  };

  #track(t: IncomingTunnel): void {
    this.#open++;
    t.on("close", () => this.#open--);
  }

  #tcpInputs() {
    return { state: this.inputs.state, connector: this.inputs.connector, onEnd: this.inputs.telemetry.onTcpFlow };
  }

  #serveTcp(tunnel: Tunnel, t: IncomingTunnel, first: Uint8Array, pre?: Parameters<typeof serveTcp>[4]): void {
    serveTcp(this.#tcpInputs(), tunnel, t, first, pre).catch((e) => {
      // A rejection nobody awaits would end the process: this connection closes instead.
      log.error("tcp connection failed inside the waypoint", { error: (e as Error).message, stack: (e as Error).stack, trace_id: tunnel.traceId });
      if (!t.closed) t.reset();
    });
  }

  #http1Inputs() {
    const i = this.inputs;
    return {
      state: i.state,
      keys: i.keys,
      tokens: i.tokens,
      now: i.now,
      connector: i.connector,
      pool: this.http1Pool,
      responseHeadTimeoutMs: this.limits.responseHeadTimeoutMs,
      telemetry: i.telemetry,
      limits: this.limits,
      mirror: (ctx: RequestContext, req: Http1Request) =>
        void this.#mirror(ctx, req).catch((e) => log.warn("mirrored request failed", { error: (e as Error).message, trace_id: ctx.tunnel.traceId })),
    };
  }

  #serve(kind: Sniffed, tunnel: Tunnel, t: IncomingTunnel, first: Uint8Array): void {
    if (kind === "http1") {
      const d = serveHttp1(this.#http1Inputs(), tunnel, t, first);
      this.#downstreams.add(d);
      d.onClose(() => this.#downstreams.delete(d));
      if (!this.#accepting) d.drain();
    } else if (kind === "h2") {
      const i = this.inputs;
      serveH2c(
        { state: i.state, keys: i.keys, tokens: i.tokens, now: i.now, connector: i.connector, telemetry: i.telemetry, limits: this.limits, sessions: this.h2Sessions },
        tunnel,
        t,
        first,
      );
    } else {
      this.#serveTcp(tunnel, t, first);
    }
  }

  /** Fire and forget: a copy of the request to each mirror backend, its response dropped. */
  async #mirror(ctx: RequestContext, req: Http1Request): Promise<void> {
    const plan = ctx.plan!;
    const body = req.framing.kind === "none" ? [] : await req.body.complete();
    if (body === undefined) return; // too large to have been kept, or the client went away
    for (const m of plan.mirrors) {
      const svc = this.inputs.state.index.serviceByName(m.namespace, m.name);
      const endpoint = svc && this.inputs.state.pickEndpoint(svc, m.port);
      if (!svc || !endpoint) continue;
      // The copy reaches that workload as surely as the request: its policies decide whether it is sent.
      const refused = await admitEndpoint(ctx, this.inputs, endpoint, svc);
      if (refused) {
        log.info("mirrored request not sent: its backend refuses it", { mirror: `${m.namespace}/${m.name}:${m.port}`, details: refused.details, trace_id: ctx.tunnel.traceId });
        continue;
      }
      const hostname = plan.host.replace(/(:\d+)?$/, (port) => `-shadow${port}`);
      const head = requestHead(ctx, { ...plan, service: svc, port: m.port, host: hostname }, req);
      void (async () => {
        let conn: Http1Upstream | undefined;
        const timer = setTimeout(() => conn?.destroy(), this.limits.mirrorTimeoutMs);
        try {
          const io = await this.inputs.connector.connect(endpoint, { tunnel: ctx.tunnel, service: svc });
          conn = new Http1Upstream(io, "mirror");
          const copy = new RequestBody({ recordLimit: Infinity, pauseSource() {}, resumeSource() {} });
          for (const c of body) copy.push(c);
          copy.finish();
          await conn.request(head, req.framing.kind === "none" ? null : copy, { method: ctx.method });
          await conn.pipeBody({ write: () => true, onDrain() {} });
        } catch (e) {
          log.debug("mirrored request failed", { mirror: `${m.namespace}/${m.name}:${m.port}`, error: (e as Error).message });
        } finally {
          clearTimeout(timer);
          if (conn && !conn.dead) conn.io.end();
        }
      })();
    }
  }

  /** Stops taking new requests: idle keep-alive connections close, busy ones after their response. */
  drain(): void {
    this.#accepting = false;
    for (const d of this.#downstreams) d.drain();
  }

  /** Closes upstream connections. */
  close(): void {
    this.http1Pool.close();
    this.h2Sessions.close();
  }
}
