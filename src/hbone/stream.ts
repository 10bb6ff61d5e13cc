/**
 * One HBONE tunnel: an HTTP/2 CONNECT stream seen as a byte pipe with half-close and backpressure.
 *
 * The interface is allocation-light for byte splicing: `write()` returns false when the caller must
 * wait for "drain"; `pause()` stops "data" (and the peer, through the flow-control window);
 * `end()` half-closes (END_STREAM); "end" reports the peer's half-close; "close" fires once, with an
 * error when the stream was reset or its connection failed. Written chunks are kept by reference
 * until framed: do not modify them after `write()`. As with node streams, bytes are held (and the
 * peer's window with them) until a "data" listener is attached, and "end" follows the last "data".
 */
import { H2Code } from "./constants.ts";
import { HboneError, resetError } from "./errors.ts";
import type { H2Connection } from "./connection.ts";
import type { FlowState } from "./flow.ts";
import { ErrorCode, logger } from "../core/mod.ts";
import type { ByteStream, StreamEvents } from "../stream/mod.ts";

const log = logger("hbone");

/** Events of an HboneStream and their listener signatures. */
export interface HboneStreamEvents {
  data: (chunk: Uint8Array) => void;
  end: () => void;
  drain: () => void;
  close: (error?: HboneError) => void;
}
type Ev = keyof HboneStreamEvents;

type AnyFn = (...a: never[]) => void;

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

// State bits
const S_RESPONDED = 1; // response HEADERS sent (server) or a final response received (client)
const S_OPEN = 2; // 2xx: DATA may flow
const S_END_CALLED = 4; // end() called; END_STREAM goes out once pending data is framed
const S_END_SENT = 8;
const S_REMOTE_ENDED = 16; // END_STREAM received
const S_END_EMITTED = 32;
const S_PAUSED = 64;
const S_CLOSED = 128;

export class HboneStream implements FlowState, ByteStream {
  readonly id: number;
  /** @internal */ readonly conn: H2Connection;

  /** CONNECT target (`ip:port` or `host:port`): the request's :authority. */
  authority = "";
  /** Request headers (server side) or response headers (client side), names in lower case. */
  headers: Record<string, string> = NO_HEADERS;
  /** HTTP status of the CONNECT response (client side), or the one sent (server side). 0 until known. */
  status = 0;
  /** Payload bytes received from / sent to the peer. */
  bytesRead = 0;
  bytesWritten = 0;

  /** @internal window the peer granted us for this stream */ sendWindow: number;
  /** @internal bytes the peer may still send before a WINDOW_UPDATE */ recvWindow: number;
  /** @internal consumed bytes not yet returned to the peer */ recvUnacked = 0;
  /** @internal set by the pool: called once with the final response or the failure */
  onResponse: ((s: HboneStream, err?: HboneError) => void) | null = null;

  #state = 0;
  #pending: Uint8Array[] | null = null;
  #pendingOff = 0;
  #pendingBytes = 0;
  #inbox: Uint8Array[] | null = null;
  #inboxBytes = 0;
  #on: { [K in Ev]?: AnyFn | AnyFn[] } | null = null;
  #sink: StreamEvents | null = null;

