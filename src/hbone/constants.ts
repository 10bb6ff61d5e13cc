/** HTTP/2 wire constants (RFC 9113 sections 6, 7 and 11) and the HBONE settings (docs/hbone.md §2). */

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** HTTP/2 error codes (RFC 9113 section 7). */
export const H2Code = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;
export type H2Code = (typeof H2Code)[keyof typeof H2Code];

const codeNames = Object.fromEntries(Object.entries(H2Code).map(([k, v]) => [v, k])) as Record<number, string>;
/** Name of an HTTP/2 error code, or its hex value when unknown (unknown codes are legal: RFC 9113 7). */
export function h2CodeName(code: number): string {
  return codeNames[code] ?? `0x${code.toString(16)}`;
}

/** The client connection preface (RFC 9113 section 3.4). */
export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FRAME_HEADER_LENGTH = 9;
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fff_ffff;
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 0xff_ffff;
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/** HBONE's HTTP/2 settings, as Istio's ztunnel uses them (docs/hbone.md §2). */
export const HBONE = {
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  maxFrameSize: 1024 * 1024,
  clientMaxHeaderListSize: 16 * 1024,
  serverMaxHeaderListSize: 64 * 1024,
  serverMaxConcurrentStreams: 200,
  poolMaxStreamsPerConnection: 100,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  // Short: after a burst of tunnels the surplus connections (one per 100 streams) go within seconds, so
  // file descriptors and memory return to their baseline; a new connection costs one handshake.
  poolIdleTimeoutMs: 10_000,
  port: 15008,
} as const;
