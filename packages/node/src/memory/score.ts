/**
 * BM25+ scoring of a query over the recall index (text-index.ts), ranked as MiniSearch 7.2
 * ranks an OR query (the engine before this one; SPEC.md §11.6): per word, its exact term,
 * prefix and fuzzy expansions weighted as MiniSearch weights them, summed per note, times the
 * number of query words the note matches; the best `limit` notes that pass `keep`. It yields
 * to the event loop whenever a slice has run SLICE_MS, checked between posting lists.
 */
import { distanceAtMost } from './fuzzy.js'
import { FUZZY_MAX_LENGTH, type Postings, PREFIX_KEY, type TextIndex } from './text-index.js'

/** Longest the scorer runs before it lets the event loop go. */
export const SLICE_MS = 2

// MiniSearch 7.2 defaults (defaultSearchOptions): BM25+ parameters and expansion weights
const BM25 = { k: 1.2, b: 0.7, d: 0.5 }
const PREFIX_WEIGHT = 0.375
const FUZZY_WEIGHT = 0.45
/** Field boosts, in FIELDS order (content, tags): tags count twice. */
const BOOSTS = [1, 2]

export interface SearchWord {
  stem: string
  prefix: boolean
  fuzzy: number
}
export interface Hit {
  id: string
  score: number
}

/**
 * A clock that says when a slice is over; `pause` lets the event loop run. It also keeps the
 * process CPU time of the longest slice: unlike wall time, that does not grow when a loaded
 * machine leaves the process waiting, so it is what the node's own blocking is measured by.
 */
export class Slices {
  private start = performance.now()
  private cpu = process.cpuUsage()
  count = 1
  maxCpuMs = 0

  /** Yield if the slice has run SLICE_MS. */
  async tick(): Promise<void> {
    if (performance.now() - this.start >= SLICE_MS) await this.pause()
  }

  async pause(): Promise<void> {
    this.end()
    await new Promise(resolve => setImmediate(resolve))
    this.count++
    this.start = performance.now()
    this.cpu = process.cpuUsage()
  }

  /** Close the current slice's account. */
  end(): void {
    const used = process.cpuUsage(this.cpu)
    this.maxCpuMs = Math.max(this.maxCpuMs, (used.user + used.system) / 1000)
  }
}

/** Index terms within edit distance 1..`k` of `term`, each with its distance: the terms of a near length, compared in place. */
export function fuzzyTerms(ix: TextIndex, term: string, k: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let len = Math.max(1, term.length - k); len <= Math.min(term.length + k, FUZZY_MAX_LENGTH); len++) {
    for (const t of ix.withLength(len)) {
      const d = distanceAtMost(ix.term(t), term, k)
      if (d >= 1 && d <= k) out.push([t, d])
    }
  }
  return out
}

/** The index terms a query word stands for, each with its weight (exact 1, prefix, fuzzy). */
function expansions(ix: TextIndex, w: SearchWord): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const exact = ix.termId(w.stem)
  if (exact != null) out.push([exact, 1])
  const fuzzy = new Map(w.fuzzy > 0 ? fuzzyTerms(ix, w.stem, w.fuzzy) : [])
  if (w.prefix && w.stem.length >= PREFIX_KEY) {
    for (const t of ix.withPrefix(w.stem)) {
      const len = ix.term(t).length
      const distance = len - w.stem.length
      if (distance === 0) continue
      fuzzy.delete(t) // a prefix match is scored as one, never twice
      out.push([t, (PREFIX_WEIGHT * len) / (len + 0.3 * distance)])
    }
  }
  for (const [t, distance] of fuzzy) {
    const len = ix.term(t).length
    out.push([t, (FUZZY_WEIGHT * len) / (len + distance)])
  }
  return out
}

/** Per-document accumulators of one search, sized to the index when it started. */
class Scratch {
  readonly score: Float64Array
  readonly words: Uint8Array
  readonly last: Uint8Array
  readonly touched: Int32Array
  n = 0
  constructor(readonly size: number) {
    this.score = new Float64Array(size)
    this.words = new Uint8Array(size)
    this.last = new Uint8Array(size)
    this.touched = new Int32Array(size)
  }

