/**
 * Shared memory (F12) on the replica's `memory` map: notes with tags, recalled through a
 * full-text index derived from the document (text-index.ts: BM25+ ranking, prefix and fuzzy
 * terms, English stemming), loaded at start from its snapshot (index-snapshot.ts) and brought
 * up to date, or built from the document, then updated incrementally as notes arrive; a query
 * is bounded and searched in slices (recall.ts). `forget` writes a tombstone that syncs like any note.
 */
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import * as Y from 'yjs'
import { InvalidMessageError } from '../errors.js'
import { CheckedMap } from '../state/checked.js'
import { MAX_NOTE_BYTES, MAX_TAGS } from '../state/constants.js'
import type { Origin, Replica } from '../state/replica.js'
import type { StoredNote as Stored } from '../state/schema.js'
import { parseQuery, slicedSearch, Slices } from './recall.js'
import { decodeIndex, encodeIndex, type IndexStore } from './index-snapshot.js'
import { TextIndex } from './text-index.js'

const log = logger('claudemesh:memory')

export { MAX_NOTE_BYTES, MAX_TAGS }
export { MAX_FUZZY, MAX_QUERY_CHARS, MAX_QUERY_TERMS, MIN_PREFIX } from './recall.js'

/** `author` is the writer's claim; `by` the verified signer of the stored value (SPEC.md §11.6). */
export interface Note {
  id: string
  content: string
  tags: string[]
  author: string
  by: string
  createdAt: number
  forgotten: boolean
}
export interface Recalled extends Note {
  score: number
}

/** Longest the start-up build runs before it lets the event loop go (ms). */
const BUILD_SLICE_MS = 10
/** Save the index after a start that re-read at least this many notes (a crash left the snapshot behind). */
const RESAVE_AFTER = 1000

export interface MemoryOptions {
  /** where the recall index snapshot is kept (SPEC.md §11.3); without one the index is always built from the document */
  indexStore?: IndexStore
  /** the snapshot's bytes, when their read was started earlier (beside the replica's load: SPEC.md §11.6) */
  preloaded?: Promise<Uint8Array | undefined>
}

/** How the index was made at start: loaded from its snapshot (and how many notes were re-read), or built. */
export interface IndexStart {
  from: 'snapshot' | 'build'
  /** the document was the one the snapshot was saved from: no note was compared */
  sameDoc?: boolean
  reread: number
  ms: number
  ignored?: string
}

export interface MemoryChange {
  id: string
  by: string
  forgotten: boolean
  local: boolean
}
export interface MemoryEvents {
  'memory:change': CustomEvent<MemoryChange>
}

export class SharedMemory extends TypedEventEmitter<MemoryEvents> {
  private readonly map: Y.Map<Stored>
  /** what is read goes through the schema: a bad note from an older version's store is skipped */
  private readonly notes: CheckedMap<Stored>
  private index = new TextIndex()
  /** set once `ready` resolves */
  indexStart?: IndexStart

  /** resolves once the index holds every note; recall waits for it, start-up does not */
  readonly ready: Promise<void>
  private building = true
  /** the index differs from its saved snapshot (a stop with nothing new writes nothing) */
  private unsaved = true
  private saving?: Promise<void>
  /** the document (Y.encodeSnapshot) the saved index snapshot was made from */
  private savedDoc?: Uint8Array
  private readonly dirty = new Set<string>()

  constructor(
    private readonly replica: Replica,
    private readonly publish: (envelope: Uint8Array) => void,
    private readonly opts: MemoryOptions = {}
  ) {
    super()
    this.map = replica.doc.getMap('memory')
    this.notes = new CheckedMap(this.map as Y.Map<unknown>, 'memory')
    this.ready = this.start()
    this.map.observe((evt, tr) => {
      const origin = tr.origin as Origin | undefined
      for (const id of evt.keysChanged) {
        if (this.building) this.dirty.add(id)
        else {
          this.reindex(id)
          this.unsaved = true
        }
        const s = this.notes.get(id)
        this.safeDispatchEvent('memory:change', {
          detail: { id, by: s?.by ?? origin?.author ?? '', forgotten: s?.forgotten === true, local: origin?.local === true }
        })
      }
    })
  }

  /** Notes (not forgotten) in the mesh's memory. */
  get size(): number {
    if (!this.building) return this.index.size
    let n = 0
    for (const [, s] of this.notes.entries()) if (s.forgotten !== true) n++
    return n
  }

