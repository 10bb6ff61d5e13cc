/**
 * HTTP/2 SETTINGS (RFC 9113 section 6.5): what we advertise (HBONE's values, docs/hbone.md §2),
 * and the validation and bookkeeping of what the peer sends.
 */
import { DEFAULT_WINDOW, H2Code, HBONE, MAX_MAX_FRAME_SIZE, MAX_WINDOW, MIN_MAX_FRAME_SIZE, Setting } from "./constants.ts";
import { H2ProtocolError } from "./errors.ts";

/** HTTP/2 settings we advertise, and limits we apply. Defaults are HBONE's (docs/hbone.md §2). */
export interface H2Settings {
  streamWindow: number;
  connectionWindow: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
  /** Streams the peer may open (server), advertised as SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number;
  /** Keepalive PING after this much silence; 0 disables. */
  pingIntervalMs: number;
  /** Close when a PING is unanswered for this long. */
  pingTimeoutMs: number;
}

export function defaultSettings(isClient: boolean): H2Settings {
  return {
    streamWindow: HBONE.streamWindow,
    connectionWindow: HBONE.connectionWindow,
    maxFrameSize: HBONE.maxFrameSize,
    maxHeaderListSize: isClient ? HBONE.clientMaxHeaderListSize : HBONE.serverMaxHeaderListSize,
    maxConcurrentStreams: HBONE.serverMaxConcurrentStreams,
    pingIntervalMs: HBONE.pingIntervalMs,
    pingTimeoutMs: HBONE.pingTimeoutMs,
  };
}


/** The SETTINGS frame we send first. */
export function ourSettings(s: H2Settings, isClient: boolean): [number, number][] {
  const list: [number, number][] = [
    [Setting.INITIAL_WINDOW_SIZE, s.streamWindow],
    [Setting.MAX_FRAME_SIZE, s.maxFrameSize],
    [Setting.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize],
  ];
  // A client turns server push off; a server limits the streams a client may open.
  if (isClient) list.unshift([Setting.ENABLE_PUSH, 0]);
  else list.unshift([Setting.MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams]);
  return list;
}

/** The peer's settings as they apply to what we send. */
export interface PeerSettings {
  maxFrameSize: number;
  initialWindow: number;
  maxConcurrentStreams: number;
  /** Last SETTINGS_HEADER_TABLE_SIZE received, if any (our HPACK encoder follows it). */
  headerTableSize?: number;
}

/** Values in force before the peer's first SETTINGS (RFC 9113 6.5.2). */
export function initialPeerSettings(): PeerSettings {
  return { maxFrameSize: MIN_MAX_FRAME_SIZE, initialWindow: DEFAULT_WINDOW, maxConcurrentStreams: Infinity };
}

/** Validates and applies one SETTINGS payload (not an ACK). Throws H2ProtocolError. */
export function applyPeerSettings(p: Uint8Array, peer: PeerSettings, isClient: boolean): void {
  if (p.length % 6 !== 0) throw new H2ProtocolError(H2Code.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
  for (let o = 0; o < p.length; o += 6) {
    const key = (p[o] << 8) | p[o + 1];
    const v = ((p[o + 2] << 24) | (p[o + 3] << 16) | (p[o + 4] << 8) | p[o + 5]) >>> 0;
    switch (key) {
      case Setting.HEADER_TABLE_SIZE:
        peer.headerTableSize = v;
        break;
      case Setting.ENABLE_PUSH:
        if (v > 1) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH above 1");
        // Only a client may announce push; we never push either way.
        if (v === 1 && isClient) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "A server sent SETTINGS_ENABLE_PUSH=1");
        break;
      case Setting.MAX_CONCURRENT_STREAMS:
        peer.maxConcurrentStreams = v;
        break;
      case Setting.INITIAL_WINDOW_SIZE:
        if (v > MAX_WINDOW) throw new H2ProtocolError(H2Code.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large");
        peer.initialWindow = v;
        break;
      case Setting.MAX_FRAME_SIZE:
        if (v < MIN_MAX_FRAME_SIZE || v > MAX_MAX_FRAME_SIZE) {
          throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        }
        peer.maxFrameSize = v;
        break;
      case Setting.ENABLE_CONNECT_PROTOCOL:
        if (v > 1) throw new H2ProtocolError(H2Code.PROTOCOL_ERROR, "SETTINGS_ENABLE_CONNECT_PROTOCOL above 1");
        break;
      default:
        break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (RFC 9113 6.5.2)
    }
  }
}
