/**
 * The recall index's note ids (SPEC.md §11.6): document number ↔ note id. A note id is 16 hex
 * characters (8 bytes): kept as two uint32 per document and found through an open-addressing
 * table of typed arrays, so 100k notes cost ~2 MB and no string or Map entry each (a loaded
 * snapshot's ids are read from their bytes; a note's id string is made when a hit needs it).
 * Any other id (tests, an index outside a document) goes to a Map beside it.
 */
import { grow } from './grow.js'

const EMPTY = 0
const GONE = -1

/** The value of a lowercase hex digit, or -1. */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

function hash(hi: number, lo: number): number {
  return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (hi >>> 7)
}

export class NoteIds {
  private hi = new Uint32Array(1024)
  private lo = new Uint32Array(1024)
  /** per document: 1 when its id is hex (in hi/lo), 0 when it is in `other` */
  private hex = new Uint8Array(1024)
  private readonly other = new Map<string, number>()
  private readonly otherOf = new Map<number, string>()
  /** doc + 1 per slot; EMPTY or GONE */
  private table = new Int32Array(2048)
  private filled = 0
  /** documents handed out */
  count = 0
  /** hex ids in the table */
  private live = 0
  private parsed = { hi: 0, lo: 0 }

  /** `id` as two uint32 in `this.parsed`, or false when it is not 16 lowercase hex characters. */
  private parse(id: string): boolean {
    if (id.length !== 16) return false
    let hi = 0
    let lo = 0
    for (let i = 0; i < 16; i++) {
      const v = nibble(id.charCodeAt(i))
      if (v < 0) return false
      if (i < 8) hi = (hi << 4) | v
      else lo = (lo << 4) | v
    }
    this.parsed.hi = hi >>> 0
    this.parsed.lo = lo >>> 0
    return true
  }

  /** The slot of (hi, lo), or -1. */
  private find(hi: number, lo: number): number {
    const mask = this.table.length - 1
    for (let s = hash(hi, lo) & mask; ; s = (s + 1) & mask) {
      const v = this.table[s] as number
      if (v === EMPTY) return -1
      if (v !== GONE && this.hi[v - 1] === hi && this.lo[v - 1] === lo) return s
    }
  }

  private place(doc: number): void {
    const mask = this.table.length - 1
    let s = hash(this.hi[doc] as number, this.lo[doc] as number) & mask
    while ((this.table[s] as number) > 0) s = (s + 1) & mask
    if (this.table[s] === EMPTY) this.filled++
    this.table[s] = doc + 1
  }

  /** A table twice the live entries at least, tombstones dropped. */
  private rehash(live: number): void {
    let size = this.table.length
    while (size < 4 * (live + 1)) size *= 2
    const old = this.table
    this.table = new Int32Array(size)
    this.filled = 0
    for (const v of old) if (v > 0) this.place(v - 1)
  }

  private growDocs(need: number): void {
    this.hi = grow(this.hi, need)
    this.lo = grow(this.lo, need)
    this.hex = grow(this.hex, need)
  }

  get(id: string): number | undefined {
    if (!this.parse(id)) return this.other.get(id)
    const s = this.find(this.parsed.hi, this.parsed.lo)
    return s < 0 ? undefined : (this.table[s] as number) - 1
  }

  /** A new document for `id` (not held). */
  add(id: string): number {
    const doc = this.count++
    this.growDocs(doc + 1)
    if (!this.parse(id)) {
      this.hex[doc] = 0
      this.other.set(id, doc)
      this.otherOf.set(doc, id)
      return doc
    }
    this.hex[doc] = 1
    this.hi[doc] = this.parsed.hi
    this.lo[doc] = this.parsed.lo
    if (2 * (this.filled + 1) > this.table.length) this.rehash(this.live + 1)
    this.place(doc)
    this.live++
    return doc
  }

  delete(id: string): void {
    if (!this.parse(id)) {
      const doc = this.other.get(id)
      if (doc != null) this.otherOf.delete(doc)
      this.other.delete(id)
      return
    }
    const s = this.find(this.parsed.hi, this.parsed.lo)
    if (s >= 0) {
      this.table[s] = GONE
      this.live--
    }
  }

  /** The id of a document handed out (live or not). */
  idOf(doc: number): string {
    if (this.hex[doc] !== 1) return this.otherOf.get(doc) ?? ''
    return (this.hi[doc] as number).toString(16).padStart(8, '0') + (this.lo[doc] as number).toString(16).padStart(8, '0')
  }

  /** Documents 0..n-1 from `n` ids of 16 lowercase hex bytes each (a snapshot's); throws on one that is not, or twice. */
  loadHex(bytes: Uint8Array, n: number): void {
    if (this.count !== 0) throw new Error('note ids: load into an empty table only')
    if (bytes.byteLength !== 16 * n) throw new Error('recall index snapshot: note ids that are not 16 hex characters each')
    this.growDocs(n)
    this.rehash(n)
    for (let d = 0; d < n; d++) {
      let hi = 0
      let lo = 0
      for (let i = 0; i < 16; i++) {
        const v = nibble(bytes[16 * d + i] as number)
        if (v < 0) throw new Error('recall index snapshot: note ids that are not 16 hex characters each')
        if (i < 8) hi = (hi << 4) | v
        else lo = (lo << 4) | v
      }
      hi >>>= 0
      lo >>>= 0
      if (this.find(hi, lo) >= 0) throw new Error('recall index snapshot: a note twice')
      this.hi[d] = hi
      this.lo[d] = lo
      this.hex[d] = 1
      this.count = d + 1
      this.place(d)
      this.live++
    }
  }
}