  /** How the last search was cut up: slices, and the process CPU time of the longest (what it held the event loop for) */
  lastRecall = { slices: 0, maxSliceCpuMs: 0 }

  /** Notes skipped because they break the schema (only an older version could store one). */
  get skipped(): number {
    return this.notes.skipped
  }

  /**
   * The index from its snapshot, brought up to date with the document, or else built from the
   * document; either way in slices with the event loop free between them. A snapshot that does
   * not load is logged and ignored, never fatal: the document is the truth.
   */
  private async start(): Promise<void> {
    const t0 = performance.now()
    let loaded: TextIndex | undefined
    let ignored: string | undefined
    let sameDoc = false
    try {
      const bytes = await (this.opts.preloaded ?? this.opts.indexStore?.load())
      if (bytes != null) {
        const snap = decodeIndex(bytes)
        loaded = snap.index
        this.savedDoc = snap.doc
        sameDoc = snap.doc.byteLength > 0 && Buffer.from(snap.doc).equals(docState(this.replica.doc))
      }
    } catch (err) {
      ignored = (err as Error).message
      log('ignored the recall index snapshot, rebuilding: %s', ignored)
    }
    let reread = 0
    if (loaded != null) {
      this.index = loaded
      // the very document it was saved from: nothing to compare
      if (!sameDoc) reread = await this.catchUp()
      // a snapshot an older version stored elsewhere is saved again where this one keeps it
      this.unsaved = reread > 0 || this.dirty.size > 0 || this.opts.indexStore?.stale === true
    } else {
      reread = await this.build()
    }
    this.building = false
    for (const id of this.dirty) this.reindex(id)
    this.dirty.clear()
    this.indexStart = {
      from: loaded != null ? 'snapshot' : 'build',
      ...(loaded != null ? { sameDoc } : {}),
      reread,
      ms: Math.round(performance.now() - t0),
      ...(ignored != null ? { ignored } : {})
    }
    if (reread >= RESAVE_AFTER || (loaded == null && this.opts.indexStore != null && reread > 0)) {
      this.persist().catch(err => {
        log('could not save the recall index: %s', (err as Error).message)
      })
    }
  }

  /** Index every note of the document; the number indexed. */
  private async build(): Promise<number> {
    const slice = new BuildSlice()
    for (const [id, item] of [...this.map._map]) {
      if (!item.deleted) this.reindex(id)
      await slice.tick()
    }
    return this.index.size
  }

  /**
   * Re-read the notes whose value is not the item the loaded index was made from (written,
   * rewritten, forgotten or deleted since the snapshot); the number of notes that changed in the index.
   */
  private async catchUp(): Promise<number> {
    const slice = new BuildSlice()
    const items = this.map._map
    let changed = 0
    for (const [id, item] of [...items]) {
      const src = this.index.sourceOf(id)
      if (src == null || item.deleted || src[0] !== item.id.client || src[1] !== item.id.clock) {
        const had = this.index.has(id)
        this.reindex(id)
        if (had || this.index.has(id)) changed++
      }
      await slice.tick()
    }
    for (const id of this.index.noteIds()) {
      if (!items.has(id)) {
        this.index.remove(id)
        changed++
      }
    }
    return changed
  }

  /**
   * Save the index as its snapshot (SPEC.md §11.3), with the document it was made from: at a
   * clean stop when the index or any part of the document changed since it was loaded or saved
   * (so the next start finds the same document and compares no note), and after a start that
   * had to index many notes. Nothing to do without a store or before the index is whole.
   */
  async persist(): Promise<void> {
    if (this.saving != null) {
      // one save at a time; a stop waits for the one under way, then saves what changed since
      await this.saving.catch(() => {})
      return await this.persist()
    }
    if (this.opts.indexStore == null || this.building) return
    const doc = docState(this.replica.doc)
    if (!this.unsaved && this.savedDoc != null && Buffer.from(this.savedDoc).equals(doc)) return
    const was = this.savedDoc
    this.unsaved = false
    this.savedDoc = doc
    const store = this.opts.indexStore
    // the index and the document's state are taken in the same tick: the snapshot is of that document
    const bytes = encodeIndex(this.index, doc)
    this.saving = store.save(bytes)
    try {
      await this.saving
    } catch (err) {
      this.unsaved = true
      this.savedDoc = was
      throw err
    } finally {
      this.saving = undefined
    }
  }

