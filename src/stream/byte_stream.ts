/**
 * The one byte stream every proxy path copies through: a TCP socket, a TLS socket and an HBONE
 * CONNECT tunnel all take this shape, so one copy (./copy.ts) and one set of protocol readers serve
 * them all.
 *
 * Events go to one consumer object rather than to per-event listeners: a proxy holds a stream per open
 * connection, and a consumer that is an object of methods costs no closure per connection.
 */

/** What a stream tells its consumer. */
export interface StreamEvents {
  data(chunk: Uint8Array): void;
  /** The peer will send nothing more (its FIN / END_STREAM). */
  end(): void;
  /** Writable again after `write()` returned false. */
  drain(): void;
  /** Finished both ways; `error` when aborted (RST, TLS failure, stream reset). Fires once. */
  close(error?: Error): void;
}

export interface ByteStream {
  /** True once `close` fired (or is about to): writes are dropped. */
  readonly closed: boolean;
  /** The transport under it is going away (an HBONE connection that got GOAWAY): do not reuse it. */
  readonly retiring?: boolean;
  /**
   * Sends `chunk`, kept by reference until it is out: do not modify it afterwards. false: the bytes are
   * buffered and the caller should write no more until `drain`.
   */
  write(chunk: Uint8Array): boolean;
  /** Half-close: FIN / END_STREAM after the buffered bytes; reading goes on. */
  end(): void;
  /** Abort both directions (TCP RST / RST_STREAM). */
  reset(): void;
  /** Stop `data` (and, through the kernel or the flow-control window, the peer). */
  pause(): void;
  resume(): void;
  /**
   * Makes `events` the consumer, replacing any earlier one (a protocol reader hands the stream over
   * to a copy after an HTTP upgrade). Data and end that arrived before the first consumer are
   * delivered first; a stream that already closed reports `close` at once.
   */
  bind(events: StreamEvents): void;
}
