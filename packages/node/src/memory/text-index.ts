/**
 * The recall index (SPEC.md §11.6): an inverted index over the notes that are not forgotten,
 * derived from the replica's `memory` map. Postings are typed arrays (a document number and a
 * term frequency per entry, one list per term and field), so 100k notes take ~20 MB and a
 * query scores tens of thousands of postings in well under a millisecond (bench/recall.mjs
 * measured SQLite FTS5, FlexSearch, Orama and MiniSearch on the same notes: none met the
 * targets with BM25 ranking, prefix and fuzzy words; see the report of issue 12).
 * A removed note's postings stay until its lists are compacted; document numbers are never
 * reused while the index lives, so a stale posting can only point at a dead document.
 */
import { processTerm, tokenize } from './terms.js'

export const FIELDS = ['content', 'tags'] as const
export type Field = typeof FIELDS[number]
const NF = FIELDS.length

/** One term's postings in one field. `live` counts postings of live documents (the term's document frequency). */
export interface Postings { docs: Int32Array, tfs: Uint8Array, n: number, live: number }

/** What recall filters notes by. */
export interface NoteMeta { author: string, tags: readonly string[] }

function intern (ids: Map<string, number>, s: string): number {
  let id = ids.get(s)
  if (id == null) ids.set(s, id = ids.size)
  return id
}

/** Prefix expansions are found through a term's first letters. */
export const PREFIX_KEY = 3

function grow<T extends Int32Array | Uint8Array | Uint16Array | Float64Array> (a: T, need: number): T {
  if (need <= a.length) return a
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2))
  b.set(a)
  return b
}

export class TextIndex {
  /** document number → note id ('' once removed) */
  private readonly ids: string[] = []
  private readonly byId = new Map<string, number>()
  alive = new Uint8Array(1024)
  /** per field, per document: its number of distinct terms (MiniSearch's field length) */
  readonly lens: Uint16Array[] = FIELDS.map(() => new Uint16Array(1024))
  private readonly lenSum = new Float64Array(NF)
  /** per document, where its (term << 1 | field) entries start in `docTerms`, and how many */
  private docStart = new Int32Array(1024)
  private docCount = new Uint16Array(1024)
  private docTerms = new Int32Array(1 << 16)
  private docTermsEnd = 0

  /** per document, its author and its tags (exact strings, interned): recall's filters, without a look into the document */
  private readonly authorIds = new Map<string, number>()
  private readonly tagIds = new Map<string, number>()
  private authorOf = new Int32Array(1024)
  private tagStart = new Int32Array(1024)
  private tagCount = new Uint8Array(1024)
  private tagPool = new Int32Array(1 << 12)
  private tagEnd = 0

  private readonly termIds = new Map<string, number>()
  /** word (lowercased) → its term's id: one lookup per word while indexing, no stemming */
  private readonly wordIds = new Map<string, number>()
  /** per term, the (document, field) that last counted it, and its count there: term frequencies without a Map per note */
  private stamp = new Int32Array(1024)
  private count = new Uint16Array(1024)
  private readonly uniq: number[] = []
  private readonly terms: string[] = []
  private readonly lists: Array<Array<Postings | undefined>> = FIELDS.map(() => [])
  private readonly byPrefix = new Map<string, number[]>()
  /** every character of every term: what a fuzzy variant can be made of */
  readonly alphabet = new Set<string>()
  size = 0

  /** document numbers handed out so far (the size a per-document array must have) */
  get capacity (): number { return this.ids.length }

  has (id: string): boolean { return this.byId.has(id) }

  /** Average field length over the live documents. */
  avgLen (field: number): number { return this.size === 0 ? 0 : (this.lenSum[field] as number) / this.size }

  idOf (doc: number): string | undefined { return this.alive[doc] === 1 ? this.ids[doc] : undefined }

  termId (term: string): number | undefined { return this.termIds.get(term) }
  term (id: number): string { return this.terms[id] as string }
  postings (term: number, field: number): Postings | undefined { return this.lists[field]?.[term] }

  /** Terms that start with `prefix` (at least PREFIX_KEY letters long). */
  * withPrefix (prefix: string): Iterable<number> {
    for (const t of this.byPrefix.get(prefix.slice(0, PREFIX_KEY)) ?? []) if ((this.terms[t] as string).startsWith(prefix)) yield t
  }

