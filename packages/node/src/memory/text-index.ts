/**
 * The recall index (SPEC.md §11.6): an inverted index over the notes that are not forgotten,
 * derived from the replica's `memory` map. Postings are typed arrays (a document number and a
 * term frequency per entry, one list per term and field), so 100k notes take ~20 MB and a
 * query scores tens of thousands of postings in well under a millisecond (bench/recall.mjs
 * measured SQLite FTS5, FlexSearch, Orama and MiniSearch on the same notes: none met the
 * targets with BM25 ranking, prefix and fuzzy words; see the report of issue 12).
 * A removed note's postings stay until its lists are compacted; document numbers are never
 * reused while the index lives, so a stale posting can only point at a dead document.
 * `toParts`/`fromParts` turn the live part into arrays and back (index-snapshot.ts stores them).
 */
import { DocMeta, type NoteMeta } from './doc-meta.js'
import { grow } from './grow.js'
import { NoteIds } from './note-ids.js'
import { findPosting, forwardOf, type Lists, packLists, type Postings, unpackLists } from './postings.js'
import { processTerm, tokenize } from './terms.js'

export type { NoteMeta, Postings }

export const FIELDS = ['content', 'tags'] as const
export type Field = (typeof FIELDS)[number]
const NF = FIELDS.length

/**
 * An index as plain arrays (index-snapshot.ts stores them): the live notes numbered 0..n-1,
 * the terms with live postings, and each (term, field) list's postings in document order.
 */
export interface IndexParts {
  ids: string[]
  /** instead of `ids` (a snapshot's): 16 lowercase hex bytes per note */
  idHex?: Uint8Array
  /** per document: the source item's client and clock, -1 when unknown */
  source: Float64Array
  authors: string[]
  authorOf: Int32Array
  tags: string[]
  tagCount: Uint8Array
  tagPool: Int32Array
  /** per field, per document */
  lens: Uint16Array[]
  terms: string[]
  /** per list: term << 1 | field, and its number of postings */
  listKey: Int32Array
  listLen: Int32Array
  docs: Int32Array
  tfs: Uint8Array
}

/** Prefix expansions are found through a term's first letters. */
export const PREFIX_KEY = 3
/**
 * Removals of documents loaded from a snapshot that find their postings by a search of every
 * list (a few ms each at 100k notes); after this many, the entries of every loaded document
 * are made at once (one pass over the postings).
 */
const LAZY_REMOVALS = 8
/** Longest term a fuzzy query word is compared with (query words of at most 16 letters, distance at most 1: SPEC.md §11.6). */
export const FUZZY_MAX_LENGTH = 24

export class TextIndex {
  /** document number ↔ note id (a removed document keeps its number, never handed out again) */
  private readonly ids = new NoteIds()
  alive = new Uint8Array(1024)
  /** per field, per document: its number of distinct terms (MiniSearch's field length) */
  readonly lens: Uint16Array[] = FIELDS.map(() => new Uint16Array(1024))
  private readonly lenSum = new Float64Array(NF)
  /** per document, where its (term << 1 | field) entries start in `docTerms`, and how many */
  private docStart = new Int32Array(1024)
  private docCount = new Uint16Array(1024)
  private docTerms = new Int32Array(1 << 12)
  private docTermsEnd = 0
  /** documents below this were loaded from a snapshot and have no entries in `docTerms` yet (made on demand) */
  private lazyUntil = 0
  private lazyRemovals = 0

  /** per document, its author, tags and source item */
  private readonly meta = new DocMeta()

  private readonly termIds = new Map<string, number>()
  /** word (lowercased) → its term's id: one lookup per word while indexing, no stemming */
  private readonly wordIds = new Map<string, number>()
  /** per term, the (document, field) that last counted it, and its count there: term frequencies without a Map per note */
  private stamp = new Int32Array(1024)
  private count = new Uint16Array(1024)
  private readonly uniq: number[] = []
  private readonly terms: string[] = []
  private readonly lists: Lists = FIELDS.map(() => [])
  private readonly byPrefix = new Map<string, number[]>()
  /** term ids by length (up to FUZZY_MAX_LENGTH): the candidates of a fuzzy query word */
  private readonly byLength: number[][] = []
  size = 0

