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
 * lengths are `lens`; the per-document entries, arrays of `capacity`. Throws on anything inconsistent.
 */
export function unpackLists(p: PackedLists, lists: Lists, n: number, lens: Uint16Array[], capacity: number): DocTerms {
  const bad = (what: string): never => {
    throw new Error(`recall index snapshot: ${what}`)
  }
  if (p.listKey.length !== p.listLen.length || p.docs.length !== p.tfs.length) bad('postings of the wrong length')
  const perDoc = new Uint16Array(n)
  let at = 0
  for (let k = 0; k < p.listKey.length; k++) {
    const key = p.listKey[k] as number
    const len = p.listLen[k] as number
    const field = lists[key & 1] as Array<Postings | undefined>
    const term = key >>> 1
    if (term >= field.length || field[term] != null || len <= 0 || at + len > p.docs.length) bad('a list out of range')
    // views into the packed arrays (no copy, no allocation per list): a list that grows or is compacted gets arrays of its own
    const docs = p.docs.subarray(at, at + len)
    const tfs = p.tfs.subarray(at, at + len)
    for (let j = 0; j < len; j++) {
      const d = docs[j] as number
      if (d < 0 || d >= n || (j > 0 && d <= (docs[j - 1] as number)) || tfs[j] === 0 || perDoc[d] === 0xffff) bad('a posting out of order')
      perDoc[d] = (perDoc[d] as number) + 1
    }
    field[term] = { docs, tfs, n: len, live: len }
    at += len
  }
  if (at !== p.docs.length) bad('postings left over')
  return docTermsOf(lists, n, perDoc, lens, capacity)
}

/** Each document's (term << 1 | field) entries, checked against its field lengths. */
function docTermsOf(lists: Lists, n: number, perDoc: Uint16Array, lens: Uint16Array[], capacity: number): DocTerms {
  const nf = lists.length
  const docStart = new Int32Array(capacity)
  const docCount = new Uint16Array(capacity)
  let total = 0
  for (let d = 0; d < n; d++) {
    docStart[d] = total
    total += perDoc[d] as number
  }
  const docTerms = new Int32Array(Math.max(total, 16))
  const fill = new Uint16Array(n * nf)
  for (let f = 0; f < nf; f++) {
    const field = lists[f] as Array<Postings | undefined>
    for (let t = 0; t < field.length; t++) {
      const p = field[t]
      if (p == null) continue
      for (let j = 0; j < p.n; j++) {
        const d = p.docs[j] as number
        docTerms[(docStart[d] as number) + (docCount[d] as number)] = (t << 1) | f
        docCount[d] = (docCount[d] as number) + 1
        fill[d * nf + f] = (fill[d * nf + f] as number) + 1
      }
    }
  }
  for (let d = 0; d < n; d++) {
    for (let f = 0; f < nf; f++)
      if (Math.min(fill[d * nf + f] as number, 0xffff) !== (lens[f] as Uint16Array)[d])
        throw new Error('recall index snapshot: a field length that its postings contradict')
  }
  return { docStart, docCount, docTerms, end: total }
}
