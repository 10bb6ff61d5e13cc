/** "Did you mean" hints: the closest known name by edit distance. */

/** The closest candidate within a distance that still looks like a typo, if any. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.min(4, Math.floor(word.length / 3) + 1));
  let best: string | undefined;
  let bestD = limit + 1;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const d = cl === w ? 0 : distance(w, cl);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
