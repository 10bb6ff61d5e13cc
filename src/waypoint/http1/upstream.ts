/**
 * The workload side of HTTP/1.1: one connection (an HBONE tunnel to the endpoint's ztunnel, or TCP)
 * carrying one request at a time, and the keep-alive pool of such connections per endpoint and client.
 */
import type { BodySink, RequestBody } from "../body.ts";
import type { ByteStream } from "../../stream/mod.ts";
import { BodyTracker } from "./body.ts";
import { fieldTokens, type Framing, parseResponseHead, type ResponseHead, responseFraming } from "./head.ts";

export interface UpstreamResponse {
  head: ResponseHead;
  framing: Framing;
}

/** Why a try failed before a response head arrived. */
export class UpstreamFailure extends Error {
  constructor(
    message: string,
    /** Nothing of the response arrived (a stale keep-alive connection looks like this). */
    readonly beforeResponse: boolean,
    /** The Envoy-style response flag for telemetry: UC (upstream closed), UPE (protocol error). */
    readonly flag: "UC" | "UPE",
  ) {
    super(message);
    this.name = "UpstreamFailure";
  }
}

export interface RequestOptions {
  method: string;
  /** A 1xx the client may see (100 Continue, 103 Early Hints). */
  onInterim?: (status: number, fields: string[]) => void;
}

/** What the response body is written to (the client's response). */
export interface ResponseSink {
  write(chunk: Uint8Array): boolean;
  onDrain(fn: (() => void) | null): void;
}

const MAX_RESPONSE_HEAD = 64 * 1024;
const EMPTY = Buffer.alloc(0);

const S_IDLE = 0;
const S_HEAD = 1;
const S_BODY = 2;
const S_DONE = 3; // exchange complete, not yet released
const S_UPGRADED = 4;
const S_DEAD = 5;

export class Http1Upstream {
  readonly io: ByteStream;
  readonly key: string;
  /** Exchanges completed on this connection. */
  served = 0;
  idleSince = 0;
  #state = S_IDLE;
  #buf: Buffer = EMPTY;
  #searched = 0;
  #method = "GET";
  #onInterim: RequestOptions["onInterim"];
  #headWaiter: { resolve(r: UpstreamResponse): void; reject(e: Error): void } | null = null;
  #tracker: BodyTracker | null = null;
  #bodyQueue: Uint8Array[] = [];
  #sink: ResponseSink | null = null;
  #bodyDone: { resolve(): void; reject(e: Error): void } | null = null;
  #keepAlive = false;
  #requestBody: RequestBody | null = null;
  #requestSent = false;
  #gotBytes = false;
  #onIdleClose: (() => void) | null = null;

