/**
 * The bidirectional copy between a client's stream and its upstream: bytes both ways, each direction
 * on its own (a half-close is passed on and the other direction goes on), backpressure (a writer that
 * cannot take more pauses the reader feeding it until `drain`), bytes counted per direction, and an
 * abort on either side (or of the copy) resets both.
 *
 * Hot path and per-connection memory: chunks are handed through as they come (no copy, no allocation
 * per chunk), and a copy is three small objects without closures, since a proxy holds one per open
 * connection.
 */
import type { ByteStream, StreamEvents } from "./byte_stream.ts";

export interface CopyResult {
  /** Bytes from the client to the upstream (Istio's "received" bytes, the request direction). */
  received: number;
  /** Bytes from the upstream to the client (Istio's "sent" bytes, the response direction). */
  sent: number;
  /** Set when either side aborted (or the copy was aborted). */
  error?: Error;
}

/** Told once, when both sides have closed. */
export interface CopyOwner {
  copyDone(c: StreamCopy): void;
}

/** The events of one side, forwarded to the copy with which side it is. */
class SideEvents implements StreamEvents {
  readonly #c: StreamCopy;
  readonly #client: boolean;
  constructor(c: StreamCopy, client: boolean) {
    this.#c = c;
    this.#client = client;
  }
  data(chunk: Uint8Array): void {
    this.#c.onData(this.#client, chunk);
  }
  end(): void {
    this.#c.onEnd(this.#client);
  }
  drain(): void {
    this.#c.onDrain(this.#client);
  }
  close(error?: Error): void {
    this.#c.onClose(this.#client, error);
  }
}

export class StreamCopy implements CopyResult {
  received = 0;
  sent = 0;
  error: Error | undefined;
  done = false;
  readonly #client: ByteStream;
  readonly #upstream: ByteStream;
  readonly #owner: CopyOwner;
  #clientClosed = false;
  #upstreamClosed = false;
  /** Paused by this copy for backpressure (so starting the copy does not undo it). */
  #clientHeld = false;
  #upstreamHeld = false;

  /**
   * Starts copying between `client` and `upstream` (each becomes the copy's to consume, and reads
   * again if its previous consumer had paused it); `owner.copyDone` runs once both have closed.
   */
  constructor(client: ByteStream, upstream: ByteStream, owner: CopyOwner) {
    this.#client = client;
    this.#upstream = upstream;
    this.#owner = owner;
    client.bind(new SideEvents(this, true));
    upstream.bind(new SideEvents(this, false));
    if (!this.#clientClosed && !this.#clientHeld) client.resume();
    if (!this.#upstreamClosed && !this.#upstreamHeld) upstream.resume();
  }

  /** Abort both sides (drain timeout, shutdown). */
  abort(reason: Error): void {
    if (!this.done) this.#fail(reason);
  }

  /** @internal */
  onData(fromClient: boolean, chunk: Uint8Array): void {
    if (fromClient) {
      this.received += chunk.length;
      if (!this.#upstreamClosed && !this.#upstream.write(chunk)) {
        this.#clientHeld = true;
        this.#client.pause();
      }
    } else {
      this.sent += chunk.length;
      if (!this.#clientClosed && !this.#client.write(chunk)) {
        this.#upstreamHeld = true;
        this.#upstream.pause();
      }
    }
  }

  /** @internal */
  onEnd(fromClient: boolean): void {
    if (fromClient) {
      if (!this.#upstreamClosed) this.#upstream.end();
    } else if (!this.#clientClosed) this.#client.end();
  }

  /** @internal The side that drained can take more: let the other side read again. */
  onDrain(client: boolean): void {
    if (client) {
      this.#upstreamHeld = false;
      if (!this.#upstreamClosed) this.#upstream.resume();
    } else {
      this.#clientHeld = false;
      if (!this.#clientClosed) this.#client.resume();
    }
  }

  /** @internal */
  onClose(client: boolean, error?: Error): void {
    if (client) this.#clientClosed = true;
    else this.#upstreamClosed = true;
    if (error) this.#fail(error);
    if (this.#clientClosed && this.#upstreamClosed && !this.done) {
      this.done = true;
      this.#owner.copyDone(this);
    }
  }

  #fail(e: Error): void {
    this.error ??= e;
    if (!this.#clientClosed) this.#client.reset();
    if (!this.#upstreamClosed) this.#upstream.reset();
  }
}

/** Bytes a protocol reader already took from a stream, to be sent on before anything else. */
export interface CopyLeftovers {
  /** Read from the client: goes to the upstream first. */
  client?: Uint8Array;
  /** Read from the upstream: goes to the client first. */
  upstream?: Uint8Array;
}

/**
 * Copies until both sides have closed (for callers that await rather than keep an owner object, such
 * as a switched protocol after an HTTP upgrade). Leftovers count as copied bytes.
 */
export function copyBidirectional(client: ByteStream, upstream: ByteStream, leftovers: CopyLeftovers = {}): Promise<CopyResult> {
  const fromClient = leftovers.client?.length ?? 0;
  const fromUpstream = leftovers.upstream?.length ?? 0;
  if (fromClient) upstream.write(leftovers.client!);
  if (fromUpstream) client.write(leftovers.upstream!);
  return new Promise((resolve) => {
    new StreamCopy(client, upstream, {
      copyDone: (c) => resolve({ received: c.received + fromClient, sent: c.sent + fromUpstream, error: c.error }),
    });
  });
}