  /** @internal */
  constructor(conn: H2Connection, id: number, sendWindow: number, recvWindow: number) {
    this.conn = conn;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** The peer's SPIFFE ID (URI SAN of its certificate). */
  get peerIdentity(): string {
    return this.conn.peerIdentity;
  }
  /** Peer socket address `ip:port` (for the server: the client ztunnel/waypoint). */
  get peerAddress(): string {
    return this.conn.peerAddress;
  }
  /** Local socket address `ip:port` of the connection. */
  get localAddress(): string {
    return this.conn.localAddress;
  }
  /** Whatever the server's certificate callback returned as `context` for this connection. */
  get context(): unknown {
    return this.conn.context;
  }
  /**
   * The connection carrying this stream is going away (GOAWAY either way, e.g. the peer drains for a
   * restart): let what is in flight finish, start nothing new on it.
   */
  get retiring(): boolean {
    return this.conn.draining;
  }
  get closed(): boolean {
    return (this.#state & S_CLOSED) !== 0;
  }
  /** True once the peer half-closed and every received byte was delivered. */
  get readableEnded(): boolean {
    return (this.#state & S_END_EMITTED) !== 0;
  }
  get writableEnded(): boolean {
    return (this.#state & S_END_CALLED) !== 0;
  }
  /** Bytes accepted by write() but not framed yet (waiting for window or socket). */
  get writableLength(): number {
    return this.#pendingBytes;
  }

  on<E extends Ev>(event: E, fn: HboneStreamEvents[E]): this {
    const on = (this.#on ??= {});
    const cur = on[event];
    if (cur === undefined) on[event] = fn as AnyFn;
    else if (typeof cur === "function") on[event] = [cur, fn as AnyFn];
    else cur.push(fn as AnyFn);
    // Like a node stream, a stream flows once someone listens for "data": deliver what waited.
    if (event === "data" && cur === undefined && (this.#inboxBytes > 0 || this.#state & S_REMOTE_ENDED)) {
      queueMicrotask(() => this.#drainInbox());
    }
    return this;
  }

  off<E extends Ev>(event: E, fn: HboneStreamEvents[E]): this {
    const on = this.#on;
    const cur = on?.[event];
    if (!on || cur === undefined) return this;
    if (cur === fn) delete on[event];
    else if (Array.isArray(cur)) {
      const i = cur.indexOf(fn as AnyFn);
      if (i >= 0) cur.splice(i, 1);
    }
    return this;
  }

  once<E extends Ev>(event: E, fn: HboneStreamEvents[E]): this {
    const wrap = ((...a: never[]) => {
      this.off(event, wrap as HboneStreamEvents[E]);
      (fn as AnyFn)(...a);
    }) as HboneStreamEvents[E];
    return this.on(event, wrap);
  }

  /**
   * Sends every event to `events` (one object: no closure per stream), replacing the previous
   * consumer; like a "data" listener, this starts the flow. Listeners added with on() still run too.
   */
  bind(events: StreamEvents): void {
    if (this.#state & S_CLOSED) {
      // Closed already (its close went to nobody, or to an earlier consumer) and what it held is gone:
      // to this consumer that is an abort.
      events.close(new HboneError(ErrorCode.Http2Stream, "Stream closed before it was consumed"));
      return;
    }
    this.#sink = events;
    if (this.#inboxBytes > 0 || this.#state & S_REMOTE_ENDED) queueMicrotask(() => this.#drainInbox());
  }

  /** Runs the listeners; one that throws costs its own stream (INTERNAL_ERROR), never the connection. */
  #emit(event: Ev, arg?: unknown): void {
    try {
      this.#dispatch(event, arg);
    } catch (e) {
      log.error("hbone stream listener threw: stream reset", { event, stream: this.id, error: (e as Error)?.message });
      if (event !== "close") this.reset(H2Code.INTERNAL_ERROR);
    }
  }

  #dispatch(event: Ev, arg?: unknown): void {
    const sink = this.#sink;
    if (sink !== null) {
      switch (event) {
        case "data":
          sink.data(arg as Uint8Array);
          break;
        case "end":
          sink.end();
          break;
        case "drain":
          sink.drain();
          break;
        case "close":
          sink.close(arg as HboneError | undefined);
          break;
      }
    }
    const cur = this.#on?.[event];
    if (cur === undefined) return;
    if (typeof cur === "function") (cur as (a?: unknown) => void)(arg);
    else for (const f of cur.slice()) (f as (a?: unknown) => void)(arg);
  }

  /**
   * Sends bytes through the tunnel. Returns false when the caller should wait for "drain" before
   * writing more (the bytes are still sent). Writing after end() or close is ignored.
   */
  write(chunk: Uint8Array): boolean {
    const st = this.#state;
    if (st & (S_END_CALLED | S_CLOSED)) return false;
    if (!(st & S_OPEN)) throw new HboneError(ErrorCode.Http2Stream, "Cannot write to a stream before a 2xx response");
    if (chunk.length === 0) return this.#pendingBytes === 0;
    this.bytesWritten += chunk.length;
    if (this.#pendingBytes === 0) {
      const sent = this.conn.sendData(this, chunk, 0, chunk.length);
      if (sent === chunk.length) return true;
      this.#pending = [chunk];
      this.#pendingOff = sent;
      this.#pendingBytes = chunk.length - sent;
      this.conn.markBlocked(this);
      return false;
    }
    this.#pending!.push(chunk);
    this.#pendingBytes += chunk.length;
    return false;
  }

  /** Half-closes: END_STREAM after the pending bytes. The peer can still send until it ends too. */
  end(): void {
    const st = this.#state;
    if (st & (S_END_CALLED | S_CLOSED)) return;
    if (!(st & S_OPEN)) throw new HboneError(ErrorCode.Http2Stream, "Cannot end a stream before a 2xx response");
    this.#state |= S_END_CALLED;
    if (this.#pendingBytes === 0) this.#sendEnd();
  }

  /** Delivering "data" now: not paused and somebody listens. */
  #flowing(): boolean {
    return !(this.#state & S_PAUSED) && (this.#sink !== null || this.#on?.data !== undefined);
  }

  /** Stops "data" events; the peer stops sending once the stream window is used up. */
  pause(): void {
    this.#state |= S_PAUSED;
  }

  /** Resumes "data" events, delivering what arrived while paused first. */
  resume(): void {
    if (!(this.#state & S_PAUSED)) return;
    this.#state &= ~S_PAUSED;
    this.#drainInbox();
  }

  get isPaused(): boolean {
    return (this.#state & S_PAUSED) !== 0;
  }

  /** Aborts the stream in both directions with RST_STREAM (default CANCEL). */
  reset(code: number = H2Code.CANCEL): void {
    if (this.#state & S_CLOSED) return;
    this.conn.sendReset(this.id, code);
    this.destroy(resetError(code, "local"));
  }

  /**
   * Server side: answers the CONNECT. 2xx opens the tunnel; any other status ends the stream (the
   * client sees an HboneError with that status). Extra header names must be lower case.
   */
  respond(status: number, headers?: Record<string, string>): void {
    if (this.#state & (S_RESPONDED | S_CLOSED)) return;
    if (this.conn.isClient) throw new HboneError(ErrorCode.Http2Stream, "Only a server stream can respond");
    this.#state |= S_RESPONDED;
    this.status = status;
    const ok = status >= 200 && status < 300;
    if (ok) this.#state |= S_OPEN;
    this.conn.sendResponse(this, status, headers, !ok);
    if (!ok) {
      // The request half may still be open: ask the client to stop without error (RFC 9113 8.1).
      this.#state |= S_END_CALLED | S_END_SENT;
      if (!(this.#state & S_REMOTE_ENDED)) this.conn.sendReset(this.id, H2Code.NO_ERROR);
      this.destroy();
    }
  }

  // ---- called by the connection ------------------------------------------------------------------

  /** @internal a final response arrived (client side) */
  gotResponse(status: number, headers: Record<string, string>): void {
    this.#state |= S_RESPONDED;
    this.status = status;
    this.headers = headers;
    if (status >= 200 && status < 300) this.#state |= S_OPEN;
    const cb = this.onResponse;
    this.onResponse = null;
    cb?.(this);
  }

  /** @internal */
  get responded(): boolean {
    return (this.#state & S_RESPONDED) !== 0;
  }

  /** @internal */
  get remoteEnded(): boolean {
    return (this.#state & S_REMOTE_ENDED) !== 0;
  }

  /** @internal payload from a DATA frame */
  gotData(chunk: Uint8Array): void {
    this.bytesRead += chunk.length;
    if (this.#inboxBytes > 0 || !this.#flowing()) {
      // The chunk is a view into a socket buffer Bun hands over for good, so keeping it is safe.
      (this.#inbox ??= []).push(chunk);
      this.#inboxBytes += chunk.length;
      return;
    }
    this.conn.consumed(this, chunk.length);
    this.#emit("data", chunk);
  }

  /** @internal END_STREAM received */
  gotEnd(): void {
    this.#state |= S_REMOTE_ENDED;
    if (this.#inboxBytes === 0 && this.#flowing()) this.#emitEnd();
  }

  /** @internal the connection framed more of our pending bytes */
  flushPending(): void {
    while (this.#pending !== null && this.#pendingBytes > 0) {
      const head = this.#pending[0];
      const len = head.length - this.#pendingOff;
      const sent = this.conn.sendData(this, head, this.#pendingOff, len);
      this.#pendingBytes -= sent;
      if (sent < len) {
        this.#pendingOff += sent;
        return;
      }
      this.#pending.shift();
      this.#pendingOff = 0;
    }
    this.#pending = null;
    this.conn.unmarkBlocked(this);
    if (this.#state & S_END_CALLED) this.#sendEnd();
    if (!(this.#state & S_CLOSED)) this.#emit("drain");
  }

  /** @internal ends the stream locally (no frame sent) and fires "close" once */
  destroy(err?: HboneError): void {
    if (this.#state & S_CLOSED) return;
    this.#state |= S_CLOSED;
    // Bytes the application never took: give the connection window back so other streams go on.
    if (this.#inboxBytes > 0) this.conn.consumed(this, this.#inboxBytes, true);
    this.#inbox = null;
    this.#inboxBytes = 0;
    this.#pending = null;
    this.#pendingBytes = 0;
    this.conn.streamClosed(this);
    const cb = this.onResponse;
    if (cb) {
      this.onResponse = null;
      cb(this, err ?? new HboneError(ErrorCode.Http2Stream, "Stream closed before a response", { retryable: false }));
    }
    this.#emit("close", err);
    this.#on = null;
    this.#sink = null;
  }

  #sendEnd(): void {
    if (this.#state & (S_END_SENT | S_CLOSED)) return;
    this.#state |= S_END_SENT;
    this.conn.sendEnd(this);
    this.#maybeClose();
  }

  #emitEnd(): void {
    if (this.#state & (S_END_EMITTED | S_CLOSED)) return;
    this.#state |= S_END_EMITTED;
    this.#emit("end");
    this.#maybeClose();
  }

  #drainInbox(): void {
    if (this.#state & S_CLOSED || !this.#flowing()) return;
    while (this.#inbox !== null && this.#inboxBytes > 0) {
      if (this.#state & S_CLOSED || !this.#flowing()) return;
      const chunk = this.#inbox.shift()!;
      this.#inboxBytes -= chunk.length;
      this.conn.consumed(this, chunk.length);
      this.#emit("data", chunk);
    }
    this.#inbox = null;
    if (this.#state & S_REMOTE_ENDED) this.#emitEnd();
  }

  #maybeClose(): void {
    const both = S_END_SENT | S_END_EMITTED;
    if ((this.#state & both) === both) this.destroy();
  }
}