  add (id: string, fields: Record<Field, string>, meta: NoteMeta = { author: '', tags: [] }): void {
    if (this.byId.has(id)) this.remove(id)
    const doc = this.ids.length
    this.ids.push(id)
    this.byId.set(id, doc)
    if (doc >= this.alive.length) this.growDocs(doc + 1)
    this.alive[doc] = 1
    this.docStart[doc] = this.docTermsEnd
    let entries = 0
    for (let f = 0; f < NF; f++) {
      const uniq = this.countTerms(fields[FIELDS[f] as Field], doc * NF + f + 1)
      const len = Math.min(uniq.length, 0xffff);
      (this.lens[f] as Uint16Array)[doc] = len
      this.lenSum[f] = (this.lenSum[f] as number) + len
      if (this.docTermsEnd + entries + uniq.length > this.docTerms.length) this.docTerms = grow(this.docTerms, this.docTermsEnd + entries + uniq.length)
      for (const tid of uniq) {
        this.append(tid, f, doc, this.count[tid] as number)
        this.docTerms[this.docTermsEnd + entries++] = tid << 1 | f
      }
    }
    this.docCount[doc] = Math.min(entries, 0xffff)
    this.addMeta(doc, meta)
    this.docTermsEnd += entries
    this.size++
  }

  remove (id: string): void {
    const doc = this.byId.get(id)
    if (doc == null) return
    this.byId.delete(id)
    this.ids[doc] = ''
    this.alive[doc] = 0
    this.size--
    for (let f = 0; f < NF; f++) this.lenSum[f] = (this.lenSum[f] as number) - ((this.lens[f] as Uint16Array)[doc] as number)
    const start = this.docStart[doc] as number
    for (let i = start; i < start + (this.docCount[doc] as number); i++) {
      const e = this.docTerms[i] as number
      const p = this.lists[e & 1]?.[e >>> 1]
      if (p == null) continue
      p.live--
      if (p.n - p.live > Math.max(16, p.n >> 1)) this.compact(p)
    }
  }

  /** The distinct terms of `text` (in `this.uniq`), each one's frequency in `this.count`; `mark` is new for each call. */
  private countTerms (text: string, mark: number): number[] {
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
  matcher (author: string | undefined, tags: readonly string[]): ((id: string) => boolean) | undefined {
    const a = author == null ? -1 : this.authorIds.get(author)
    if (a == null) return undefined
    const want: number[] = []
    for (const t of new Set(tags)) {
      const tid = this.tagIds.get(t)
      if (tid == null) return undefined
      want.push(tid)
    }
    return (id: string): boolean => {
      const doc = this.byId.get(id)
      if (doc == null || (a >= 0 && this.authorOf[doc] !== a)) return false
      const start = this.tagStart[doc] as number
      const end = start + (this.tagCount[doc] as number)
      return want.every(w => { for (let i = start; i < end; i++) if (this.tagPool[i] === w) return true; return false })
    }
  }

  private addMeta (doc: number, meta: NoteMeta): void {
    this.authorOf[doc] = intern(this.authorIds, meta.author)
    const tags = [...new Set(meta.tags)].slice(0, 255)
    if (this.tagEnd + tags.length > this.tagPool.length) this.tagPool = grow(this.tagPool, this.tagEnd + tags.length)
    this.tagStart[doc] = this.tagEnd
    this.tagCount[doc] = tags.length
    for (const t of tags) this.tagPool[this.tagEnd++] = intern(this.tagIds, t)
  }

  private growDocs (need: number): void {
    this.authorOf = grow(this.authorOf, need)
    this.tagStart = grow(this.tagStart, need)
    this.tagCount = grow(this.tagCount, need)
    this.alive = grow(this.alive, need)
    this.docStart = grow(this.docStart, need)
    this.docCount = grow(this.docCount, need)
    for (let f = 0; f < NF; f++) this.lens[f] = grow(this.lens[f] as Uint16Array, need)
  }

  private intern (t: string): number {
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
    for (const c of t) this.alphabet.add(c)
    if (t.length >= PREFIX_KEY) {
      const key = t.slice(0, PREFIX_KEY)
      const l = this.byPrefix.get(key)
      if (l == null) this.byPrefix.set(key, [id])
      else l.push(id)
    }
    return id
  }

  private append (term: number, field: number, doc: number, tf: number): void {
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
  private compact (p: Postings): void {
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
