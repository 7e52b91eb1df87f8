/**
 * The recall index saved beside the replica (SPEC.md §11.3, §11.6): derived, local, never
 * sent. A start loads it instead of indexing every note again: when the document is the one it
 * was saved from (the same Yjs snapshot: state vector and delete set) it is used as it is;
 * otherwise only the notes whose value is another Yjs item than the one indexed are re-read
 * (memory/index.ts). Anything wrong with it (another version, another byte order, a corrupt or
 * inconsistent value) makes the loader throw, and the caller rebuilds from the document: it is
 * never trusted over the replica.
 *
 * Layout (version 2): `CMRX`, u32 version, u32 header length, SHA-256 of every byte after these 44, the header (deterministic CBOR
 * `{n, terms, lists, postings, tagPool, termBytes, authors, tags, doc}`), then the arrays raw
 * and little-endian, each starting at a multiple of 8 bytes so a load takes them as views of
 * the bytes read, with no decoding and no copy: source (float64 ×2n), authorOf (int32 ×n),
 * tagPool (int32), listKey, listLen (int32 per list), docs (int32 per posting), lens0, lens1
 * (uint16 ×n), tagCount (uint8 ×n), tfs (uint8 per posting), the ids (16n latin-1 bytes) and
 * the terms (UTF-8, joined with "\n"); nothing after them.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { readFileBytes, writeFileAtomic } from '../home.js'
import type { Sublevel } from '../store/index.js'
import { z } from 'zod'
import { type IndexParts, TextIndex } from './text-index.js'

/** Bump when the bytes or what is derived from a note changes (tokenizer, stemmer, fields, schema). */
export const INDEX_SNAPSHOT_VERSION = 2
/** Largest snapshot read (100k notes take ~15 MB). */
export const MAX_INDEX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
const MAGIC = [0x43, 0x4d, 0x52, 0x58] // CMRX
/** magic, version, header length, SHA-256 of every byte after the preamble */
const PREAMBLE = 44

/** Where the snapshot lives: one value, replaced whole. */
export interface IndexStore {
  load: () => Promise<Uint8Array | undefined>
  save: (bytes: Uint8Array) => Promise<void>
  /** the last load read it from where an older version kept it: the next save should be made even with nothing new */
  readonly stale?: boolean
}

