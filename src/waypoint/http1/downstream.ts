/**
 * The client side of HTTP/1.1 inside one tunnel: reads requests one after another (keep-alive,
 * pipelined requests wait their turn), hands each to the proxy with its body as a RequestBody, and
 * writes the response the proxy produces (interim 1xx, then a head and a body, or a switch of
 * protocols after which the tunnel carries raw bytes both ways).
 */
import { RequestBody } from "../body.ts";
import type { ByteStream } from "../../stream/mod.ts";
import { BodyTracker } from "./body.ts";
import { fieldTokens, fieldValues, type Framing, parseRequestHead, type RequestHead, requestFraming } from "./head.ts";

export interface Http1Request {
  readonly head: RequestHead;
  /** Bytes of the head on the wire. */
  readonly headLength: number;
  /** The Host field ("" when absent). */
  readonly host: string;
  /** The client lets the connection carry another request after this one. */
  readonly keepAlive: boolean;
  /** Expect: 100-continue */
  readonly expectContinue: boolean;
  /** "websocket" when the client asks to switch to it (Upgrade + Connection: upgrade); other upgrades are dropped. */
  readonly upgrade: string | undefined;
  readonly framing: Framing;
  readonly body: RequestBody;
}

export interface DownstreamOptions {
  /** Largest request head accepted (431 above). */
  maxHeadBytes: number;
  /** Body bytes kept for retries and mirrors (see RequestBody). */
  recordLimit: (req: { method: string; target: string }) => number;
  /** A keep-alive connection with no request for this long is closed. */
  idleTimeoutMs: number;
  /** A request head must arrive completely within this. */
  headTimeoutMs: number;
}

export type RequestHandler = (req: Http1Request, res: Http1Response) => void;

const ST_HEAD = 0;
const ST_BODY = 1;
const ST_WAIT = 2; // body done, response in progress
const ST_UPGRADED = 3;
const ST_CLOSING = 4;
const ST_CLOSED = 5;

const EMPTY = Buffer.alloc(0);
/** How long an idle keep-alive connection stays open after a drain starts, for a request already on its way. */
const DRAIN_IDLE_GRACE_MS = 1000;

/** Connections with a deadline, checked once a second (cheaper than a timer per request). */
const watched = new Set<Http1Downstream>();
let sweeper: ReturnType<typeof setInterval> | null = null;
function watch(d: Http1Downstream): void {
  watched.add(d);
  if (!sweeper) {
    sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of watched) c._checkDeadline(now);
      if (watched.size === 0 && sweeper) {
        clearInterval(sweeper);
        sweeper = null;
      }
    }, 1000);
    (sweeper as { unref?: () => void }).unref?.();
  }
}

export class Http1Downstream {
  readonly io: ByteStream;
  /** Requests read on this connection. */
  requests = 0;
  #handler: RequestHandler;
  #o: DownstreamOptions;
  #state = ST_HEAD;
  #buf: Buffer = EMPTY;
  #searched = 0;
  #req: Http1Request | null = null;
  #tracker: BodyTracker | null = null;
  #res: Http1Response | null = null;
  #paused = false;
  #clientEnded = false;
  #draining = false;
  #deadline = 0;
  #onClose: (() => void) | null = null;

