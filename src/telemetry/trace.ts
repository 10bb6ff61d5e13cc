/**
 * W3C Trace Context (`traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) for following
 * one connection across hops: the source ztunnel starts one per outbound connection and sends it on the
 * HBONE CONNECT (docs/hbone.md §3), the waypoint and the destination ztunnel read it there (and start
 * one when it is absent or invalid, docs/hbone.md §4), and every access-log line carries its trace id as
 * `trace_id` (the field name OpenTelemetry gives trace context in non-OTLP logs).
 */

/** The parts of a valid traceparent. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  flags: string;
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
// Random bytes are drawn in blocks: one getRandomValues call serves about 170 connections.
const pool = new Uint8Array(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (used + bytes > pool.length) {
      crypto.getRandomValues(pool);
      used = 0;
    }
    let s = "";
    let zero = true;
    for (let i = used; i < used + bytes; i++) {
      if (pool[i] !== 0) zero = false;
      s += HEX2[pool[i]!]!;
    }
    used += bytes;
    // An all-zero id is invalid (W3C Trace Context 3.2.2.3 and 3.2.2.4).
    if (!zero) return s;
  }
}

/** A new random trace id (16 bytes, hex). */
export function newTraceId(): string {
  return randomHex(16);
}

/** A new random span (parent) id (8 bytes, hex). */
export function newSpanId(): string {
  return randomHex(8);
}

/**
 * A traceparent for a new span: in trace `traceId` when given (a hop continuing it), else in a new trace.
 * `flags` "00" (not sampled) is what a ztunnel sends, as Istio's does; "01" marks a trace as recorded.
 */
export function newTraceparent(traceId?: string, flags = "00"): string {
  return `00-${traceId ?? newTraceId()}-${newSpanId()}-${flags}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The parts of a received traceparent, or undefined when it is absent or invalid (W3C Trace Context 4.3:
 * version ff, all-zero ids, a version-00 header with extra parts). A later version is read by its first
 * four parts.
 */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === "ff" || (m[1] === "00" && m[5] !== undefined)) return undefined;
  if (/^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, flags: m[4]! };
}

/** The trace id of a traceparent this process wrote (or validated). */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}