  reset(): void {
    for (let i = 0; i < this.n; i++) {
      const d = this.touched[i] as number
      this.score[d] = 0
      this.words[d] = 0
      this.last[d] = 0
    }
    this.n = 0
  }
}

let spare: Scratch | undefined

/** Add one posting list's BM25+ scores, for query word number `word` (1-based). */
function scoreList(ix: TextIndex, p: Postings, field: number, weight: number, word: number, s: Scratch): void {
  const { docs, tfs, n, live } = p
  const avg = ix.avgLen(field)
  const lens = ix.lens[field] as Uint16Array
  const alive = ix.alive
  const idf = Math.log(1 + (ix.size - live + 0.5) / (live + 0.5))
  const w = weight * (BOOSTS[field] as number) * idf
  for (let j = 0; j < n; j++) {
    const d = docs[j] as number
    if (d >= s.size || alive[d] !== 1) continue
    const tf = tfs[j] as number
    const raw = BM25.d + (tf * (BM25.k + 1)) / (tf + BM25.k * (1 - BM25.b + (BM25.b * (lens[d] as number)) / avg))
    if (s.last[d] !== word) {
      if (s.last[d] === 0) s.touched[s.n++] = d
      s.last[d] = word
      s.words[d] = (s.words[d] as number) + 1
    }
    s.score[d] = (s.score[d] as number) + w * raw
  }
}

/** The best `limit` notes for `words` that pass `keep`, best first. */
export async function search(
  ix: TextIndex,
  words: SearchWord[],
  limit: number,
  keep: ((id: string) => boolean) | undefined,
  slices: Slices
): Promise<Hit[]> {
  const s = spare != null && spare.size >= ix.capacity ? spare : new Scratch(Math.max(ix.capacity, 1024))
  spare = undefined
  try {
    for (const [i, w] of words.entries()) {
      for (const [term, weight] of expansions(ix, w)) {
        for (let f = 0; f < ix.lens.length; f++) {
          const p = ix.postings(term, f)
          if (p != null) scoreList(ix, p, f, weight, i + 1, s)
        }
        await slices.tick()
      }
      await slices.tick() // a word that matches nothing still cost its fuzzy variants
    }
    return await top(ix, s, limit, keep, slices)
  } finally {
    s.reset()
    spare = s
    slices.end()
  }
}

/** The `limit` best scored documents that pass `keep` (a min-heap: `keep` is asked only of a document that would enter it). */
async function top(ix: TextIndex, s: Scratch, limit: number, keep: ((id: string) => boolean) | undefined, slices: Slices): Promise<Hit[]> {
  const heap: Hit[] = []
  const less = (a: number, b: number): boolean => (heap[a] as Hit).score < (heap[b] as Hit).score
  const swap = (a: number, b: number): void => {
    const t = heap[a] as Hit
    heap[a] = heap[b] as Hit
    heap[b] = t
  }
  for (let i = 0; i < s.n; i++) {
    if ((i & 4095) === 4095) await slices.tick()
    const d = s.touched[i] as number
    const score = (s.score[d] as number) * (s.words[d] as number)
    if (heap.length >= limit && score <= (heap[0] as Hit).score) continue
    const id = ix.idOf(d)
    if (id == null || (keep != null && !keep(id))) continue
    if (heap.length < limit) {
      heap.push({ id, score })
      for (let c = heap.length - 1; c > 0 && less(c, (c - 1) >> 1); c = (c - 1) >> 1) swap(c, (c - 1) >> 1)
    } else {
      heap[0] = { id, score }
      for (let c = 0; ; ) {
        const l = 2 * c + 1
        const m = l + 1 < heap.length && less(l + 1, l) ? l + 1 : l
        if (l >= heap.length || !less(m, c)) break
        swap(m, c)
        c = m
      }
    }
  }
  return heap.sort((a, b) => b.score - a.score)
}
