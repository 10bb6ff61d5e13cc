/** Go-style durations as Istio and Kubernetes write them: "24h", "1h30m", "90s", "250ms". */

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };

/** Seconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return total;
}
