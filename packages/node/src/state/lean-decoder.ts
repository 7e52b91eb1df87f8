/**
 * A Yjs update decoder (format V1, what Y.applyUpdate reads) that makes the same document with
 * less memory and less garbage, for the big updates a replica applies at load (its snapshot,
 * the log after it). Yjs reads a value (ContentAny) through lib0's `readAny`, which grows every
 * array by `push` (an array of 1 to 3 tags gets room for 17: 152 bytes) and decodes every
 * string afresh (each note's `by`, author, tags and each object key: ~100 bytes a note). Here:
 *  - arrays are made at their length (which cannot exceed the bytes left: each item takes one);
 *  - strings of at most INTERN_CHARS bytes are read once per update and shared after
 *    that, so a value repeated in 100k notes is one string, and the copies die young;
 *  - ASCII text is read without a TextDecoder call; anything else goes through a fatal UTF-8
 *    TextDecoder that keeps a BOM, as lib0's does (invalid UTF-8 still throws).
 *  - a float64 (a timestamp in ms is one) is read from the bytes, without a DataView for each.
 * Every other type (integers, float32, booleans, null, undefined, bigint, bytes) is read by lib0 as before.
 * Measured at 100k notes (bench/recall.mjs): see the commit that added it.
 */
import * as Y from 'yjs'

/** Strings up to this many bytes are shared within one update (authors, tags, object keys). */
export const INTERN_CHARS = 64

const STRING = 119
const OBJECT = 118
const ARRAY = 117
const FLOAT64 = 123

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

interface RestDecoder {
  arr: Uint8Array
  pos: number
}

export class LeanDecoderV1 extends Y.UpdateDecoderV1 {
  private readonly rest: RestDecoder
  private readonly bytes: Buffer
  /** short strings seen in this update: other text by itself, ASCII by a hash of its bytes */
  private readonly pool = new Map<string, string>()
  private readonly ascii = new Map<number, string>()

  constructor(decoder: ConstructorParameters<typeof Y.UpdateDecoderV1>[0]) {
    super(decoder)
    this.rest = this.restDecoder as unknown as RestDecoder
    const a = this.rest.arr
    this.bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength)
  }

  override readString(): string {
    return this.text(this.uint(), false)
  }

  override readAny(): unknown {
    const d = this.rest
    const type = d.arr[d.pos]
    if (type === STRING) {
      d.pos++
      return this.text(this.uint(), true)
    }
    if (type === OBJECT) {
      d.pos++
      const len = this.count()
      const obj: Record<string, unknown> = {}
      for (let i = 0; i < len; i++) {
        const key = this.text(this.uint(), true)
        obj[key] = this.readAny()
      }
      return obj
    }
    if (type === FLOAT64) {
      // lib0 makes a DataView for each (a note's createdAt and at are float64 once they pass 2^31)
      d.pos++
      const v = this.bytes.readDoubleBE(d.pos)
      d.pos += 8
      return v
    }
    if (type === ARRAY) {
      d.pos++
      const len = this.count()
      const arr: unknown[] = new Array(len)
      for (let i = 0; i < len; i++) arr[i] = this.readAny()
      return arr
    }
    return super.readAny()
  }

  /** A length of items that each take at least a byte. */
  private count(): number {
    const n = this.uint()
    if (n > this.rest.arr.length - this.rest.pos) throw new RangeError('a Yjs update with more items than bytes left')
    return n
  }

  /** lib0's var-uint (7 bits a byte, little end first). */
  private uint(): number {
    const d = this.rest
    const arr = d.arr
    let num = 0
    let mult = 1
    while (d.pos < arr.length) {
      const r = arr[d.pos++] as number
      num += (r & 0x7f) * mult
      if (r < 0x80) return num
      mult *= 128
      if (num > Number.MAX_SAFE_INTEGER) throw new RangeError('a Yjs update with an integer out of range')
    }
    throw new RangeError('a Yjs update that ends inside an integer')
  }

  private text(len: number, shared: boolean): string {
    const d = this.rest
    const arr = d.arr
    const start = d.pos
    const end = start + len
    if (end > arr.length) throw new RangeError('a Yjs update that ends inside a string')
    d.pos = end
    if (!shared || len > INTERN_CHARS) {
      for (let i = start; i < end; i++) if ((arr[i] as number) > 0x7f) return utf8.decode(arr.subarray(start, end))
      return this.bytes.toString('latin1', start, end)
    }
    // FNV-1a of the bytes, and whether they are all ASCII, in one pass
    let ascii = true
    let h = 0x811c9dc5
    for (let i = start; i < end; i++) {
      const b = arr[i] as number
      if (b > 0x7f) {
        ascii = false
        break
      }
      h = Math.imul(h ^ b, 0x01000193)
    }
    if (!ascii) {
      const s = utf8.decode(arr.subarray(start, end))
      const known = this.pool.get(s)
      if (known !== undefined) return known
      this.pool.set(s, s)
      return s
    }
    // a short ASCII string seen before in this update is found by its bytes, without making it again
    const key = (h ^ len) >>> 0
    const known = this.ascii.get(key)
    if (known !== undefined && known.length === len) {
      let same = true
      for (let i = 0; i < len; i++)
        if (known.charCodeAt(i) !== arr[start + i]) {
          same = false
          break
        }
      if (same) return known
    }
    const s = this.bytes.toString('latin1', start, end)
    if (known === undefined) this.ascii.set(key, s)
    return s
  }
}
