/**
 * Posting lists in and out of an index snapshot (index-snapshot.ts, SPEC.md §11.3): the lists
 * of the live documents, renumbered, packed list after list; and back, each list a view into
 * the packed arrays, with the per-document entries (`docTerms`) a removal needs, every count
 * checked (a snapshot is never trusted).
 */

/** One term's postings in one field. `live` counts postings of live documents (the term's document frequency). */
export interface Postings {
  docs: Int32Array
  tfs: Uint8Array
  n: number
  live: number
}

/** Lists per field, indexed by term. */
export type Lists = Array<Array<Postings | undefined>>

export interface PackedLists {
  terms: string[]
  listKey: Int32Array
  listLen: Int32Array
  docs: Int32Array
  tfs: Uint8Array
}

/** The lists with live postings, documents renumbered by `renum` (-1: dead), terms without any left out. */
export function packLists(lists: Lists, terms: readonly string[], renum: Int32Array): PackedLists {
  let total = 0
  for (const l of lists) for (const p of l) if (p != null) total += p.live
  const docs = new Int32Array(total)
  const tfs = new Uint8Array(total)
  const kept: string[] = []
  const listKey: number[] = []
  const listLen: number[] = []
  let at = 0
  for (let t = 0; t < terms.length; t++) {
    let has = false
    for (let f = 0; f < lists.length; f++) {
      const p = lists[f]?.[t]
      if (p == null || p.live === 0) continue
      if (!has) {
        has = true
        kept.push(terms[t] as string)
      }
      const before = at
      for (let j = 0; j < p.n; j++) {
        const k = renum[p.docs[j] as number] as number
        if (k >= 0) {
          docs[at] = k
          tfs[at++] = p.tfs[j] as number
        }
      }
      listKey.push(((kept.length - 1) << 1) | f)
      listLen.push(at - before)
    }
  }
  return { terms: kept, listKey: Int32Array.from(listKey), listLen: Int32Array.from(listLen), docs, tfs }
}

export interface DocTerms {
  docStart: Int32Array<ArrayBuffer>
  docCount: Uint16Array<ArrayBuffer>
  docTerms: Int32Array<ArrayBuffer>
  end: number
}

/**
 * Fill `lists` (one slot per term, empty) from packed lists over `n` documents whose field
 * lengths are `lens`: each list a view into the packed arrays. Throws on anything inconsistent
 * (a posting out of range or order, a field length its postings contradict). The per-document
 * entries a removal needs are not made here (forwardOf makes them when a removal needs them).
 */
export function unpackLists(p: PackedLists, lists: Lists, n: number, lens: Uint16Array[]): void {
  const bad = (what: string): never => {
    throw new Error(`recall index snapshot: ${what}`)
  }
  if (p.listKey.length !== p.listLen.length || p.docs.length !== p.tfs.length) bad('postings of the wrong length')
  const nf = lists.length
  // per document and field: its postings, which must be its field length (distinct terms)
  const fill = new Uint32Array(n * nf)
  let at = 0
  for (let k = 0; k < p.listKey.length; k++) {
    const key = p.listKey[k] as number
    const len = p.listLen[k] as number
    const f = key & 1
    const field = lists[f] as Array<Postings | undefined>
    const term = key >>> 1
    if (key < 0 || term >= field.length || field[term] != null || len <= 0 || at + len > p.docs.length) bad('a list out of range')
    // views into the packed arrays (no copy, no allocation per list): a list that grows or is compacted gets arrays of its own
    const docs = p.docs.subarray(at, at + len)
    const tfs = p.tfs.subarray(at, at + len)
    let prev = -1
    for (let j = 0; j < len; j++) {
      const d = docs[j] as number
      if (d <= prev || d >= n || tfs[j] === 0) bad('a posting out of order')
      prev = d
      fill[d * nf + f] = (fill[d * nf + f] as number) + 1
    }
    field[term] = { docs, tfs, n: len, live: len }
    at += len
  }
  if (at !== p.docs.length) bad('postings left over')
  for (let f = 0; f < nf; f++) {
    const l = lens[f] as Uint16Array
    for (let d = 0; d < n; d++)
      if (Math.min(fill[d * nf + f] as number, 0xffff) !== l[d]) bad('a field length that its postings contradict')
  }
}

/**
 * The (term << 1 | field) entries of documents 0..limit-1, from the lists (made only when the
 * removals of documents loaded from a snapshot are many enough to be worth it).
 */
export function forwardOf(lists: Lists, limit: number): { start: Int32Array; count: Uint32Array; terms: Int32Array } {
  const count = new Uint32Array(limit)
  for (const field of lists)
    for (const p of field) {
      if (p == null) continue
      for (let j = 0; j < p.n; j++) {
        const d = p.docs[j] as number
        if (d < limit) count[d] = (count[d] as number) + 1
      }
    }
  const start = new Int32Array(limit)
  let total = 0
  for (let d = 0; d < limit; d++) {
    start[d] = total
    total += count[d] as number
  }
  const terms = new Int32Array(total)
  count.fill(0)
  for (let f = 0; f < lists.length; f++) {
    const field = lists[f] as Array<Postings | undefined>
    for (let t = 0; t < field.length; t++) {
      const p = field[t]
      if (p == null) continue
      for (let j = 0; j < p.n; j++) {
        const d = p.docs[j] as number
        if (d >= limit) continue
        terms[(start[d] as number) + (count[d] as number)] = (t << 1) | f
        count[d] = (count[d] as number) + 1
      }
    }
  }
  return { start, count, terms }
}

/** Where `doc` is in a list's postings (sorted by document), or -1. */
export function findPosting(p: Postings, doc: number): number {
  let lo = 0
  let hi = p.n - 1
  const docs = p.docs
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const d = docs[mid] as number
    if (d === doc) return mid
    if (d < doc) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}
