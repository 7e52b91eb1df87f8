/**
 * What the recall index keeps per document besides its terms (SPEC.md §11.6): the note's
 * author and tags (exact strings, interned), so recall filters without a look into the
 * document, and the Yjs item its value was read from, so an index loaded from a snapshot can
 * tell which notes changed since (a new value of a note is always a new item).
 */
import { grow } from './grow.js'
import type { IndexParts } from './text-index.js'

/** What recall filters notes by, and where the value came from (the Yjs item id: client, clock). */
export interface NoteMeta {
  author: string
  tags: readonly string[]
  source?: readonly [number, number]
}

function intern(ids: Map<string, number>, list: string[], s: string): number {
  let id = ids.get(s)
  if (id == null) {
    ids.set(s, (id = list.length))
    list.push(s)
  }
  return id
}

export class DocMeta {
  readonly authors: string[] = []
  readonly tags: string[] = []
  private readonly authorIds = new Map<string, number>()
  private readonly tagIds = new Map<string, number>()
  authorOf = new Int32Array(1024)
  tagStart = new Int32Array(1024)
  tagCount = new Uint8Array(1024)
  tagPool = new Int32Array(1 << 12)
  tagEnd = 0
  /** the source item per document, client and clock (2 per document); -1 when unknown (an index built outside a document) */
  src = new Float64Array(2048).fill(-1)

  grow(need: number): void {
    this.authorOf = grow(this.authorOf, need)
    this.tagStart = grow(this.tagStart, need)
    this.tagCount = grow(this.tagCount, need)
    // two per document, for as many documents as the others hold
    const had = this.src.length
    this.src = grow(this.src, 2 * this.authorOf.length)
    this.src.fill(-1, had)
  }

  set(doc: number, meta: NoteMeta): void {
    this.authorOf[doc] = intern(this.authorIds, this.authors, meta.author)
    const tags = [...new Set(meta.tags)].slice(0, 255)
    if (this.tagEnd + tags.length > this.tagPool.length) this.tagPool = grow(this.tagPool, this.tagEnd + tags.length)
    this.tagStart[doc] = this.tagEnd
    this.tagCount[doc] = tags.length
    for (const t of tags) this.tagPool[this.tagEnd++] = intern(this.tagIds, this.tags, t)
    this.src[2 * doc] = meta.source?.[0] ?? -1
    this.src[2 * doc + 1] = meta.source?.[1] ?? -1
  }

  /** The live documents' part of an index snapshot, `renum` numbering them 0..n-1 (-1: dead). */
  toParts(renum: Int32Array, n: number): Pick<IndexParts, 'source' | 'authors' | 'authorOf' | 'tags' | 'tagCount' | 'tagPool'> {
    const source = new Float64Array(2 * n)
    const authorOf = new Int32Array(n)
    const tagCount = new Uint8Array(n)
    let tags = 0
    for (let d = 0; d < renum.length; d++) if ((renum[d] as number) >= 0) tags += this.tagCount[d] as number
    const tagPool = new Int32Array(tags)
    let at = 0
    for (let d = 0; d < renum.length; d++) {
      const k = renum[d] as number
      if (k < 0) continue
      source[2 * k] = this.src[2 * d] as number
      source[2 * k + 1] = this.src[2 * d + 1] as number
      authorOf[k] = this.authorOf[d] as number
      tagCount[k] = this.tagCount[d] as number
      const start = this.tagStart[d] as number
      tagPool.set(this.tagPool.subarray(start, start + (tagCount[k] as number)), at)
      at += tagCount[k] as number
    }
    return { source, authors: [...this.authors], authorOf, tags: [...this.tags], tagCount, tagPool }
  }

  /**
   * Take documents 0..n-1 from a snapshot's parts, into an empty DocMeta; throws when they are
   * inconsistent. Its per-document arrays (authors, tag counts, sources) are kept as they are
   * (views of the snapshot's bytes, no copy) until documents are added beyond them.
   */
  load(p: IndexParts, n: number): void {
    const bad = (what: string): never => {
      throw new Error(`recall index snapshot: ${what}`)
    }
    if (p.source.length !== 2 * n || p.authorOf.length !== n || p.tagCount.length !== n) bad('per-note arrays of the wrong length')
    for (const a of p.authors) if (intern(this.authorIds, this.authors, a) !== this.authors.length - 1) bad('an author twice')
    for (const t of p.tags) if (intern(this.tagIds, this.tags, t) !== this.tags.length - 1) bad('a tag twice')
    const tagStart = new Int32Array(n)
    let at = 0
    for (let d = 0; d < n; d++) {
      const a = p.authorOf[d] as number
      if (a < 0 || a >= this.authors.length) bad('an author out of range')
      tagStart[d] = at
      at += p.tagCount[d] as number
      const client = p.source[2 * d] as number
      const clock = p.source[2 * d + 1] as number
      if (!(client >= 1 && clock >= 0 && Number.isSafeInteger(client) && Number.isSafeInteger(clock)) && !(client === -1 && clock === -1))
        bad('a source item out of range')
    }
    if (at !== p.tagPool.length) bad('tags left over or missing')
    for (const t of p.tagPool) if (t < 0 || t >= this.tags.length) bad('a tag out of range')
    this.authorOf = p.authorOf as Int32Array<ArrayBuffer>
    this.tagCount = p.tagCount as Uint8Array<ArrayBuffer>
    this.src = p.source as Float64Array<ArrayBuffer>
    this.tagStart = tagStart
    this.tagPool = p.tagPool as Int32Array<ArrayBuffer>
    this.tagEnd = at
  }

  source(doc: number): [number, number] | undefined {
    const c = this.src[2 * doc] as number
    return c < 0 ? undefined : [c, this.src[2 * doc + 1] as number]
  }

  /** A test of documents by author and tags (every tag given), or undefined when none can pass. */
  matcher(author: string | undefined, tags: readonly string[]): ((doc: number) => boolean) | undefined {
    const a = author == null ? -1 : this.authorIds.get(author)
    if (a == null) return undefined
    const want: number[] = []
    for (const t of new Set(tags)) {
      const tid = this.tagIds.get(t)
      if (tid == null) return undefined
      want.push(tid)
    }
    return (doc: number): boolean => {
      if (a >= 0 && this.authorOf[doc] !== a) return false
      const start = this.tagStart[doc] as number
      const end = start + (this.tagCount[doc] as number)
      return want.every(w => {
        for (let i = start; i < end; i++) if (this.tagPool[i] === w) return true
        return false
      })
    }
  }
}