  /** document numbers handed out so far (the size a per-document array must have) */
  get capacity(): number {
    return this.ids.count
  }

  has(id: string): boolean {
    return this.ids.get(id) != null
  }

  /** Average field length over the live documents. */
  avgLen(field: number): number {
    return this.size === 0 ? 0 : (this.lenSum[field] as number) / this.size
  }

  idOf(doc: number): string | undefined {
    return this.alive[doc] === 1 ? this.ids.idOf(doc) : undefined
  }

  termId(term: string): number | undefined {
    return this.termIds.get(term)
  }
  term(id: number): string {
    return this.terms[id] as string
  }
  postings(term: number, field: number): Postings | undefined {
    return this.lists[field]?.[term]
  }

  /** Terms of `length` UTF-16 code units (none above FUZZY_MAX_LENGTH). */
  withLength(length: number): readonly number[] {
    return this.byLength[length] ?? []
  }

  /** Terms that start with `prefix` (at least PREFIX_KEY letters long). */
  *withPrefix(prefix: string): Iterable<number> {
    for (const t of this.byPrefix.get(prefix.slice(0, PREFIX_KEY)) ?? []) if ((this.terms[t] as string).startsWith(prefix)) yield t
  }

  add(id: string, fields: Record<Field, string>, meta: NoteMeta = { author: '', tags: [] }): void {
    if (this.has(id)) this.remove(id)
    const doc = this.ids.add(id)
    if (doc >= this.alive.length) this.growDocs(doc + 1)
    this.alive[doc] = 1
    this.docStart[doc] = this.docTermsEnd
    let entries = 0
    for (let f = 0; f < NF; f++) {
      const uniq = this.countTerms(fields[FIELDS[f] as Field], doc * NF + f + 1)
      const len = Math.min(uniq.length, 0xffff)
      ;(this.lens[f] as Uint16Array)[doc] = len
      this.lenSum[f] = (this.lenSum[f] as number) + len
      if (this.docTermsEnd + entries + uniq.length > this.docTerms.length)
        this.docTerms = grow(this.docTerms, this.docTermsEnd + entries + uniq.length)
      for (const tid of uniq) {
        this.append(tid, f, doc, this.count[tid] as number)
        this.docTerms[this.docTermsEnd + entries++] = (tid << 1) | f
      }
    }
    this.docCount[doc] = Math.min(entries, 0xffff)
    this.meta.set(doc, meta)
    this.docTermsEnd += entries
    this.size++
  }

  remove(id: string): void {
    const doc = this.ids.get(id)
    if (doc == null) return
    this.ids.delete(id)
    this.alive[doc] = 0
    this.size--
    for (let f = 0; f < NF; f++) this.lenSum[f] = (this.lenSum[f] as number) - ((this.lens[f] as Uint16Array)[doc] as number)
    if (doc < this.lazyUntil && ++this.lazyRemovals > LAZY_REMOVALS) this.makeForward()
    if (doc < this.lazyUntil) {
      // a loaded document whose entries were never made: find it in every list
      for (let f = 0; f < NF; f++) {
        const lists = this.lists[f] as Array<Postings | undefined>
        for (let t = 0; t < lists.length; t++) {
          const p = lists[t]
          if (p != null && findPosting(p, doc) >= 0) this.drop(p)
        }
      }
      return
    }
    const start = this.docStart[doc] as number
    for (let i = start; i < start + (this.docCount[doc] as number); i++) {
      const e = this.docTerms[i] as number
      const p = this.lists[e & 1]?.[e >>> 1]
      if (p != null) this.drop(p)
    }
  }