  constructor(io: ByteStream, handler: RequestHandler, opts: DownstreamOptions, initial?: Uint8Array) {
    this.io = io;
    this.#handler = handler;
    this.#o = opts;
    io.bind({ data: this.#onData, end: this.#onEnd, drain: this.#onDrain, close: this.#onClosed });
    this.#deadline = Date.now() + opts.headTimeoutMs;
    watch(this);
    if (initial && initial.length) this.#onData(initial);
  }

  /** Called once the connection is gone, or handed over after a protocol switch. */
  onClose(fn: () => void): void {
    this.#onClose = fn;
  }

  get closed(): boolean {
    return this.#state === ST_CLOSED;
  }

  /**
   * Graceful stop: a busy connection closes after its response (which says Connection: close). An idle one
   * is not closed at once: a client may be sending its next request right now, and a close would lose that
   * request (it cannot tell whether the server saw it). A request that comes within DRAIN_IDLE_GRACE_MS is
   * answered with Connection: close; a connection still idle then is closed.
   */
  drain(): void {
    this.#draining = true;
    if (this.#state === ST_HEAD && this.#buf.length === 0) {
      const at = Date.now() + DRAIN_IDLE_GRACE_MS;
      if (this.#deadline === 0 || this.#deadline > at) this.#deadline = at;
    }
  }

  /** @internal sweeper */
  _checkDeadline(now: number): void {
    if (this.#deadline === 0 || now < this.#deadline) return;
    this.#deadline = 0;
    if (this.#state === ST_HEAD) {
      if (this.#buf.length > 0) this.#fail(408, "request head not received in time");
      else this.#close();
    }
  }

  #onData = (chunk: Uint8Array): void => {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    switch (this.#state) {
      case ST_HEAD:
        this.#append(b);
        this.#parse();
        return;
      case ST_BODY:
        this.#feedBody(b);
        return;
      case ST_WAIT:
      case ST_UPGRADED:
        // The next request (or, after a switch, the new protocol's first bytes): held until its turn.
        this.#append(b);
        if (this.#buf.length > this.#o.maxHeadBytes && !this.#paused) {
          this.#paused = true;
          this.io.pause();
        }
        return;
      default:
        return;
    }
  };

  #append(b: Buffer): void {
    this.#buf = this.#buf.length === 0 ? b : Buffer.concat([this.#buf, b]);
  }

  #parse(): void {
    while (this.#state === ST_HEAD && this.#buf.length > 0) {
      const r = parseRequestHead(this.#buf, this.#o.maxHeadBytes, this.#searched);
      if (r.kind === "incomplete") {
        this.#searched = this.#buf.length;
        if (this.#deadline === 0) this.#deadline = Date.now() + this.#o.headTimeoutMs;
        return;
      }
      if (r.kind === "error") return this.#fail(r.status, r.reason);
      const head = r.head;
      this.#searched = 0;
      const framing = requestFraming(head);
      if ("error" in framing) return this.#fail(framing.status, framing.error);
      const hosts = fieldValues(head.fields, "host");
      if (hosts.length > 1 || (hosts.length === 0 && head.minor === 1)) {
        return this.#fail(400, hosts.length ? "more than one Host field" : "HTTP/1.1 request without Host");
      }
      const conn = fieldTokens(head.fields, "connection");
      // Only WebSocket is passed through (as Envoy's default upgrade_configs): after a switch the bytes are
      // opaque to the waypoint, so an h2c upgrade would carry requests no policy ever saw.
      const upgradeTokens = conn.includes("upgrade") ? fieldTokens(head.fields, "upgrade").filter((t) => t === "websocket") : [];
      const keepAlive = head.minor === 1 ? !conn.includes("close") : false;
      const rest = this.#buf.subarray(r.length);
      this.#buf = EMPTY;
      this.#deadline = 0;
      this.requests++;
      const body = framing.kind === "none" ? RequestBody.empty() : new RequestBody({
        recordLimit: this.#o.recordLimit({ method: head.method, target: head.target }),
        pauseSource: () => {
          if (!this.#paused) {
            this.#paused = true;
            this.io.pause();
          }
        },
        resumeSource: () => {
          if (this.#paused && this.#state === ST_BODY) {
            this.#paused = false;
            this.io.resume();
          }
        },
      });
      const req: Http1Request = {
        head,
        headLength: r.length,
        host: hosts[0] ?? "",
        keepAlive,
        expectContinue: head.minor === 1 && fieldTokens(head.fields, "expect").includes("100-continue"),
        upgrade: upgradeTokens[0],
        framing,
        body,
      };
      this.#req = req;
      this.#tracker = framing.kind === "none" ? null : new BodyTracker(framing);
      this.#state = framing.kind === "none" ? ST_WAIT : ST_BODY;
      const res = new Http1Response(this, req);
      this.#res = res;
      // Body bytes that came with the head wait in the RequestBody; a malformed body answers 400 here.
      if (this.#state === ST_BODY && rest.length) this.#feedBody(rest);
      else if (rest.length) this.#append(rest);
      if (res.headSent || this.#state >= ST_CLOSING) return;
      this.#handler(req, res);
    }
  }

  #feedBody(b: Buffer): void {
    const t = this.#tracker!;
    const req = this.#req!;
    const n = t.feed(b, 0);
    if (n > 0) req.body.push(n === b.length ? b : b.subarray(0, n));
    if (t.error) {
      req.body.fail(new Error(t.error));
      return this.#fail(400, t.error);
    }
    if (t.done) {
      this.#state = ST_WAIT;
      req.body.finish();
      if (n < b.length) this.#append(b.subarray(n));
    }
  }

  #onEnd = (): void => {
    this.#clientEnded = true;
    switch (this.#state) {
      case ST_HEAD:
        // Half a head and then nothing: nothing to answer.
        this.#close();
        return;
      case ST_BODY:
        this.#tracker!.eof();
        this.#req!.body.fail(new Error("client closed the connection before the end of the request body"));
        this.#res?._clientGone();
        this.#close();
        return;
      default:
        // Finish the response in progress, then close (a client may half-close after its request).
        return;
    }
  };

  #onDrain = (): void => {
    this.#res?._drained();
  };

  #onClosed = (): void => {
    const was = this.#state;
    this.#state = ST_CLOSED;
    watched.delete(this);
    if (was !== ST_UPGRADED) {
      this.#req?.body.fail(new Error("client connection closed"));
      this.#res?._clientGone();
    }
    this.#req = null;
    this.#res = null;
    this.#onClose?.();
  };

  /** Answers a request that could not be read, then closes. */
  #fail(status: number, reason: string): void {
    const res = this.#res;
    if (res && res.headSent) {
      this.#abort();
      return;
    }
    this.#state = ST_WAIT;
    const r = res ?? new Http1Response(this, null);
    this.#res = r;
    r.closeAfter = true;
    r.writeHead(status, STATUS_TEXT[status] ?? "Error", [["content-type", "text/plain"]], { kind: "length", length: reason.length + 1 });
    r.end(Buffer.from(reason + "\n", "latin1"));
  }

