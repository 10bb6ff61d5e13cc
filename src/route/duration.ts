/**
 * Gateway API durations (GEP-2257): one to four `<number><unit>` parts, units h, m, s, ms, numbers of at
 * most five digits ("500ms", "1h30m", "0s"). A subset of Go's time.ParseDuration.
 */

const WHOLE = /^(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}$/;
const PART = /([0-9]{1,5})(h|ms|m|s)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/**
 * Milliseconds in a Gateway API duration, or undefined if the text is not one.
 *
 * @example
 * parseGatewayDuration("1m30s") // 90000
 * parseGatewayDuration("1.5s")  // undefined: fractions are not Gateway API durations
 */
export function parseGatewayDuration(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/**
 * A timeout field as the proxy applies it: undefined when absent, zero ("0s" disables the timeout, per
 * the spec) or not a valid duration (config validation reports those; the proxy must not invent one).
 */
export function timeoutMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseGatewayDuration(text);
  return ms === undefined || ms === 0 ? undefined : ms;
}