  /** One posting of `p` is now of a removed document. */
  private drop(p: Postings): void {
    p.live--
    if (p.n - p.live > Math.max(16, p.n >> 1)) this.compact(p)
  }

  /** The `docTerms` entries of every document loaded from the snapshot, before those of the documents added since. */
  private makeForward(): void {
    const limit = this.lazyUntil
    const fwd = forwardOf(this.lists, limit)
    const total = fwd.terms.length
    const docTerms = new Int32Array(Math.max(total + this.docTermsEnd, 16))
    docTerms.set(fwd.terms)
    docTerms.set(this.docTerms.subarray(0, this.docTermsEnd), total)
    for (let d = limit; d < this.ids.count; d++) this.docStart[d] = (this.docStart[d] as number) + total
    for (let d = 0; d < limit; d++) {
      this.docStart[d] = fwd.start[d] as number
      this.docCount[d] = Math.min(fwd.count[d] as number, 0xffff)
    }
    this.docTerms = docTerms
    this.docTermsEnd += total
    this.lazyUntil = 0
  }

  /** The distinct terms of `text` (in `this.uniq`), each one's frequency in `this.count`; `mark` is new for each call. */
  private countTerms(text: string, mark: number): number[] {
    const uniq = this.uniq
    uniq.length = 0
    for (const w of tokenize(text)) {
      let tid = this.wordIds.get(w)
      if (tid == null) {
        const s = processTerm(w)
        if (s == null || s.length === 0) continue
        tid = this.intern(s)
        this.wordIds.set(w, tid)
      }
      if (this.stamp[tid] !== mark) {
        this.stamp[tid] = mark
        this.count[tid] = 0
        uniq.push(tid)
      }
      if ((this.count[tid] as number) < 0xffff) this.count[tid] = (this.count[tid] as number) + 1
    }
    return uniq
  }

  /**
   * A test of notes by author and tags (exact; every tag given), or undefined when no note can
   * pass (an author or a tag that no indexed note has had).
   */
  matcher(author: string | undefined, tags: readonly string[]): ((id: string) => boolean) | undefined {
    const m = this.meta.matcher(author, tags)
    if (m == null) return undefined
    return (id: string): boolean => {
      const doc = this.ids.get(id)
      return doc != null && m(doc)
    }
  }

  /** The Yjs item a note was indexed from, when known. */
  sourceOf(id: string): [number, number] | undefined {
    const doc = this.ids.get(id)
    return doc == null ? undefined : this.meta.source(doc)
  }

  /** The ids of the notes in the index. */
  noteIds(): string[] {
    const out: string[] = []
    for (let d = 0; d < this.ids.count; d++) if (this.alive[d] === 1) out.push(this.ids.idOf(d))
    return out
  }

  /** The live part of the index as arrays (dead documents and terms left out). */
  toParts(): IndexParts {
    const renum = new Int32Array(this.ids.count).fill(-1)
    const ids: string[] = []
    for (let d = 0; d < this.ids.count; d++)
      if (this.alive[d] === 1) {
        renum[d] = ids.length
        ids.push(this.ids.idOf(d))
      }
    const n = ids.length
    const lens = this.lens.map(all => {
      const l = new Uint16Array(n)
      for (let d = 0; d < renum.length; d++) if ((renum[d] as number) >= 0) l[renum[d] as number] = all[d] as number
      return l
    })
    return { ids, ...this.meta.toParts(renum, n), lens, ...packLists(this.lists, this.terms, renum) }
  }

  /** An index from arrays that `toParts` made; throws on anything inconsistent (a corrupt snapshot). */
  static fromParts(p: IndexParts): TextIndex {
    const ix = new TextIndex()
    ix.loadParts(p)
    return ix
  }

