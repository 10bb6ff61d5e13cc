/**
 * The L4 splice: copies bytes both ways between the client's stream and the upstream stream, honouring
 * backpressure (a full writer pauses its reader until `drain`), propagating half-close in each
 * direction independently, and turning an abort on either side into an abort of the other.
 *
 * Hot path and per-connection memory: chunks are handed through as they come (no copy, no allocation
 * per chunk), and a splice is three small objects (no closures), since a ztunnel holds one per open
 * connection.
 */
import type { ByteStream, StreamEvents } from "./stream.ts";

export interface SpliceResult {
  /** Bytes from the client to the upstream (Istio's "received" bytes, the request direction). */
  received: number;
  /** Bytes from the upstream to the client (Istio's "sent" bytes, the response direction). */
  sent: number;
  /** Set when either side aborted (or the splice was aborted). */
  error?: Error;
}

/** Told once, when both sides have closed. */
export interface SpliceOwner {
  spliceDone(s: Splice): void;
}

/** The events of one side, forwarded to the splice with which side it is. */
class SideEvents implements StreamEvents {
  readonly #s: Splice;
  readonly #client: boolean;
  constructor(s: Splice, client: boolean) {
    this.#s = s;
    this.#client = client;
  }
  data(chunk: Uint8Array): void {
    this.#s.onData(this.#client, chunk);
  }
  end(): void {
    this.#s.onEnd(this.#client);
  }
  drain(): void {
    this.#s.onDrain(this.#client);
  }
  close(error?: Error): void {
    this.#s.onClose(this.#client, error);
  }
}

export class Splice implements SpliceResult {
  received = 0;
  sent = 0;
  error: Error | undefined;
  done = false;
  readonly #client: ByteStream;
  readonly #upstream: ByteStream;
  readonly #owner: SpliceOwner;
  #clientClosed = false;
  #upstreamClosed = false;

  /** Starts copying between `client` and `upstream`; `owner.spliceDone` runs once both have closed. */
  constructor(client: ByteStream, upstream: ByteStream, owner: SpliceOwner) {
    this.#client = client;
    this.#upstream = upstream;
    this.#owner = owner;
    client.bind(new SideEvents(this, true));
    upstream.bind(new SideEvents(this, false));
  }

  /** Abort both sides (drain timeout, shutdown). */
  abort(reason: Error): void {
    if (!this.done) this.#fail(reason);
  }

  onData(fromClient: boolean, chunk: Uint8Array): void {
    if (fromClient) {
      this.received += chunk.length;
      if (!this.#upstreamClosed && !this.#upstream.write(chunk)) this.#client.pause();
    } else {
      this.sent += chunk.length;
      if (!this.#clientClosed && !this.#client.write(chunk)) this.#upstream.pause();
    }
  }

  onEnd(fromClient: boolean): void {
    if (fromClient) {
      if (!this.#upstreamClosed) this.#upstream.end();
    } else if (!this.#clientClosed) this.#client.end();
  }

  /** The side that drained can take more: let the other side read again. */
  onDrain(client: boolean): void {
    if (client) {
      if (!this.#upstreamClosed) this.#upstream.resume();
    } else if (!this.#clientClosed) this.#client.resume();
  }

  onClose(client: boolean, error?: Error): void {
    if (client) this.#clientClosed = true;
    else this.#upstreamClosed = true;
    if (error) this.#fail(error);
    if (this.#clientClosed && this.#upstreamClosed && !this.done) {
      this.done = true;
      this.#owner.spliceDone(this);
    }
  }

  #fail(e: Error): void {
    this.error ??= e;
    if (!this.#clientClosed) this.#client.reset();
    if (!this.#upstreamClosed) this.#upstream.reset();
  }
}

/** Starts a splice reporting to a callback (for callers that do not keep an owner object). */
export function splice(client: ByteStream, upstream: ByteStream, onDone: (r: SpliceResult) => void): Splice {
  return new Splice(client, upstream, { spliceDone: (s) => onDone({ received: s.received, sent: s.sent, error: s.error }) });
}