  constructor(io: ByteStream, key: string) {
    this.io = io;
    this.key = key;
    io.bind({ data: this.#onData, end: this.#onEnd, drain: this.#onDrain, close: this.#onClose });
  }

  get dead(): boolean {
    return this.#state === S_DEAD || this.io.closed;
  }

  /** The connection can carry another request. */
  get reusable(): boolean {
    return this.#state === S_DONE && this.#keepAlive && this.#requestSent && !this.io.closed && !this.io.retiring;
  }

  /** @internal the pool listens for an idle connection going away */
  set onIdleClose(fn: (() => void) | null) {
    this.#onIdleClose = fn;
  }

  /**
   * Sends `head` then `body` (null: no body) and resolves with the final response head; 1xx interim
   * responses go to `onInterim`. Rejects with UpstreamFailure if the connection fails first.
   */
  request(head: Uint8Array, body: RequestBody | null, opts: RequestOptions): Promise<UpstreamResponse> {
    if (this.#state !== S_IDLE || this.io.closed) {
      return Promise.reject(new UpstreamFailure("upstream connection is not idle", true, "UC"));
    }
    this.#state = S_HEAD;
    this.#method = opts.method;
    this.#onInterim = opts.onInterim;
    this.#buf = EMPTY;
    this.#searched = 0;
    this.#gotBytes = false;
    this.#requestSent = false;
    this.#requestBody = body;
    // The previous response may have ended while its reader was slow (the tunnel paused): read again.
    this.io.resume();
    const p = new Promise<UpstreamResponse>((resolve, reject) => (this.#headWaiter = { resolve, reject }));
    if (body === null) {
      this.io.write(head);
      this.#requestSent = true;
    } else {
      this.io.write(head);
      const sink: BodySink = {
        write: (c) => this.#state !== S_DEAD && this.io.write(c),
        end: () => {
          this.#requestSent = true;
        },
      };
      if (!body.attach(sink)) {
        this.destroy();
        return Promise.reject(new UpstreamFailure("request body cannot be sent again", true, "UC"));
      }
    }
    return p;
  }

  /** Streams the response body into `sink`; resolves when it is complete. */
  pipeBody(sink: ResponseSink): Promise<void> {
    if (this.#state !== S_BODY && this.#state !== S_DONE) return Promise.resolve();
    this.#sink = sink;
    sink.onDrain(() => {
      if (this.#state === S_BODY) this.io.resume();
      this.#flushQueue();
    });
    const p = new Promise<void>((resolve, reject) => (this.#bodyDone = { resolve, reject }));
    this.#flushQueue();
    if (this.#state === S_DONE) this.#finishBody();
    return p;
  }

  /** After a 101 response: the raw connection (its next consumer binds it) and the bytes already read past the head. */
  takeOver(): { stream: ByteStream; leftover: Buffer } {
    this.#state = S_UPGRADED;
    this.#requestBody?.detach();
    const leftover = this.#bodyQueue.length ? Buffer.concat(this.#bodyQueue) : this.#buf;
    this.#bodyQueue = [];
    this.#buf = EMPTY;
    return { stream: this.io, leftover };
  }

  /** Ready for the next exchange (the pool calls this when it takes the connection back). */
  reset(): void {
    this.#state = S_IDLE;
    // Idle, it must notice the workload closing it (and read nothing else).
    this.io.resume();
    this.#sink = null;
    this.#tracker = null;
    this.#requestBody = null;
  }

  /** Closes the connection (a try that is abandoned, a timeout). */
  destroy(): void {
    if (this.#state === S_DEAD) return;
    const was = this.#state;
    this.#state = S_DEAD;
    this.#requestBody?.detach();
    if (!this.io.closed) this.io.reset();
    this.#fail(new UpstreamFailure("upstream connection closed by the proxy", was === S_HEAD && !this.#gotBytes, "UC"));
  }

  #onData = (chunk: Uint8Array): void => {
    this.#gotBytes = true;
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.#state === S_HEAD) {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, b]) : b;
      this.#parseHead();
    } else if (this.#state === S_BODY) {
      this.#feedBody(b);
    } else if (this.#state === S_IDLE || this.#state === S_DONE) {
      // Bytes nobody asked for: the connection's framing is lost.
      this.destroy();
    }
  };

  #parseHead(): void {
    for (;;) {
      const r = parseResponseHead(this.#buf, MAX_RESPONSE_HEAD, this.#searched);
      if (r.kind === "incomplete") {
        this.#searched = this.#buf.length;
        return;
      }
      if (r.kind === "error") {
        this.#state = S_DEAD;
        this.io.reset();
        return this.#fail(new UpstreamFailure(`invalid response from upstream: ${r.reason}`, false, "UPE"));
      }
      const head = r.head;
      const rest = this.#buf.subarray(r.length);
      this.#buf = EMPTY;
      this.#searched = 0;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        this.#onInterim?.(head.status, head.fields);
        this.#buf = rest;
        if (rest.length === 0) return;
        continue;
      }
      const framing = responseFraming(head, this.#method);
      if ("error" in framing) {
        this.#state = S_DEAD;
        this.io.reset();
        return this.#fail(new UpstreamFailure(`invalid response from upstream: ${framing.error}`, false, "UPE"));
      }
      const conn = fieldTokens(head.fields, "connection");
      this.#keepAlive = head.minor === 1 ? !conn.includes("close") : conn.includes("keep-alive");
      if (framing.kind === "close") this.#keepAlive = false;
      const waiter = this.#headWaiter;
      this.#headWaiter = null;
      if (head.status === 101) {
        this.#state = S_UPGRADED;
        this.#buf = rest;
        waiter?.resolve({ head, framing: { kind: "none" } });
        return;
      }
      this.#tracker = new BodyTracker(framing);
      this.#state = framing.kind === "none" ? S_DONE : S_BODY;
      waiter?.resolve({ head, framing });
      if (rest.length) {
        if (this.#state === S_BODY) this.#feedBody(rest);
        else this.destroy();
      }
      return;
    }
  }

  #feedBody(b: Buffer): void {
    const t = this.#tracker!;
    const n = t.feed(b, 0);
    if (t.error) {
      this.#state = S_DEAD;
      this.io.reset();
      return this.#fail(new UpstreamFailure(`invalid response body from upstream: ${t.error}`, false, "UPE"));
    }
    if (n > 0) this.#deliver(n === b.length ? b : b.subarray(0, n));
    if (t.done) {
      this.#state = S_DONE;
      // Bytes after the end of a response we did not ask for: the connection cannot be trusted.
      if (n < b.length) this.#keepAlive = false;
      this.#finishBody();
    }
  }

  #deliver(chunk: Uint8Array): void {
    const sink = this.#sink;
    if (sink === null || this.#bodyQueue.length) {
      this.#bodyQueue.push(chunk);
      if (this.#bodyQueue.length > 64) this.io.pause();
      return;
    }
    if (!sink.write(chunk)) this.io.pause();
  }

  #flushQueue(): void {
    const sink = this.#sink;
    if (sink === null) return;
    while (this.#bodyQueue.length) {
      const c = this.#bodyQueue.shift()!;
      if (!sink.write(c)) {
        this.io.pause();
        return;
      }
    }
    if (this.#state === S_BODY) this.io.resume();
  }

  #finishBody(): void {
    if (this.#sink === null || this.#bodyQueue.length) return;
    const done = this.#bodyDone;
    this.#bodyDone = null;
    this.#sink.onDrain(null);
    this.served++;
    done?.resolve();
  }

  #onEnd = (): void => {
    if (this.#state === S_BODY && this.#tracker) {
      this.#tracker.eof();
      if (this.#tracker.done) {
        this.#state = S_DONE;
        this.#keepAlive = false;
        this.#finishBody();
        this.io.end();
        return;
      }
    }
    if (this.#state === S_IDLE || this.#state === S_DONE) {
      this.#keepAlive = false;
      this.io.end();
      if (this.#state === S_IDLE) this.#onIdleClose?.();
      return;
    }
    const beforeResponse = this.#state === S_HEAD && !this.#gotBytes;
    this.#state = S_DEAD;
    this.io.end();
    this.#fail(new UpstreamFailure("upstream closed the connection before the response was complete", beforeResponse, "UC"));
  };

  #onClose = (err?: Error): void => {
    if (this.#state === S_UPGRADED) return;
    const was = this.#state;
    if (was === S_IDLE || was === S_DONE) {
      this.#state = S_DEAD;
      this.#onIdleClose?.();
      return;
    }
    this.#state = S_DEAD;
    this.#requestBody?.detach();
    const beforeResponse = was === S_HEAD && !this.#gotBytes;
    this.#fail(new UpstreamFailure(`upstream connection ${err ? `failed: ${err.message}` : "closed"}`, beforeResponse, "UC"));
  };

  #onDrain = (): void => {
    this.#requestBody?.drained();
  };

  #fail(e: UpstreamFailure): void {
    const w = this.#headWaiter;
    this.#headWaiter = null;
    w?.reject(e);
    const b = this.#bodyDone;
    this.#bodyDone = null;
    b?.reject(e);
  }
}

/**
 * Idle keep-alive connections per key (endpoint and client), most recently used first. A connection
 * the workload closes while idle leaves the pool at once.
 */
export class Http1UpstreamPool {
  #idle = new Map<string, Http1Upstream[]>();
  #maxIdlePerKey: number;
  #idleTimeoutMs: number;
  #sweep: ReturnType<typeof setInterval> | null = null;
  #count = 0;

  constructor(opts: { maxIdlePerKey?: number; idleTimeoutMs?: number } = {}) {
    this.#maxIdlePerKey = opts.maxIdlePerKey ?? 64;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  }

  /** Idle connections held. */
  get idle(): number {
    return this.#count;
  }

  /** An idle connection for `key`, if one is alive. */
  take(key: string): Http1Upstream | undefined {
    const list = this.#idle.get(key);
    while (list && list.length) {
      const c = list.pop()!;
      this.#count--;
      c.onIdleClose = null;
      if (!c.dead && !c.io.retiring) return c;
      // The destination's ztunnel drains (a restart): a request sent now could be cut at its deadline.
      if (!c.dead) c.destroy();
    }
    return undefined;
  }

  /** Gives a connection back after an exchange: kept if it can carry another request, else closed. */
  release(c: Http1Upstream): void {
    if (!c.reusable) {
      if (!c.io.closed) c.io.end();
      return;
    }
    c.reset();
    let list = this.#idle.get(c.key);
    if (!list) this.#idle.set(c.key, (list = []));
    if (list.length >= this.#maxIdlePerKey) {
      c.io.end();
      return;
    }
    c.idleSince = Date.now();
    list.push(c);
    this.#count++;
    c.onIdleClose = () => this.#remove(c);
    this.#startSweep();
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.#idle.values()) for (const c of list) c.destroy();
    this.#idle.clear();
    this.#count = 0;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #remove(c: Http1Upstream): void {
    const list = this.#idle.get(c.key);
    const i = list ? list.indexOf(c) : -1;
    if (i >= 0) {
      list!.splice(i, 1);
      this.#count--;
      if (list!.length === 0) this.#idle.delete(c.key);
    }
  }

  #startSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => {
      const cutoff = Date.now() - this.#idleTimeoutMs;
      for (const [key, list] of this.#idle) {
        while (list.length && list[0]!.idleSince < cutoff) {
          const c = list.shift()!;
          this.#count--;
          c.onIdleClose = null;
          c.destroy();
        }
        // Idle ones whose HBONE connection got GOAWAY: closing them lets the draining peer finish early.
        for (const c of list.filter((x) => x.io.retiring)) {
          list.splice(list.indexOf(c), 1);
          this.#count--;
          c.onIdleClose = null;
          c.destroy();
        }
        if (list.length === 0) this.#idle.delete(key);
      }
      if (this.#idle.size === 0 && this.#sweep) {
        clearInterval(this.#sweep);
        this.#sweep = null;
      }
    }, Math.max(1000, Math.min(10_000, this.#idleTimeoutMs / 2)));
    (this.#sweep as { unref?: () => void }).unref?.();
  }
}