  private loadParts(p: IndexParts): void {
    const n = p.idHex != null ? p.idHex.byteLength / 16 : p.ids.length
    if (!Number.isInteger(n)) throw new Error('recall index snapshot: note ids that are not 16 hex characters each')
    if (p.lens.length !== NF || p.lens.some(l => l.length !== n))
      throw new Error('recall index snapshot: field lengths of the wrong length')
    // the per-document arrays a snapshot holds are kept as views of its bytes, and the others
    // made at the same length: the first document added grows them all alike (growDocs)
    this.meta.load(p, n)
    for (let f = 0; f < NF; f++) this.lens[f] = p.lens[f] as Uint16Array
    this.alive = new Uint8Array(n)
    this.docStart = new Int32Array(n)
    this.docCount = new Uint16Array(n)
    if (p.idHex != null) this.ids.loadHex(p.idHex, n)
    else
      for (const id of p.ids) {
        if (this.has(id)) throw new Error('recall index snapshot: a note twice')
        this.ids.add(id)
      }
    this.alive.fill(1, 0, n)
    for (let f = 0; f < NF; f++) this.lenSum[f] = (p.lens[f] as Uint16Array).reduce((a, b) => a + b, 0)
    this.size = n
    for (const t of p.terms)
      if (t === '' || this.intern(t) !== this.terms.length - 1) throw new Error('recall index snapshot: a term twice')
    unpackLists(p, this.lists, n, p.lens)
    // each document's entries (what a removal needs) are made when one is removed
    this.lazyUntil = n
  }

  private growDocs(need: number): void {
    this.meta.grow(need)
    this.alive = grow(this.alive, need)
    this.docStart = grow(this.docStart, need)
    this.docCount = grow(this.docCount, need)
    for (let f = 0; f < NF; f++) this.lens[f] = grow(this.lens[f] as Uint16Array, need)
  }

  private intern(t: string): number {
    let id = this.termIds.get(t)
    if (id != null) return id
    id = this.terms.length
    this.terms.push(t)
    this.termIds.set(t, id)
    // a slot in every field's lists, so they stay dense arrays (a sparse one turns into a slow dictionary)
    for (const lists of this.lists) lists.push(undefined)
    if (id >= this.stamp.length) {
      this.stamp = grow(this.stamp, id + 1)
      this.count = grow(this.count, id + 1)
    }
    if (t.length <= FUZZY_MAX_LENGTH) {
      const l = this.byLength[t.length]
      if (l == null) {
        for (let n = this.byLength.length; n < t.length; n++) this.byLength[n] ??= []
        this.byLength[t.length] = [id]
      } else l.push(id)
    }
    if (t.length >= PREFIX_KEY) {
      const key = t.slice(0, PREFIX_KEY)
      const l = this.byPrefix.get(key)
      if (l == null) this.byPrefix.set(key, [id])
      else l.push(id)
    }
    return id
  }

  private append(term: number, field: number, doc: number, tf: number): void {
    const lists = this.lists[field] as Array<Postings | undefined>
    let p = lists[term]
    if (p == null) lists[term] = p = { docs: new Int32Array(4), tfs: new Uint8Array(4), n: 0, live: 0 }
    if (p.n === p.docs.length) {
      p.docs = grow(p.docs, p.n + 1)
      p.tfs = grow(p.tfs, p.n + 1)
    }
    p.docs[p.n] = doc
    p.tfs[p.n] = Math.min(tf, 255)
    p.n++
    p.live++
  }

  /** Drop the postings of removed documents, into new arrays: a query that holds the old ones between slices reads them unchanged. */
  private compact(p: Postings): void {
    const docs = new Int32Array(Math.max(4, p.live))
    const tfs = new Uint8Array(docs.length)
    let w = 0
    for (let r = 0; r < p.n; r++) {
      const d = p.docs[r] as number
      if (this.alive[d] !== 1) continue
      docs[w] = d
      tfs[w] = p.tfs[r] as number
      w++
    }
    p.docs = docs
    p.tfs = tfs
    p.n = w
  }
}