  #close(): void {
    if (this.#state === ST_CLOSED || this.#state === ST_CLOSING) return;
    this.#state = ST_CLOSING;
    watched.delete(this);
    this.io.end();
  }

  #abort(): void {
    if (this.#state === ST_CLOSED) return;
    this.#state = ST_CLOSING;
    watched.delete(this);
    this.io.reset();
  }

  /** @internal a response is complete */
  _responseDone(res: Http1Response): void {
    if (res !== this.#res) return;
    const req = this.#req;
    this.#res = null;
    this.#req = null;
    this.#tracker = null;
    const reuse = req !== null && req.keepAlive && !res.closeAfter && !this.#draining && !this.#clientEnded &&
      (this.#state === ST_WAIT) && req.body.done;
    if (!reuse) return this.#close();
    this.#state = ST_HEAD;
    this.#deadline = Date.now() + (this.#buf.length ? this.#o.headTimeoutMs : this.#o.idleTimeoutMs);
    if (this.#paused) {
      this.#paused = false;
      this.io.resume();
    }
    if (this.#buf.length) queueMicrotask(() => this.#parse());
  }

  /**
   * @internal the response switched protocols: the tunnel is the caller's from now on (its next
   * consumer binds it), so for us the connection is over.
   */
  _upgraded(): { stream: ByteStream; leftover: Buffer } {
    this.#state = ST_UPGRADED;
    watched.delete(this);
    const leftover = this.#buf;
    this.#buf = EMPTY;
    this.#req = null;
    this.#res = null;
    if (this.#paused) {
      this.#paused = false;
      this.io.resume();
    }
    const onClose = this.#onClose;
    this.#onClose = null;
    onClose?.();
    return { stream: this.io, leftover };
  }

  /** @internal */
  _abort(): void {
    this.#abort();
  }

  /** @internal the connection will not carry another request */
  get _closing(): boolean {
    return this.#clientEnded || this.#draining;
  }
}

export const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** How the body of a response is sent to the client. */
export type ResponseFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };

/** The response to one request. */
export class Http1Response {
  /** Close the connection after this response. */
  closeAfter = false;
  headSent = false;
  finished = false;
  /** Bytes written to the client: head and body (as framed). */
  bytesWritten = 0;
  #d: Http1Downstream;
  #req: Http1Request | null;
  #pendingHead: string | null = null;
  #dechunk: { tracker: BodyTracker; writes: boolean } | null = null;
  #onDrain: (() => void) | null = null;
  #onGone: (() => void) | null = null;
  #gone = false;

  constructor(d: Http1Downstream, req: Http1Request | null) {
    this.#d = d;
    this.#req = req;
  }

  /** The client can take more after write() returned false. */
  onDrain(fn: (() => void) | null): void {
    this.#onDrain = fn;
  }
  /** The client went away before the response was complete. */
  onClientGone(fn: () => void): void {
    this.#onGone = fn;
    if (this.#gone) fn();
  }
  get clientGone(): boolean {
    return this.#gone;
  }

  /** Forwards a 1xx interim response (100 only to a client that asked for it; nothing to HTTP/1.0). */
  interim(status: number, fields: [string, string][]): void {
    if (this.headSent || this.#gone || !this.#req || this.#req.head.minor === 0) return;
    if (status === 100 && !this.#req.expectContinue) return;
    let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Continue"}\r\n`;
    for (const [k, v] of fields) s += k + ": " + v + "\r\n";
    this.#d.io.write(Buffer.from(s + "\r\n", "latin1"));
  }

  /**
   * Starts the response. `fieldsText` is preformatted "name: value\r\n" lines (or pairs); framing
   * fields are added here. A chunked body to an HTTP/1.0 client is sent without its framing, and the
   * connection closes after it.
   */
  writeHead(status: number, reason: string, fields: [string, string][] | string, framing: ResponseFraming): void {
    if (this.headSent || this.#gone) return;
    this.headSent = true;
    const minor = this.#req?.head.minor ?? 1;
    let s = `HTTP/1.${minor} ${status} ${reason || STATUS_TEXT[status] || "Unknown"}\r\n`;
    if (typeof fields === "string") s += fields;
    else for (const [k, v] of fields) s += k + ": " + v + "\r\n";
    let kind = framing.kind;
    if (kind === "chunked" && minor === 0) {
      this.#dechunk = {
        tracker: new BodyTracker({ kind: "chunked" }, (b, start, end) => {
          this.#rawWrite(Buffer.from(b.buffer, b.byteOffset + start, end - start));
        }),
        writes: true,
      };
      kind = "close";
    }
    if (kind === "length") s += `content-length: ${(framing as { length: number }).length}\r\n`;
    else if (kind === "chunked") s += "transfer-encoding: chunked\r\n";
    if (kind === "close") this.closeAfter = true;
    if (status === 101) s += `connection: upgrade\r\n`;
    else if (this.closeAfter || !this.#req?.keepAlive || this.#d._closing) {
      this.closeAfter = true;
      s += "connection: close\r\n";
    } else if (minor === 0) s += "connection: keep-alive\r\n";
    this.#pendingHead = s + "\r\n";
    // Sent with the first body bytes, or on its own at the end of this tick.
    queueMicrotask(this.#flushHead);
  }

  #flushHead = (): void => {
    const h = this.#pendingHead;
    if (h === null) return;
    this.#pendingHead = null;
    this.bytesWritten += h.length;
    if (!this.#gone) this.#d.io.write(Buffer.from(h, "latin1"));
  };

  #rawWrite(chunk: Uint8Array): boolean {
    this.bytesWritten += chunk.length;
    const h = this.#pendingHead;
    if (h !== null) {
      this.#pendingHead = null;
      this.bytesWritten += h.length;
      if (chunk.length <= 16 * 1024) {
        const headLen = h.length;
        const b = Buffer.allocUnsafe(headLen + chunk.length);
        b.write(h, 0, "latin1");
        b.set(chunk, headLen);
        return this.#d.io.write(b);
      }
      this.#d.io.write(Buffer.from(h, "latin1"));
    }
    return this.#d.io.write(chunk);
  }

  /** Body bytes (framed as the head said). False: wait for the drain callback. */
  write(chunk: Uint8Array): boolean {
    if (this.#gone || this.finished || chunk.length === 0) return !this.#gone;
    if (this.#dechunk) {
      this.#dechunk.tracker.feed(chunk, 0);
      return true;
    }
    return this.#rawWrite(chunk);
  }

  /** Completes the response (optionally with its last bytes). */
  end(chunk?: Uint8Array): void {
    if (this.finished) return;
    if (chunk && chunk.length) this.write(chunk);
    this.finished = true;
    this.#flushHead();
    if (this.#gone) return;
    this.#d._responseDone(this);
  }

  /** The response cannot be completed: the client's connection is reset. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.#d._abort();
  }

  /** After a 101 head: the tunnel, and bytes the client already sent in the new protocol. */
  upgraded(): { stream: ByteStream; leftover: Buffer } {
    this.#flushHead();
    this.finished = true;
    return this.#d._upgraded();
  }

  /** @internal */
  _drained(): void {
    this.#onDrain?.();
  }

  /** @internal */
  _clientGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#onGone?.();
  }
}
