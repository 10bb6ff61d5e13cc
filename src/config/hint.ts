/** "Did you mean" hints: the closest known name by edit distance. */
import { editDistance } from "../core/mod.ts";

/** The closest candidate within a distance that still looks like a typo, if any. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.min(4, Math.floor(word.length / 3) + 1));
  let best: string | undefined;
  let bestD = limit + 1;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const d = cl === w ? 0 : editDistance(w, cl);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}
