/**
 * HTTP/2 flow-control accounting (RFC 9113 sections 5.2 and 6.9), for the connection and for each
 * stream. Send side: we may send what the peer's window allows. Receive side: the peer may send
 * what we advertised; bytes go back to the peer (WINDOW_UPDATE) only once the application has taken
 * them, so a reader that stops reading stops its writer. Returning them in batches of a quarter
 * window keeps WINDOW_UPDATE frames rare without starving the sender.
 */
import { MAX_WINDOW } from "./constants.ts";

/** The three numbers one window needs (HboneStream carries them as plain fields: no extra object). */
export interface FlowState {
  /** Bytes the peer lets us send. May go negative after a SETTINGS change (RFC 9113 6.9.2). */
  sendWindow: number;
  /** Bytes the peer may still send us. */
  recvWindow: number;
  /** Bytes the application took that the peer has not been given back yet. */
  recvUnacked: number;
}

/** The peer sent `n` flow-controlled bytes; false when that is more than the window allowed. */
export function receiveBytes(w: FlowState, n: number): boolean {
  w.recvWindow -= n;
  return w.recvWindow >= 0;
}

/**
 * The application took `n` bytes. Returns the WINDOW_UPDATE increment to send now, or 0 while less
 * than a quarter of `windowSize` is waiting to be returned.
 */
export function releaseBytes(w: FlowState, n: number, windowSize: number): number {
  w.recvUnacked += n;
  if (w.recvUnacked < windowSize >>> 2) return 0;
  const inc = w.recvUnacked;
  w.recvUnacked = 0;
  w.recvWindow += inc;
  return inc;
}

/** WINDOW_UPDATE, or a SETTINGS_INITIAL_WINDOW_SIZE change (`inc` may be negative). False on overflow. */
export function growSendWindow(w: FlowState, inc: number): boolean {
  w.sendWindow += inc;
  return w.sendWindow <= MAX_WINDOW;
}

/** How many of `want` bytes both windows allow now (0 when either is used up). */
export function sendable(conn: FlowState, stream: FlowState, want: number): number {
  const n = Math.min(want, conn.sendWindow, stream.sendWindow);
  return n > 0 ? n : 0;
}

/** Charges `n` sent bytes to both windows. */
export function spend(conn: FlowState, stream: FlowState, n: number): void {
  conn.sendWindow -= n;
  stream.sendWindow -= n;
}
