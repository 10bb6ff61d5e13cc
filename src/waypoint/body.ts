/**
 * A request body on its way through the waypoint, whatever the protocol: bytes from the client are
 * delivered to the current upstream try as they arrive (backpressure reaches the client), and the first
 * `recordLimit` bytes are kept so a retry or a mirror can send the body again. Once more than that has
 * gone to a try, the body can no longer be replayed and a failed try is final.
 */

export interface BodySink {
  /** False: wait for `drained()` before more. */
  write(chunk: Uint8Array): boolean;
  end(): void;
}

export interface RequestBodyOptions {
  /** Bytes kept for replay (retries, mirrors). */
  recordLimit: number;
  /** Stop / restart reading from the client. */
  pauseSource(): void;
  resumeSource(): void;
}

/** Undelivered bytes above which the client is paused while no try takes them. */
const HIGH_WATER = 256 * 1024;

export class RequestBody {
  /** Bytes received from the client so far. */
  received = 0;
  #o: RequestBodyOptions;
  #chunks: Uint8Array[] = [];
  /** Index in #chunks of the next chunk to give the sink. */
  #next = 0;
  #pendingBytes = 0;
  #intact = true;
  #everDelivered = false;
  #done = false;
  #failed: Error | undefined;
  #sink: BodySink | null = null;
  #blocked = false;
  #paused = false;
  #waiters: (() => void)[] = [];

  constructor(opts: RequestBodyOptions, complete = false) {
    this.#o = opts;
    this.#done = complete;
  }

  /** A request without a body. */
  static empty(): RequestBody {
    return new RequestBody({ recordLimit: 0, pauseSource() {}, resumeSource() {} }, true);
  }

  get done(): boolean {
    return this.#done;
  }
  get failed(): Error | undefined {
    return this.#failed;
  }
  /** Every byte received so far is still held, so a new try can send the body from its start. */
  get replayable(): boolean {
    return this.#intact || !this.#everDelivered;
  }

  /** From the protocol reader: the next body bytes. */
  push(chunk: Uint8Array): void {
    if (this.#done || this.#failed || chunk.length === 0) return;
    this.received += chunk.length;
    this.#chunks.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#intact && this.received > this.#o.recordLimit) this.#intact = false;
    this.#flush();
    if (!this.#paused && (this.#blocked || (this.#sink === null && this.#pendingBytes > HIGH_WATER))) {
      this.#paused = true;
      this.#o.pauseSource();
    }
  }

  /** From the protocol reader: the body is complete. */
  finish(): void {
    if (this.#done || this.#failed) return;
    this.#done = true;
    this.#flush();
    this.#wake();
  }

  /** From the protocol reader: the client went away mid-body. */
  fail(err: Error): void {
    if (this.#done || this.#failed) return;
    this.#failed = err;
    this.#wake();
  }

  /**
   * Starts delivering the body to `sink` from its first byte. False when that is impossible (bytes
   * already given to an earlier try were not kept).
   */
  attach(sink: BodySink): boolean {
    if (this.#everDelivered && !this.#intact) return false;
    this.#sink = sink;
    this.#next = 0;
    this.#pendingBytes = 0;
    for (const c of this.#chunks) this.#pendingBytes += c.length;
    this.#blocked = false;
    this.#flush();
    return true;
  }

  /** The current try is over; bytes wait for the next one. */
  detach(): void {
    this.#sink = null;
    this.#blocked = false;
  }

  /** The sink can take more. */
  drained(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#flush();
  }

  /** No try will read the body (a local reply): read it to its end and drop it. */
  discard(): void {
    this.#sink = { write: () => true, end() {} };
    this.#intact = false;
    this.#everDelivered = true;
    this.#flush();
  }

  /** Resolves when the body is complete (or failed): the whole body if it was kept, else undefined. */
  async complete(): Promise<Uint8Array[] | undefined> {
    while (!this.#done && !this.#failed) await new Promise<void>((r) => this.#waiters.push(r));
    return this.#failed || !this.#intact ? undefined : this.#chunks.slice();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #flush(): void {
    const sink = this.#sink;
    if (sink === null) return;
    if (!this.#intact && this.#next > 0) {
      // Recording stopped: what was already delivered is not needed any more.
      this.#chunks.splice(0, this.#next);
      this.#next = 0;
    }
    while (!this.#blocked && this.#next < this.#chunks.length) {
      const c = this.#chunks[this.#next]!;
      this.#pendingBytes -= c.length;
      this.#everDelivered = true;
      if (this.#intact) this.#next++;
      else {
        // Not kept for replay: let it go once delivered.
        this.#chunks.shift();
      }
      if (!sink.write(c)) this.#blocked = true;
      if (this.#sink !== sink) return;
    }
    if (!this.#blocked && this.#next >= this.#chunks.length) {
      if (this.#paused) {
        this.#paused = false;
        this.#o.resumeSource();
      }
      if (this.#done) {
        this.#sink = null;
        sink.end();
      }
    }
  }
}
