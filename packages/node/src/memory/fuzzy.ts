/**
 * Bounded Levenshtein distance over UTF-16 code units (SPEC.md §11.6: fuzzy query words),
 * computed in place: no string or array is made per candidate term. A query word is compared
 * only with the index's terms whose length is within the bound (text-index.ts keeps them by
 * length), and a comparison stops as soon as the bound is passed.
 */

/** One DP row, reused (grown when a longer term comes). */
let row = new Int32Array(64)

/** The edit distance of `a` and `b` when it is at most `k`, else `k + 1`. */
export function distanceAtMost(a: string, b: string, k: number): number {
  const la = a.length
  const lb = b.length
  if (Math.abs(la - lb) > k) return k + 1
  if (k === 0) return a === b ? 0 : 1
  if (k === 1) return withinOne(a, b)
  // banded DP: only cells within k of the diagonal can be at most k
  if (row.length < lb + 1) row = new Int32Array(lb + 1 + (lb >> 1))
  const r = row
  const big = k + 1
  for (let j = 0; j <= lb; j++) r[j] = j <= k ? j : big
  for (let i = 1; i <= la; i++) {
    const from = Math.max(1, i - k)
    const to = Math.min(lb, i + k)
    // r[from - 1] still holds the row above's value; diag is that, the cell left of the band is out of bounds
    let diag = r[from - 1] as number
    r[from - 1] = from - 1 === 0 ? i : big
    let best = r[from - 1] as number
    const ca = a.charCodeAt(i - 1)
    for (let j = from; j <= to; j++) {
      const up = r[j] as number
      const v = Math.min(diag + (ca === b.charCodeAt(j - 1) ? 0 : 1), up + 1, (r[j - 1] as number) + 1)
      diag = up
      r[j] = Math.min(v, big)
      if (v < best) best = v
    }
    if (to < lb) r[to + 1] = big
    if (best > k) return big
  }
  const d = r[lb] as number
  return d > k ? big : d
}

/** Distance 0 or 1, else 2: one replaced, added or dropped code unit, in one pass. */
function withinOne(a: string, b: string): number {
  let la = a.length
  let lb = b.length
  if (la > lb) {
    const t = a
    a = b
    b = t
    la = a.length
    lb = b.length
  }
  let i = 0
  while (i < la && a.charCodeAt(i) === b.charCodeAt(i)) i++
  if (i === la) return lb - la // equal, or one added at the end
  // the first difference: replaced (same length) or added in b (one longer); the rest must match
  const skip = la === lb ? 1 : 0
  for (let j = i + 1; j < lb; j++) if (a.charCodeAt(j - 1 + skip) !== b.charCodeAt(j)) return 2
  return 1
}