/** A loaded snapshot: the index, and the document snapshot (Y.encodeSnapshot) it was saved from, empty when unknown. */
export interface LoadedIndex {
  index: TextIndex
  doc: Uint8Array
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const count = z.number().int().nonnegative().max(MAX_INDEX_SNAPSHOT_BYTES)

const Header = z
  .object({
    n: count,
    terms: count,
    lists: count,
    postings: count,
    tagPool: count,
    termBytes: count,
    authors: z.array(z.string()),
    tags: z.array(z.string()),
    doc: zBytes()
  })
  .strict()

const pad8 = (n: number): number => (n + 7) & ~7
const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

export function encodeIndex(ix: TextIndex, doc: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeParts(ix.toParts(), doc)
}

/** The snapshot of an index's parts (tests spoil parts with it). */
export function encodeParts(p: IndexParts, doc: Uint8Array = new Uint8Array(0)): Uint8Array {
  const n = p.ids.length
  const ids = Buffer.from(p.ids.join(''), 'latin1')
  const terms = Buffer.from(p.terms.join('\n'), 'utf8')
  const header = encodeFrame({
    n,
    terms: p.terms.length,
    lists: p.listKey.length,
    postings: p.docs.length,
    tagPool: p.tagPool.length,
    termBytes: terms.byteLength,
    authors: p.authors,
    tags: p.tags,
    doc
  })
  const sections = [
    p.source,
    p.authorOf,
    p.tagPool,
    p.listKey,
    p.listLen,
    p.docs,
    p.lens[0] as Uint16Array,
    p.lens[1] as Uint16Array,
    p.tagCount,
    p.tfs,
    ids,
    terms
  ]
  let size = pad8(PREAMBLE + header.byteLength)
  for (const s of sections) size = pad8(size + s.byteLength)
  const out = new Uint8Array(size)
  out.set(MAGIC, 0)
  const dv = new DataView(out.buffer)
  dv.setUint32(4, INDEX_SNAPSHOT_VERSION, true)
  dv.setUint32(8, header.byteLength, true)
  out.set(header, PREAMBLE)
  let at = pad8(PREAMBLE + header.byteLength)
  for (const s of sections) {
    out.set(bytes(s), at)
    at = pad8(at + s.byteLength)
  }
  out.set(createHash('sha256').update(out.subarray(PREAMBLE)).digest(), 12)
  return out
}

/** The index a snapshot holds and the document it was saved from; throws when it is not one this version wrote, or is inconsistent. */
export function decodeIndex(input: Uint8Array): LoadedIndex {
  const bad = (what: string): never => {
    throw new Error(`recall index snapshot: ${what}`)
  }
  if (!LE) bad('not on a big-endian machine')
  if (input.byteLength > MAX_INDEX_SNAPSHOT_BYTES) bad(`over ${MAX_INDEX_SNAPSHOT_BYTES} bytes`)
  if (input.byteLength < PREAMBLE || MAGIC.some((m, i) => input[i] !== m)) bad('not one (no CMRX at its start)')
  // the arrays are views of the bytes: they must start on a multiple of 8 (a copy otherwise)
  const b = input.byteOffset % 8 === 0 ? input : input.slice()
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const version = dv.getUint32(4, true)
  if (version !== INDEX_SNAPSHOT_VERSION) bad(`version ${version}, not ${INDEX_SNAPSHOT_VERSION}`)
  const hlen = dv.getUint32(8, true)
  if (PREAMBLE + hlen > b.byteLength) bad('a header longer than the snapshot')
  // a flipped bit in a term, a frequency or an author would still look like an index: the sum refuses it
  if (!Buffer.from(createHash('sha256').update(b.subarray(PREAMBLE)).digest()).equals(b.subarray(12, PREAMBLE)))
    bad('does not match its checksum')
  const h = decodeFrame(b.subarray(PREAMBLE, PREAMBLE + hlen), Header, hlen, 'recall index snapshot header')
  let at = pad8(PREAMBLE + hlen)
  // each section is checked to fit before it is made: a view of a huge claimed length would throw a RangeError anyway, but with no clear message
  const take = <T>(Ctor: { new (buf: ArrayBufferLike, off: number, len: number): T; BYTES_PER_ELEMENT: number }, len: number): T => {
    const end = at + len * Ctor.BYTES_PER_ELEMENT
    if (end > b.byteLength) bad('shorter than its header says')
    const v = new Ctor(b.buffer, b.byteOffset + at, len)
    at = pad8(end)
    return v
  }
  const n = h.n
  const source = take(Float64Array, 2 * n)
  const authorOf = take(Int32Array, n)
  const tagPool = take(Int32Array, h.tagPool)
  const listKey = take(Int32Array, h.lists)
  const listLen = take(Int32Array, h.lists)
  const docs = take(Int32Array, h.postings)
  const lens0 = take(Uint16Array, n)
  const lens1 = take(Uint16Array, n)
  const tagCount = take(Uint8Array, n)
  const tfs = take(Uint8Array, h.postings)
  const idBytes = take(Uint8Array, 16 * n)
  const termBytes = take(Uint8Array, h.termBytes)
  if (at !== b.byteLength) bad('bytes left over after its arrays')
  const termText = new TextDecoder('utf-8', { fatal: true }).decode(termBytes)
  const terms = termText === '' ? [] : termText.split('\n')
  if (terms.length !== h.terms) bad('another number of terms than its header says')
  const parts: IndexParts = {
    ids: [],
    idHex: idBytes,
    source,
    authors: h.authors,
    authorOf,
    tags: h.tags,
    tagCount,
    tagPool,
    lens: [lens0, lens1],
    terms,
    listKey,
    listLen,
    docs,
    tfs
  }
  return { index: TextIndex.fromParts(parts), doc: h.doc }
}

export const INDEX_FILE = 'recall.index'
const PREFIX = 'r!index!'

/**
 * The snapshot as a file beside the store (SPEC.md §11.3), `<snapshots dir>/recall.index`, read
 * in one read into one fresh buffer (its arrays are views of it, aligned). Replaced whole
 * (temp file, rename: a reader never sees half of one) and not synced: losing it costs a
 * rebuild. Without the file, the pieces an older version kept in the replica's `crdt` sublevel
 * (`r!index!<n>`, 6 digits from 0, concatenated in key order) are read (`stale`: the next clean
 * stop saves the index even if nothing changed); the next save deletes them.
 */
export function fileIndexStore(dir: string, db: Sublevel): IndexStore {
  const file = join(dir, INDEX_FILE)
  const range = { gte: PREFIX, lt: 'r!index"' }
  const store = {
    stale: false,
    load: async (): Promise<Uint8Array | undefined> => {
      const bytes = await readFileBytes(file, MAX_INDEX_SNAPSHOT_BYTES)
      if (bytes != null) return bytes
      const old = await levelPieces(db, range)
      store.stale = old != null
      return old
    },
    save: async (bytes: Uint8Array): Promise<void> => {
      await writeFileAtomic(file, bytes, 0o600, { sync: false })
      const ops: Array<{ type: 'del'; key: string }> = []
      for await (const key of db.keys(range)) ops.push({ type: 'del', key })
      if (ops.length > 0) await db.batch(ops)
      store.stale = false
    }
  }
  return store
}

/** An older version's pieces, concatenated, or undefined when there are none. */
async function levelPieces(db: Sublevel, range: { gte: string; lt: string }): Promise<Uint8Array | undefined> {
  const parts: Uint8Array[] = []
  let total = 0
  for await (const v of db.values(range)) {
    total += v.byteLength
    if (total > MAX_INDEX_SNAPSHOT_BYTES) throw new Error(`recall index snapshot over ${MAX_INDEX_SNAPSHOT_BYTES} bytes`)
    parts.push(v)
  }
  if (parts.length === 0) return undefined
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