  async remember(content: string, tags: string[] = []): Promise<Note> {
    if (typeof content !== 'string' || content.trim() === '') throw new InvalidMessageError('a memory needs some content')
    // measured as JSON, the way every peer measures it (a control character is 6 bytes there)
    if (Buffer.byteLength(JSON.stringify(content)) > MAX_NOTE_BYTES)
      throw new InvalidMessageError(`a memory is at most ${MAX_NOTE_BYTES} bytes (as JSON)`)
    if (tags.length > MAX_TAGS || tags.some(t => typeof t !== 'string' || t.length === 0 || t.length > 64))
      throw new InvalidMessageError(`at most ${MAX_TAGS} tags of 1 to 64 characters`)
    const id = randomBytes(8).toString('hex')
    const now = Date.now()
    const stored: Stored = {
      content,
      tags: [...new Set(tags)],
      author: this.replica.selfId,
      createdAt: now,
      by: this.replica.selfId,
      at: now
    }
    const env = await this.replica.change(() => {
      this.map.set(id, stored)
    })
    if (env != null) this.publish(env)
    return note(id, stored)
  }

  async recall(query: string, opts: { tags?: string[]; author?: string; limit?: number } = {}): Promise<Recalled[]> {
    const words = parseQuery(query)
    await this.ready
    const limit = Math.max(1, Math.min(opts.limit ?? 10, 100))
    const tags = opts.tags ?? []
    const filtered = tags.length > 0 || opts.author != null
    const filter = (r: { id: string }): boolean => {
      const s = this.notes.get(r.id)
      if (s == null || s.forgotten === true) return false
      if (opts.author != null && s.author !== opts.author) return false
      return tags.every(t => s.tags.includes(t))
    }
    if (query.trim() === '' || query.trim() === '*') {
      // no words: the newest notes that match the filters
      const all = [...this.notes.entries()].filter(([id]) => filter({ id })).sort((a, b) => b[1].createdAt - a[1].createdAt)
      return all.slice(0, limit).map(([id, s]) => ({ ...note(id, s), score: 0 }))
    }
    const slices = new Slices()
    // the filters are answered by the index (it holds each note's author and tags)
    const keep = filtered ? this.index.matcher(opts.author, tags) : undefined
    if (filtered && keep == null) return []
    const hits = await slicedSearch(this.index, words, limit, keep, slices)
    this.lastRecall = { slices: slices.count, maxSliceCpuMs: slices.maxCpuMs }
    const out: Recalled[] = []
    for (const h of hits) {
      const s = this.notes.get(h.id)
      if (s != null) out.push({ ...note(h.id, s), score: Number(h.score.toFixed(4)) })
      if (out.length >= limit) break
    }
    return out
  }

  async forget(id: string): Promise<boolean> {
    const s = this.notes.get(id)
    if (s == null || s.forgotten === true) return false
    const env = await this.replica.change(() => {
      this.map.set(id, { ...s, by: this.replica.selfId, at: Date.now(), forgotten: true })
    })
    if (env != null) this.publish(env)
    return true
  }

  get(id: string): Note | undefined {
    const s = this.notes.get(id)
    return s == null ? undefined : note(id, s)
  }

  private reindex(id: string): void {
    this.index.remove(id)
    const item = this.map._map.get(id)
    const s = item == null || item.deleted ? undefined : this.notes.get(id)
    if (item == null || s == null || s.forgotten === true) return
    this.index.add(
      id,
      { content: s.content, tags: s.tags.join(' ') },
      { author: s.author, tags: s.tags, source: [item.id.client, item.id.clock] }
    )
  }
}

/** What identifies the document's state: its Yjs snapshot (state vector and delete set), encoded. */
function docState(doc: Y.Doc): Uint8Array {
  return Y.encodeSnapshot(Y.snapshot(doc))
}

/** A clock for work done at start: yield after BUILD_SLICE_MS. */
class BuildSlice {
  private t = performance.now()
  async tick(): Promise<void> {
    if (performance.now() - this.t < BUILD_SLICE_MS) return
    await new Promise(resolve => setImmediate(resolve))
    this.t = performance.now()
  }
}

function note(id: string, s: Stored): Note {
  return { id, content: s.content, tags: s.tags, author: s.author, by: s.by, createdAt: s.createdAt, forgotten: s.forgotten === true }
}
