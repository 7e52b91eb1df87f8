/**
 * The recall index saved beside the replica (SPEC.md §11.3, §11.6): derived, local, never
 * sent. A start loads it instead of indexing every note again, then re-reads only the notes
 * whose value is another Yjs item than the one indexed (memory/index.ts). Anything wrong with
 * it (another version, another byte order, a corrupt or inconsistent value) makes the loader
 * throw, and the caller rebuilds from the document: it is never trusted over the replica.
 *
 * Layout: deterministic CBOR `{v, le, ids, terms, authors, tags, source, authorOf, tagCount,
 * tagPool, lens0, lens1, listKey, listLen, docs, tfs}`: `ids` the note ids concatenated
 * (16 hex characters each), `terms` joined with "\n" (a term never holds one), the numeric
 * arrays as little-endian byte strings.
 */
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import type { Sublevel } from '../store/index.js'
import { z } from 'zod'
import { type IndexParts, TextIndex } from './text-index.js'

/** Bump when the bytes or what is derived from a note changes (tokenizer, stemmer, fields, schema). */
export const INDEX_SNAPSHOT_VERSION = 1
/** Largest snapshot read (100k notes take ~15 MB). */
export const MAX_INDEX_SNAPSHOT_BYTES = 1024 * 1024 * 1024

/** Where the snapshot lives: one value, replaced whole. */
export interface IndexStore {
  load: () => Promise<Uint8Array | undefined>
  save: (bytes: Uint8Array) => Promise<void>
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const Schema = z
  .object({
    v: z.literal(INDEX_SNAPSHOT_VERSION),
    le: z.literal(true),
    ids: z.string(),
    terms: z.string(),
    authors: z.array(z.string()),
    tags: z.array(z.string()),
    source: zBytes(),
    authorOf: zBytes(),
    tagCount: zBytes(),
    tagPool: zBytes(),
    lens0: zBytes(),
    lens1: zBytes(),
    listKey: zBytes(),
    listLen: zBytes(),
    docs: zBytes(),
    tfs: zBytes()
  })
  .strict()

const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

/** A typed array over a copy of `b` (aligned), or a throw when its length is not a whole number of elements. */
function view<T>(b: Uint8Array, Ctor: { new (buf: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, what: string): T {
  if (b.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new Error(`recall index snapshot: ${what} is not whole`)
  return new Ctor(b.slice().buffer)
}

export function encodeIndex(ix: TextIndex): Uint8Array {
  const p = ix.toParts()
  return encodeFrame({
    v: INDEX_SNAPSHOT_VERSION,
    le: LE,
    ids: p.ids.join(''),
    terms: p.terms.join('\n'),
    authors: p.authors,
    tags: p.tags,
    source: bytes(p.source),
    authorOf: bytes(p.authorOf),
    tagCount: p.tagCount,
    tagPool: bytes(p.tagPool),
    lens0: bytes(p.lens[0] as Uint16Array),
    lens1: bytes(p.lens[1] as Uint16Array),
    listKey: bytes(p.listKey),
    listLen: bytes(p.listLen),
    docs: bytes(p.docs),
    tfs: p.tfs
  })
}

/** The index a snapshot holds; throws when it is not one this version wrote, or is inconsistent. */
export function decodeIndex(b: Uint8Array): TextIndex {
  if (!LE) throw new Error('recall index snapshot: not on a big-endian machine')
  const s = decodeFrame(b, Schema, MAX_INDEX_SNAPSHOT_BYTES, 'recall index snapshot')
  if (s.ids.length % 16 !== 0 || !/^[0-9a-f]*$/.test(s.ids))
    throw new Error('recall index snapshot: note ids that are not 16 hex characters each')
  const ids: string[] = []
  for (let i = 0; i < s.ids.length; i += 16) ids.push(s.ids.slice(i, i + 16))
  const parts: IndexParts = {
    ids,
    source: view(s.source, Float64Array, 'source'),
    authors: s.authors,
    authorOf: view(s.authorOf, Int32Array, 'authorOf'),
    tags: s.tags,
    tagCount: s.tagCount.slice(),
    tagPool: view(s.tagPool, Int32Array, 'tagPool'),
    lens: [view(s.lens0, Uint16Array, 'lens0'), view(s.lens1, Uint16Array, 'lens1')],
    terms: s.terms === '' ? [] : s.terms.split('\n'),
    listKey: view(s.listKey, Int32Array, 'listKey'),
    listLen: view(s.listLen, Int32Array, 'listLen'),
    docs: view(s.docs, Int32Array, 'docs'),
    tfs: s.tfs.slice()
  }
  return TextIndex.fromParts(parts)
}

/** The snapshot is stored in pieces of this many bytes: LevelDB holds one huge value in native memory that is not given back (measured: +40 MB RSS for a 14 MB value). */
export const INDEX_CHUNK_BYTES = 1 << 20
const PREFIX = 'r!index!'

/**
 * The snapshot in the replica's `crdt` sublevel (SPEC.md §11.3): `r!index!<n>` (`<n>` 6 digits
 * from 0), pieces of INDEX_CHUNK_BYTES concatenated in key order, replaced whole in one batch.
 * An unsynced write: losing it costs a rebuild.
 */
export function levelIndexStore(db: Sublevel): IndexStore {
  const range = { gte: PREFIX, lt: 'r!index"' }
  return {
    load: async () => {
      const parts: Uint8Array[] = []
      let total = 0
      for await (const v of db.values(range)) {
        total += v.byteLength
        if (total > MAX_INDEX_SNAPSHOT_BYTES) throw new Error(`recall index snapshot over ${MAX_INDEX_SNAPSHOT_BYTES} bytes`)
        parts.push(v)
      }
      return parts.length === 0 ? undefined : Buffer.concat(parts)
    },
    save: async bytes => {
      const ops: Array<{ type: 'del'; key: string } | { type: 'put'; key: string; value: Uint8Array }> = []
      for await (const key of db.keys(range)) ops.push({ type: 'del', key })
      for (let at = 0, n = 0; at < bytes.byteLength; at += INDEX_CHUNK_BYTES, n++) {
        ops.push({ type: 'put', key: PREFIX + String(n).padStart(6, '0'), value: bytes.subarray(at, at + INDEX_CHUNK_BYTES) })
      }
      await db.batch(ops)
    }
  }
}
