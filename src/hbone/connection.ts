/**
 * One HTTP/2 connection (RFC 9113) carrying HBONE CONNECT streams, client or server side.
 *
 * Transport-neutral: bytes come in through `receive()`, go out through a `Transport` (a Bun TLS
 * socket in production, an in-memory pipe in the fuzz tests). What this file owns: the frame state
 * machine, stream lifecycle, both directions of flow control, SETTINGS, PING keepalive and GOAWAY.
 *
 * Error policy (RFC 9113 5.4): a stream error costs one stream (RST_STREAM); only violations that
 * desynchronise the connection (framing, HPACK, connection window) end it with GOAWAY.
 */
import { ErrorCode, logger, parseHostPort } from "../core/mod.ts";
import {
  DEFAULT_WINDOW,
  Flag,
  FrameType,
  H2Code,
  h2CodeName,
  MAX_WINDOW,
  PREFACE,
} from "./constants.ts";
import { H2ProtocolError, HboneError, resetError } from "./errors.ts";
import {
  type FrameHandler,
  FrameParser,
  writeData,
  writeGoaway,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from "./frame.ts";
import { type FlowState, growSendWindow, receiveBytes, releaseBytes, sendable, spend } from "./flow.ts";
import { checkRequest, checkResponse } from "./headers.ts";
import { applyPeerSettings, defaultSettings, type H2Settings, initialPeerSettings, ourSettings, type PeerSettings } from "./settings.ts";
import { HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";
import { OutBuf } from "./outbuf.ts";

export type { H2Settings } from "./settings.ts";
import { HboneStream } from "./stream.ts";

/** Where a connection writes. Bun's Socket fits: write(data, offset, length) -> bytes taken or -1. */
export interface Transport {
  write(data: Uint8Array, offset: number, length: number): number;
  /** Graceful close once written bytes are out. */
  end(): void;
  /** Immediate close. */
  terminate(): void;
  /** Stop / restart reading (bounded memory when the peer does not read our replies). */
  pause?(): void;
  resume?(): void;
  /** Close the transport after this many idle seconds (0 disables). */
  timeout?(seconds: number): void;
}

/** Facts about the peer, filled in by the TLS layer. */
export interface PeerInfo {
  peerIdentity: string;
  peerAddress: string;
  localAddress: string;
  context?: unknown;
}

/** Framed-but-unsent bytes above which streams stop framing DATA and wait for the socket. */
const OUT_HIGH = 1 << 20;
/** Above this (control frames piling up because the peer does not read), we stop reading. */
const OUT_HARD = 4 << 20;
/** Bytes waiting from which a flush does not wait for the end of the event-loop turn (see #scheduleFlush). */
const BULK_FLUSH = 16 * 1024;
/** Largest header block (HEADERS + CONTINUATION) we assemble before giving up on the peer. */
const MAX_HEADER_BLOCK = 256 * 1024;

const log = logger("hbone");

const KEEPALIVE = new Uint8Array([0x68, 0x62, 0x6f, 0x6e, 0x65, 0x6b, 0x61, 0x00]); // "hbonekal"

export class H2Connection implements FrameHandler, PeerInfo {
  readonly isClient: boolean;
  readonly settings: H2Settings;
  peerIdentity = "";
  peerAddress = "";
  localAddress = "";
  context: unknown = undefined;

  /** Server: a new CONNECT stream arrived. */
  onStream: ((s: HboneStream) => void) | null = null;
  /** The connection is gone (error when it failed). */
  onClose: ((err?: HboneError) => void) | null = null;
  /** GOAWAY received, or we started draining: no new streams on this connection. */
  onDrain: (() => void) | null = null;

  #peer: PeerSettings = initialPeerSettings();
  #gotPeerSettings = false;

  /** Connection-level flow control. */
  #flow: FlowState = { sendWindow: DEFAULT_WINDOW, recvWindow: DEFAULT_WINDOW, recvUnacked: 0 };

  #streams = new Map<number, HboneStream>();
  #blocked = new Set<HboneStream>();
  #nextLocalId: number;
  #lastPeerId = 0;
  #localOpen = 0;
  #peerOpen = 0;

  #parser: FrameParser;
  #decoder = new HpackDecoder();
  #encoder = new HpackEncoder({ skipIndexing: ["traceparent", "forwarded"] });
  #out = new OutBuf();
  #t: Transport;
  #flushQueued = false;
  #waitingDrain = false;
  #readPaused = false;

  // header block being assembled across CONTINUATION frames
  #contStream = 0;
  #contFlags = 0;
  #contParts: Uint8Array[] | null = null;
  #contBytes = 0;

  // DATA frame being received
  #dataStream: HboneStream | null = null;
  #dataLen = 0;
  #dataDelivered = 0;

  #goawaySent = false;
  #goawayReceived = false;
  #closing = false;
  #closed = false;
  #lastRecv = Date.now();
  #pingSentAt = 0;
  #pings: { data: Uint8Array; resolve: (rtt: number) => void; reject: (e: Error) => void; at: number }[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(transport: Transport, opts: { isClient: boolean; settings?: Partial<H2Settings> }) {
    this.isClient = opts.isClient;
    this.settings = { ...defaultSettings(opts.isClient), ...opts.settings };
    this.#t = transport;
    this.#nextLocalId = opts.isClient ? 1 : 2;
    this.#parser = new FrameParser(this, { expectPreface: !opts.isClient, maxFrameSize: this.settings.maxFrameSize });
  }

  /** Sends the preface (client) and our SETTINGS; call once the transport is ready. */
  start(): void {
    const s = this.settings;
    if (this.isClient) this.#out.bytes(PREFACE);
    const list = ourSettings(s, this.isClient);
    writeSettings(this.#out, list);
    if (s.connectionWindow > DEFAULT_WINDOW) {
      writeWindowUpdate(this.#out, 0, s.connectionWindow - DEFAULT_WINDOW);
      this.#flow.recvWindow = s.connectionWindow;
    }
    this.#flush();
    if (s.pingIntervalMs > 0) {
      const tick = Math.min(s.pingIntervalMs, s.pingTimeoutMs) / 2;
      this.#timer = setInterval(() => this.#keepalive(), tick);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  // ---- public state ------------------------------------------------------------------------------

  get closed(): boolean {
    return this.#closed;
  }
  /** True after GOAWAY in either direction or close(): the pool must not open new streams here. */
  get draining(): boolean {
    return this.#goawaySent || this.#goawayReceived || this.#closing || this.#closed;
  }
  /** Streams this side opened and that are still open. */
  get localStreams(): number {
    return this.#localOpen;
  }
  get peerStreams(): number {
    return this.#peerOpen;
  }
  /** Streams the peer lets us have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  get peerMaxConcurrentStreams(): number {
    return this.#peer.maxConcurrentStreams;
  }
  get hasPeerSettings(): boolean {
    return this.#gotPeerSettings;
  }
  /** Bytes framed and waiting for the socket (for tests and metrics). */
  get bufferedBytes(): number {
    return this.#out.length;
  }

  /** Client: opens a CONNECT stream. `fields` is the request field section (flat list). */
  openStream(fields: readonly string[]): HboneStream {
    if (!this.isClient) throw new HboneError(ErrorCode.Http2Stream, "Only a client opens CONNECT streams");
    if (this.draining) {
      throw new HboneError(ErrorCode.Http2Stream, "Connection is draining: open the stream on a new connection", {
        retryable: true,
      });
    }
    const id = this.#nextLocalId;
    this.#nextLocalId += 2;
    if (this.#nextLocalId > MAX_WINDOW) this.#startDrain(); // stream ids exhausted: no more after this one
    const s = new HboneStream(this, id, this.#peer.initialWindow, this.settings.streamWindow);
    this.#streams.set(id, s);
    this.#localOpen++;
    writeHeaders(this.#out, id, this.#encoder.encode(fields), false, this.#peer.maxFrameSize);
    this.#scheduleFlush();
    return s;
  }

  /** Measures a round trip with PING (liveness check). */
  ping(timeoutMs = 10_000): Promise<number> {
    if (this.#closed) return Promise.reject(new HboneError(ErrorCode.Unreachable, "Connection closed"));
    const data = crypto.getRandomValues(new Uint8Array(8));
    return new Promise<number>((resolve, reject) => {
      const entry = { data, resolve, reject, at: performance.now() };
      this.#pings.push(entry);
      writePing(this.#out, false, data);
      this.#scheduleFlush();
      const t = setTimeout(() => {
        const i = this.#pings.indexOf(entry);
        if (i >= 0) {
          this.#pings.splice(i, 1);
          reject(new HboneError(ErrorCode.Unreachable, `No PING answer within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      (t as { unref?: () => void }).unref?.();
    });
  }

  /**
   * Graceful close: GOAWAY, streams in flight finish, then the socket closes. With `timeoutMs`,
   * streams still open after it are reset.
   */
  close(timeoutMs?: number): void {
    if (this.#closed) return;
    this.#startDrain();
    this.#closing = true;
    if (this.#streams.size === 0) this.#finish();
    else if (timeoutMs !== undefined) {
      const t = setTimeout(() => this.destroy(), timeoutMs);
      (t as { unref?: () => void }).unref?.();
    }
  }

  /** Immediate close: every stream fails. */
  destroy(err?: HboneError, code: number = H2Code.NO_ERROR): void {
    if (this.#closed) return;
    if (!this.#goawaySent) {
      this.#goawaySent = true;
      writeGoaway(this.#out, this.#lastPeerId, code, err?.message.slice(0, 120) ?? "");
      this.#flush();
    }
    this.#teardown(err ?? new HboneError(ErrorCode.Http2Stream, "Connection closed", { retryable: false }));
    this.#endTransport();
  }

  // ---- transport events --------------------------------------------------------------------------

  /** Bytes from the socket. */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#lastRecv = Date.now();
    try {
      this.#parser.push(chunk);
    } catch (e) {
      this.#connectionError(e);
    }
    this.#flush();
  }

  /** The socket can take more bytes. */
  writable(): void {
    this.#waitingDrain = false;
    this.#flush();
  }

  /** The socket closed (or the peer sent FIN: a connection-level end for HTTP/2). */
  transportClosed(err?: Error): void {
    if (this.#closed) return;
    const clean = !err && this.#streams.size === 0;
    this.#teardown(
      clean ? undefined : new HboneError(ErrorCode.Unreachable, `Connection lost${err ? `: ${err.message}` : ""}`, {
        cause: err,
        retryable: false,
      }),
    );
    this.#t.terminate();
  }

  // ---- used by streams ---------------------------------------------------------------------------

  /** @internal frames up to `len` bytes as DATA within the windows; returns how many were framed */
  sendData(s: HboneStream, data: Uint8Array, off: number, len: number): number {
    if (this.#closed || this.#out.length >= OUT_HIGH) return 0;
    let room = sendable(this.#flow, s, Math.min(len, OUT_HIGH * 2 - this.#out.length));
    if (room === 0) return 0;
    const total = room;
    const max = this.#peer.maxFrameSize;
    while (room > 0) {
      const n = room < max ? room : max;
      writeData(this.#out, s.id, data, off, n, false);
      off += n;
      room -= n;
    }
    spend(this.#flow, s, total);
    this.#scheduleFlush();
    return total;
  }

  /** @internal */
  sendEnd(s: HboneStream): void {
    if (this.#closed) return;
    writeData(this.#out, s.id, EMPTY, 0, 0, true);
    this.#scheduleFlush();
  }

  /** @internal */
  sendReset(id: number, code: number): void {
    if (this.#closed) return;
    writeRstStream(this.#out, id, code);
    this.#scheduleFlush();
  }

  /** @internal */
  sendResponse(s: HboneStream, status: number, headers: Record<string, string> | undefined, endStream: boolean): void {
    if (this.#closed) return;
    const fields = [":status", String(status)];
    if (headers) for (const k in headers) fields.push(k.toLowerCase(), headers[k]);
    writeHeaders(this.#out, s.id, this.#encoder.encode(fields), endStream, this.#peer.maxFrameSize);
    this.#scheduleFlush();
  }

  /** @internal the application took `n` bytes of stream `s`: give the window back in batches */
  consumed(s: HboneStream | null, n: number, discarded = false): void {
    if (this.#closed) return;
    const conn = releaseBytes(this.#flow, n, this.settings.connectionWindow);
    if (conn > 0) {
      writeWindowUpdate(this.#out, 0, conn);
      this.#scheduleFlush();
    }
    // A stream the peer has finished sending on needs no more window.
    if (s === null || discarded || s.remoteEnded || s.closed) return;
    const inc = releaseBytes(s, n, this.settings.streamWindow);
    if (inc > 0) {
      writeWindowUpdate(this.#out, s.id, inc);
      this.#scheduleFlush();
    }
  }

  /** @internal */
  markBlocked(s: HboneStream): void {
    this.#blocked.add(s);
  }
  /** @internal */
  unmarkBlocked(s: HboneStream): void {
    this.#blocked.delete(s);
  }

  /** @internal the stream is done: forget it */
  streamClosed(s: HboneStream): void {
    if (this.#streams.get(s.id) !== s) return;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    if ((s.id & 1) === (this.isClient ? 1 : 0)) this.#localOpen--;
    else this.#peerOpen--;
    if (this.#streams.size === 0 && (this.#closing || this.#goawayReceived) && !this.#closed) {
      queueMicrotask(() => {
        if (this.#streams.size === 0 && !this.#closed) this.#finish();
      });
    }
  }

  // ---- frame handling (FrameHandler) -------------------------------------------------------------

  onFrame(type: number, flags: number, id: number, p: Uint8Array): void {
    if (this.#contStream !== 0 && type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "Expected CONTINUATION");
    }
    if (!this.#gotPeerSettings && !(type === FrameType.SETTINGS && !(flags & Flag.ACK))) {
      throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "First frame is not SETTINGS");
    }
    switch (type) {
      case FrameType.HEADERS:
        return this.#onHeaders(flags, id, p);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, id, p);
      case FrameType.PRIORITY:
        if (id === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (p.length !== 5) return this.#streamError(id, H2Code.FRAME_SIZE_ERROR);
        if (((p[0] & 0x7f) << 24 | p[1] << 16 | p[2] << 8 | p[3]) === id) return this.#streamError(id, H2Code.PROTOCOL_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#onRst(id, p);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, p);
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "PUSH_PROMISE is disabled");
      case FrameType.PING:
        return this.#onPing(flags, id, p);
      case FrameType.GOAWAY:
        return this.#onGoaway(id, p);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, p);
      default:
        return; // unknown frame types are ignored (RFC 9113 5.5)
    }
  }

  onDataFrame(id: number, _flags: number, length: number): void {
    if (this.#contStream !== 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "Expected CONTINUATION");
    if (!this.#gotPeerSettings) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "First frame is not SETTINGS");
    if (id === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "DATA on stream 0");
    if (!receiveBytes(this.#flow, length)) {
      throw new H2ProtocolError(H2Code.FLOW_CONTROL_ERROR, "Connection window exceeded");
    }
    this.#dataLen = length;
    this.#dataDelivered = 0;
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      // A stream we already closed: frames in flight are ignored, their window returned (onDataEnd).
      this.#dataStream = null;
      return;
    }
    if (s.remoteEnded || (!s.responded && this.isClient)) {
      // After END_STREAM: STREAM_CLOSED; before the response HEADERS: a malformed response.
      this.#dataStream = null;
      this.#streamError(id, s.remoteEnded ? H2Code.STREAM_CLOSED : H2Code.PROTOCOL_ERROR);
      return;
    }
    if (!receiveBytes(s, length)) {
      this.#dataStream = null;
      this.#streamError(id, H2Code.FLOW_CONTROL_ERROR);
      return;
    }
    this.#dataStream = s;
  }

  onData(_id: number, chunk: Uint8Array): void {
    const s = this.#dataStream;
    if (s === null || s.closed) return;
    this.#dataDelivered += chunk.length;
    s.gotData(chunk);
  }

  onDataEnd(_id: number, flags: number): void {
    // Padding, and data for streams that no longer exist, is consumed right away.
    const unused = this.#dataLen - this.#dataDelivered;
    const s = this.#dataStream;
    this.#dataStream = null;
    if (unused > 0) this.consumed(s, unused);
    if (s !== null && !s.closed && flags & Flag.END_STREAM) s.gotEnd();
  }

  // ---- frame types -------------------------------------------------------------------------------

  #onHeaders(flags: number, id: number, p: Uint8Array): void {
    if (id === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "HEADERS on stream 0");
    let start = 0;
    let end = p.length;
    if (flags & Flag.PADDED) {
      if (p.length < 1) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "HEADERS too short for padding");
      const pad = p[0];
      start = 1;
      if (pad > end - start) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "HEADERS padding longer than the frame");
      end -= pad;
    }
    if (flags & Flag.PRIORITY) {
      if (end - start < 5) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "HEADERS too short for priority");
      start += 5;
    }
    const fragment = p.subarray(start, end);
    if (flags & Flag.END_HEADERS) {
      this.#onHeaderBlock(id, flags, fragment);
      return;
    }
    this.#contStream = id;
    this.#contFlags = flags;
    // Copy: the frame view points into a socket chunk, and more chunks are needed to finish.
    this.#contParts = [fragment.slice()];
    this.#contBytes = fragment.length;
  }

  #onContinuation(flags: number, id: number, p: Uint8Array): void {
    if (this.#contStream === 0 || id !== this.#contStream) {
      throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    }
    this.#contBytes += p.length;
    if (this.#contBytes > MAX_HEADER_BLOCK) {
      throw new H2ProtocolError(H2Code.ENHANCE_YOUR_CALM, "Header block too large");
    }
    this.#contParts!.push(p.slice());
    if (!(flags & Flag.END_HEADERS)) return;
    const block = new Uint8Array(this.#contBytes);
    let o = 0;
    for (const part of this.#contParts!) {
      block.set(part, o);
      o += part.length;
    }
    this.#contStream = 0;
    this.#contParts = null;
    this.#onHeaderBlock(id, this.#contFlags, block);
  }

  #onHeaderBlock(id: number, flags: number, block: Uint8Array): void {
    let fields: string[];
    try {
      fields = this.#decoder.decode(block);
    } catch (e) {
      if (e instanceof HpackError) throw new H2ProtocolError(H2Code.COMPRESSION_ERROR, e.message);
      throw e;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const s = this.#streams.get(id);
    if (this.isClient) {
      if (s === undefined) {
        if (this.#isIdle(id)) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
        return; // a stream we reset: ignore
      }
      return this.#onResponseHeaders(s, fields, endStream);
    }
    if (s !== undefined) {
      // Trailers or a second HEADERS on a CONNECT stream: not allowed (RFC 9113 8.5).
      return this.#streamError(id, H2Code.PROTOCOL_ERROR);
    }
    if ((id & 1) === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, `Client stream id ${id} is even`);
    if (id <= this.#lastPeerId) return; // a closed stream: frames in flight after our reset
    this.#lastPeerId = id;
    if (this.#goawaySent) {
      writeRstStream(this.#out, id, H2Code.REFUSED_STREAM);
      return;
    }
    if (this.#peerOpen >= this.settings.maxConcurrentStreams) {
      writeRstStream(this.#out, id, H2Code.REFUSED_STREAM);
      return;
    }
    const req = checkRequest(fields);
    const stream = new HboneStream(this, id, this.#peer.initialWindow, this.settings.streamWindow);
    this.#streams.set(id, stream);
    this.#peerOpen++;
    if (!req.ok) {
      writeRstStream(this.#out, id, H2Code.PROTOCOL_ERROR);
      stream.destroy(resetError(H2Code.PROTOCOL_ERROR, "local"));
      return;
    }
    stream.authority = req.authority;
    stream.headers = req.headers;
    if (endStream) stream.gotEnd();
    if (this.#decoder.lastListSize > this.settings.maxHeaderListSize) {
      stream.respond(431);
      return;
    }
    // docs/hbone.md §4: not a CONNECT, or an authority that is not host:port -> 400.
    if (req.method !== "CONNECT" || parseHostPort(req.authority) === undefined) {
      stream.respond(400);
      return;
    }
    if (this.onStream === null) {
      stream.respond(503);
      return;
    }
    try {
      this.onStream(stream);
    } catch (e) {
      // A handler bug costs this stream, not the connection and its other tunnels.
      log.error("hbone stream handler threw: stream reset", { error: (e as Error)?.message });
      stream.reset(H2Code.INTERNAL_ERROR);
    }
  }

  #onResponseHeaders(s: HboneStream, fields: string[], endStream: boolean): void {
    if (s.responded) {
      // Trailers on a CONNECT stream are not allowed (RFC 9113 8.5).
      return this.#streamError(s.id, H2Code.PROTOCOL_ERROR);
    }
    if (this.#decoder.lastListSize > this.settings.maxHeaderListSize) return this.#streamError(s.id, H2Code.PROTOCOL_ERROR);
    const res = checkResponse(fields);
    if (!res.ok || res.status === 101) return this.#streamError(s.id, H2Code.PROTOCOL_ERROR);
    if (res.status < 200) {
      if (endStream) this.#streamError(s.id, H2Code.PROTOCOL_ERROR);
      return; // informational: wait for the final response
    }
    s.gotResponse(res.status, res.headers);
    if (endStream && !s.closed) s.gotEnd();
  }

  #onRst(id: number, p: Uint8Array): void {
    if (id === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (p.length !== 4) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "RST_STREAM length is not 4");
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
      return;
    }
    const code = ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
    const err = resetError(code, "peer");
    // REFUSED_STREAM means the server did no work: the request may go again on another connection.
    if (code === H2Code.REFUSED_STREAM) {
      s.destroy(new HboneError(ErrorCode.Http2Stream, "Stream refused by peer", { h2Code: code, retryable: true }));
    } else s.destroy(err);
  }

  #onSettings(flags: number, id: number, p: Uint8Array): void {
    if (id !== 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (p.length !== 0) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    const peer = this.#peer;
    const before = peer.initialWindow;
    applyPeerSettings(p, peer, this.isClient);
    if (peer.headerTableSize !== undefined) this.#encoder.setMaxTableSize(peer.headerTableSize);
    const delta = peer.initialWindow - before;
    if (delta !== 0) {
      for (const s of this.#streams.values()) {
        if (!growSendWindow(s, delta)) throw new H2ProtocolError(H2Code.FLOW_CONTROL_ERROR, "Stream window overflow");
      }
    }
    this.#gotPeerSettings = true;
    writeSettingsAck(this.#out);
    this.#serviceBlocked();
  }

  #onPing(flags: number, id: number, p: Uint8Array): void {
    if (id !== 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "PING on a stream");
    if (p.length !== 8) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "PING length is not 8");
    if (!(flags & Flag.ACK)) {
      writePing(this.#out, true, p);
      return;
    }
    if (equal8(p, KEEPALIVE)) {
      this.#pingSentAt = 0;
      return;
    }
    const i = this.#pings.findIndex((x) => equal8(x.data, p));
    if (i >= 0) {
      const [entry] = this.#pings.splice(i, 1);
      entry.resolve(performance.now() - entry.at);
    }
  }

  #onGoaway(id: number, p: Uint8Array): void {
    if (id !== 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (p.length < 8) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes");
    const last = ((p[0] & 0x7f) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    const code = ((p[4] << 24) | (p[5] << 16) | (p[6] << 8) | p[7]) >>> 0;
    const first = !this.#goawayReceived;
    this.#goawayReceived = true;
    // Streams we opened above `last` were never processed: fail them as retryable.
    for (const s of [...this.#streams.values()]) {
      if ((s.id & 1) === (this.isClient ? 1 : 0) && s.id > last) {
        s.destroy(new HboneError(ErrorCode.Http2Stream, `Stream not processed before GOAWAY (${h2CodeName(code)})`, {
          h2Code: code,
          retryable: true,
        }));
      }
    }
    if (first) this.onDrain?.();
    if (this.#streams.size === 0) queueMicrotask(() => this.#streams.size === 0 && this.#finish());
  }

  #onWindowUpdate(id: number, p: Uint8Array): void {
    if (p.length !== 4) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4");
    const inc = ((p[0] & 0x7f) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (id === 0) {
      if (inc === 0) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
      if (!growSendWindow(this.#flow, inc)) {
        throw new H2ProtocolError(H2Code.FLOW_CONTROL_ERROR, "Connection window overflow");
      }
      this.#serviceBlocked();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (inc === 0) return this.#streamError(id, H2Code.PROTOCOL_ERROR);
    if (!growSendWindow(s, inc)) return this.#streamError(id, H2Code.FLOW_CONTROL_ERROR);
    if (this.#blocked.has(s) && this.#flow.sendWindow > 0) s.flushPending();
  }

  // ---- helpers -----------------------------------------------------------------------------------

  /** A stream id neither side has used yet (RFC 9113 5.1 "idle"). */
  #isIdle(id: number): boolean {
    const local = (id & 1) === (this.isClient ? 1 : 0);
    return local ? id >= this.#nextLocalId : id > this.#lastPeerId;
  }

  #streamError(id: number, code: number): void {
    writeRstStream(this.#out, id, code);
    this.#streams.get(id)?.destroy(resetError(code, "local"));
  }

  #connectionError(e: unknown): void {
    if (e instanceof H2ProtocolError) {
      this.destroy(
        new HboneError(e.h2Code === H2Code.FLOW_CONTROL_ERROR ? ErrorCode.Http2Flow : ErrorCode.Http2Protocol, `HTTP/2 ${h2CodeName(e.h2Code)}: ${e.message}`, {
          h2Code: e.h2Code,
        }),
        e.h2Code,
      );
      return;
    }
    // A bug of ours, or a listener that threw: fail this connection only, never the process.
    this.destroy(
      new HboneError(ErrorCode.Http2Protocol, `Internal error: ${(e as Error)?.message ?? String(e)}`, { cause: e }),
      H2Code.INTERNAL_ERROR,
    );
  }

  /** Gives freed window to blocked streams, oldest first. */
  #serviceBlocked(): void {
    if (this.#blocked.size === 0) return;
    for (const s of this.#blocked) {
      if (this.#flow.sendWindow <= 0 || this.#out.length >= OUT_HIGH || this.#closed) break;
      if (s.sendWindow > 0) s.flushPending();
    }
  }

  /**
   * Small frames go out once per turn of the event loop, for every connection at once: the streams of one
   * connection written during that turn (a ztunnel's many client sockets that each got a request) share
   * one TLS write and record instead of one each. Flushing at each microtask checkpoint instead (after
   * every socket callback) cost 30% more CPU per 1 KB request and no better round trip. Bulk data
   * (BULK_FLUSH bytes waiting) goes at the next microtask checkpoint: it fills TLS records by itself, and
   * waiting for the end of the turn only delays it (bench/README.md).
   */
  #scheduleFlush(): void {
    if (this.#out.length >= BULK_FLUSH) {
      if (!this.#bulkQueued) {
        this.#bulkQueued = true;
        queueMicrotask(this.#flushBulk);
      }
      return;
    }
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    if (H2Connection.#dirty.push(this) === 1) setImmediate(H2Connection.#flushDirty);
  }

  #bulkQueued = false;
  #flushBulk = (): void => {
    this.#bulkQueued = false;
    this.#flush();
  };

  static #dirty: H2Connection[] = [];
  static #flushDirty = (): void => {
    const dirty = H2Connection.#dirty;
    H2Connection.#dirty = [];
    for (const c of dirty) {
      c.#flushQueued = false;
      c.#flush();
    }
  };

  #flush(): void {
    const out = this.#out;
    if (!this.#waitingDrain && out.length > 0) {
      const n = this.#t.write(out.buf, out.start, out.length);
      if (n > 0) out.consume(n);
      if (out.length > 0) this.#waitingDrain = n >= 0;
    }
    if (out.length > OUT_HARD && !this.#readPaused) {
      this.#readPaused = true;
      this.#t.pause?.();
    } else if (this.#readPaused && out.length < OUT_HIGH) {
      this.#readPaused = false;
      this.#t.resume?.();
    }
    if (!this.#waitingDrain && out.length < OUT_HIGH) this.#serviceBlocked();
  }

  #startDrain(): void {
    if (this.#goawaySent) return;
    this.#goawaySent = true;
    writeGoaway(this.#out, this.#lastPeerId, H2Code.NO_ERROR);
    this.#scheduleFlush();
    this.onDrain?.();
  }

  #finish(): void {
    if (this.#closed) return;
    if (!this.#goawaySent) {
      this.#goawaySent = true;
      writeGoaway(this.#out, this.#lastPeerId, H2Code.NO_ERROR);
    }
    this.#flush();
    this.#teardown(undefined);
    this.#endTransport();
  }

  /** Graceful close of the socket; a peer that never closes its side is cut off after 5 s. */
  #endTransport(): void {
    this.#t.end();
    // The socket's own idle timer: no JS timer keeping this connection alive meanwhile.
    this.#t.timeout?.(5);
  }

  #teardown(err: HboneError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parser.stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const streamErr = err ?? new HboneError(ErrorCode.Http2Stream, "Connection closed", { retryable: false });
    for (const s of [...this.#streams.values()]) s.destroy(streamErr);
    for (const p of this.#pings) p.reject(streamErr);
    this.#pings = [];
    this.#blocked.clear();
    this.onClose?.(err);
  }

  #keepalive(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#pingSentAt !== 0) {
      if (now - this.#pingSentAt > this.settings.pingTimeoutMs) {
        this.destroy(new HboneError(ErrorCode.Unreachable, "Peer did not answer PING: connection dropped"));
      }
      return;
    }
    if (now - this.#lastRecv >= this.settings.pingIntervalMs) {
      this.#pingSentAt = now;
      writePing(this.#out, false, KEEPALIVE);
      this.#flush();
    }
  }
}

const EMPTY = new Uint8Array(0);

function equal8(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== b[i]) return false;
  return true;
}
