/**
 * The L4 splice: copies bytes both ways between the client's stream and the upstream stream, honouring
 * backpressure (a full writer pauses its reader until `drain`), propagating half-close in each
 * direction independently, and turning an abort on either side into an abort of the other.
 * No allocation per chunk: chunks are handed through as they come.
 */
import type { ByteStream } from "./stream.ts";

export interface SpliceResult {
  /** Bytes from the client to the upstream (Istio's "received" bytes, the request direction). */
  received: number;
  /** Bytes from the upstream to the client (Istio's "sent" bytes, the response direction). */
  sent: number;
  /** Set when either side aborted (or the splice was aborted). */
  error?: Error;
}

export interface Splice {
  readonly received: number;
  readonly sent: number;
  readonly done: boolean;
  /** Abort both sides (drain timeout, shutdown). */
  abort(reason: Error): void;
}

/** Starts copying between `client` and `upstream`. `onDone` runs once, when both sides have closed. */
export function splice(
  client: ByteStream,
  upstream: ByteStream,
  onDone: (r: SpliceResult) => void,
): Splice {
  let received = 0;
  let sent = 0;
  let clientClosed = false;
  let upstreamClosed = false;
  let error: Error | undefined;
  let finished = false;

  const finish = () => {
    if (finished || !clientClosed || !upstreamClosed) return;
    finished = true;
    onDone({ received, sent, error });
  };
  const fail = (e: Error) => {
    error ??= e;
    if (!clientClosed) client.reset();
    if (!upstreamClosed) upstream.reset();
  };

  client.bind({
    data(chunk) {
      received += chunk.length;
      if (upstreamClosed) return;
      if (!upstream.write(chunk)) client.pause();
    },
    end() {
      if (!upstreamClosed) upstream.end();
    },
    drain() {
      if (!upstreamClosed) upstream.resume();
    },
    close(e) {
      clientClosed = true;
      if (e) fail(e);
      finish();
    },
  });
  upstream.bind({
    data(chunk) {
      sent += chunk.length;
      if (clientClosed) return;
      if (!client.write(chunk)) upstream.pause();
    },
    end() {
      if (!clientClosed) client.end();
    },
    drain() {
      if (!clientClosed) client.resume();
    },
    close(e) {
      upstreamClosed = true;
      if (e) fail(e);
      finish();
    },
  });

  return {
    get received() {
      return received;
    },
    get sent() {
      return sent;
    },
    get done() {
      return finished;
    },
    abort(reason: Error) {
      if (finished) return;
      fail(reason);
    },
  };
}
