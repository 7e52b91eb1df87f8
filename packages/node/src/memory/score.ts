/**
 * BM25+ scoring of one query word over a MiniSearch 7.2 index, in time slices. MiniSearch's
 * own `search` is synchronous: one common word over a few thousand notes held the event loop
 * for 10–170 ms on a loaded 2-core machine. This reads the same index (its documented-by-source
 * internals, pinned at 7.2.0) and computes the same scores as its OR query (`termResults`,
 * `calcBM25Score`, prefix and fuzzy weights), yielding whenever a slice has run SLICE_MS.
 */
import type MiniSearch from 'minisearch'

/** Longest the scorer runs before it lets the event loop go. */
export const SLICE_MS = 2

type Postings = Map<number, Map<number, number>> // fieldId → shortDocId → term frequency
interface TermMap {
  get: (term: string) => Postings | undefined
  atPrefix: (prefix: string) => Iterable<[string, Postings]>
  fuzzyGet: (term: string, maxDistance: number) => Map<string, [Postings, number]>
}
interface Internals {
  _index: TermMap
  _fieldIds: Record<string, number>
  _avgFieldLength: number[]
  _documentIds: Map<number, string>
  _fieldLength: Map<number, number[]>
  _documentCount: number
}

// MiniSearch 7.2 defaults (defaultSearchOptions): BM25+ parameters and expansion weights
const BM25 = { k: 1.2, b: 0.7, d: 0.5 }
const PREFIX_WEIGHT = 0.375
const FUZZY_WEIGHT = 0.45

/**
 * A clock that says when a slice is over; `pause` lets the event loop run. It also keeps the
 * process CPU time of the longest slice: unlike wall time, that does not grow when a loaded
 * machine leaves the process waiting, so it is what the node's own blocking is measured by.
 */
export class Slices {
  private start = performance.now()
  private cpu = process.cpuUsage()
  private n = 0
  count = 1
  maxCpuMs = 0

  /** Yield if the slice is over; the clock is read every 64 ticks, or now when `check`. */
  async tick (check = false): Promise<void> {
    if ((!check && (++this.n & 63) !== 0) || performance.now() - this.start < SLICE_MS) return
    await this.pause()
  }

  async pause (): Promise<void> {
    this.end()
    await new Promise(resolve => setImmediate(resolve))
    this.count++
    this.start = performance.now()
    this.cpu = process.cpuUsage()
  }

  /** Close the current slice's account. */
  end (): void {
    const used = process.cpuUsage(this.cpu)
    this.maxCpuMs = Math.max(this.maxCpuMs, (used.user + used.system) / 1000)
  }
}

/** The index terms a query term stands for, each with its weight (exact 1, prefix, fuzzy). */
function expansions (ix: Internals, term: string, prefix: boolean, fuzzy: number): Array<[Postings, number]> {
  const out: Array<[Postings, number]> = []
  const exact = ix._index.get(term)
  if (exact != null) out.push([exact, 1])
  const fuzzyMatches = fuzzy > 0 ? ix._index.fuzzyGet(term, fuzzy) : undefined
  if (prefix) {
    for (const [t, data] of ix._index.atPrefix(term)) {
      const distance = t.length - term.length
      if (distance === 0) continue
      fuzzyMatches?.delete(t) // a prefix match is scored as one, never twice
      out.push([data, PREFIX_WEIGHT * t.length / (t.length + 0.3 * distance)])
    }
  }
  for (const [t, [data, distance]] of fuzzyMatches ?? []) {
    if (distance !== 0) out.push([data, FUZZY_WEIGHT * t.length / (t.length + distance)])
  }
  return out
}

/** Add `term`'s BM25+ score to `acc` (short doc id → score) for every document it matches. */
export async function scoreTerm (index: MiniSearch, term: string, opts: { prefix: boolean, fuzzy: number, boosts: Record<string, number> }, acc: (doc: number, score: number) => void, slices: Slices): Promise<void> {
  const ix = index as unknown as Internals
  const terms = expansions(ix, term, opts.prefix, opts.fuzzy)
  await slices.tick(true)
  for (const [data, weight] of terms) {
    for (const [field, boost] of Object.entries(opts.boosts)) {
      const fieldId = ix._fieldIds[field] as number
      const freqs = data.get(fieldId)
      if (freqs == null) continue
      const matching = freqs.size
      const avg = ix._avgFieldLength[fieldId] as number
      const idf = Math.log(1 + (ix._documentCount - matching + 0.5) / (matching + 0.5))
      // a Map iterates safely while the index changes between slices (a note added or discarded)
      for (const [doc, tf] of freqs) {
        await slices.tick()
        // a discarded document stays in the postings until MiniSearch vacuums it
        const len = ix._documentIds.has(doc) ? ix._fieldLength.get(doc)?.[fieldId] : undefined
        if (len == null) continue
        const raw = idf * (BM25.d + tf * (BM25.k + 1) / (tf + BM25.k * (1 - BM25.b + BM25.b * len / avg)))
        acc(doc, weight * boost * raw)
      }
    }
  }
}

/** The caller's id of a short doc id, or undefined once the note left the index. */
export function docId (index: MiniSearch, doc: number): string | undefined {
  return (index as unknown as Internals)._documentIds.get(doc)
}
