/**
 * The one wire encoding between peers: deterministic CBOR (cborg) checked against a zod
 * schema. Every decoder takes an explicit byte limit and refuses before parsing, so an
 * oversized or malformed frame costs nothing but its own bytes. See SPEC.md §2.
 */
import { decode, encode } from 'cborg'
import { z } from 'zod'
import { FrameTooLargeError, MalformedFrameError } from './errors.js'

/**
 * Deterministic CBOR: the bytes cborg's `encode` gives (RFC 7049 canonical: shortest heads,
 * map keys shorter first, then bytewise). cborg builds a token and a byte copy per key, sorts
 * entry pairs and grows a chunk list on every call, a third of all the garbage a DM made; this
 * writes the value in one pass into a scratch buffer kept for the purpose, then copies it into
 * its output, the one allocation. It takes the values frames are made of (null, booleans, safe
 * integers, strings, bytes, arrays, plain objects with ASCII keys); anything else (a float,
 * undefined, a Map, a string with a surrogate, a deep nesting) goes to cborg whole, so the bytes
 * never differ. (Sizing the value first, then writing it into an exact buffer, walked every value
 * twice: ~4 % of a DM burst's CPU.)
 *
 * The output is a slice of Node's 8 KiB allocation pool, like cborg's: a fresh ArrayBuffer
 * costs ~0.5 µs, more than the rest of a small frame's encoding. A frame kept for a while
 * (an envelope until its ack) asks for a buffer of its own (`own`): a kept slice keeps its
 * whole slab alive, and under a burst the slabs between kept frames are otherwise garbage
 * (measured: ~3,400 slabs, 27 MB, pinned by the outbox values of 20k queued DMs in a process
 * of 20 nodes, before those were encoded only when their batch is written: store/commit.ts
 * LazyPut).
 */
export function encodeFrame(value: unknown, own = false): Uint8Array {
  // a getter that encodes (none of ours does) would write over the scratch: that one goes to cborg
  if (!writing) {
    writing = true
    try {
      const size = put(value, 0, 0)
      if (size >= 0) {
        const out = own ? new Uint8Array(size) : Buffer.allocUnsafe(size)
        scratch.copy(out, 0, 0, size)
        return out
      }
    } finally {
      writing = false
      if (scratch.length > SCRATCH_KEEP) scratch = Buffer.allocUnsafe(SCRATCH_BYTES)
    }
  }
  return own ? new Uint8Array(encode(value)) : encode(value)
}

const MAX_DEPTH = 32
const SURROGATE = /[\uD800-\uDFFF]/
/** the scratch's size, and the largest kept between calls (a larger one, for a big frame, is let go) */
const SCRATCH_BYTES = 16 * 1024
const SCRATCH_KEEP = 1024 * 1024
let scratch = Buffer.allocUnsafe(SCRATCH_BYTES)
let writing = false

/** Room for `n` more bytes at `at`: the scratch grows (at least doubles), keeping what is written. */
function room(at: number, n: number): void {
  if (at + n <= scratch.length) return
  const next = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n))
  scratch.copy(next, 0, 0, at)
  scratch = next
}

/** A short string's check in JS: cheaper than a call into Buffer */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false
  return true
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** A head with room for it made (at most 9 bytes). */
function head(at: number, major: number, n: number): number {
  room(at, 9)
  const out = scratch
  if (n < 24) {
    out[at] = major | n
    return at + 1
  }
  if (n < 0x100) {
    out[at] = major | 24
    out[at + 1] = n
    return at + 2
  }
  if (n < 0x10000) {
    out[at] = major | 25
    out[at + 1] = n >>> 8
    out[at + 2] = n & 0xff
    return at + 3
  }
  if (n < 0x100000000) {
    out[at] = major | 26
    writeUint32(out, at + 1, n)
    return at + 5
  }
  out[at] = major | 27
  writeUint32(out, at + 1, Math.floor(n / 0x100000000))
  writeUint32(out, at + 5, n >>> 0)
  return at + 9
}

function writeUint32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24
  out[at + 1] = (n >>> 16) & 0xff
  out[at + 2] = (n >>> 8) & 0xff
  out[at + 3] = n & 0xff
}

/** A text string known to be ASCII: its characters are its bytes. */
function putAscii(at: number, s: string): number {
  const n = s.length
  at = head(at, 0x60, n)
  room(at, n)
  const out = scratch
  for (let i = 0; i < n; i++) out[at + i] = s.charCodeAt(i)
  return at + n
}

/** A text string, or -1 for one cborg would write otherwise (a surrogate, lone or paired). */
function putString(at: number, s: string): number {
  const n = s.length
  if (n <= 64 && isAscii(s)) return putAscii(at, s)
  const bytes = Buffer.byteLength(s, 'utf8')
  if (bytes !== n && SURROGATE.test(s)) return -1
  at = head(at, 0x60, bytes)
  room(at, bytes)
  return at + scratch.write(s, at, bytes, 'utf8')
}

/** Object keys in cborg's default order for ASCII keys: shorter first, then bytewise (an insertion sort: a frame has a dozen keys at most) */
function sortedKeys(o: object): string[] {
  const keys = Object.keys(o)
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as string
    let j = i - 1
    while (j >= 0) {
      const p = keys[j] as string
      if (p.length < k.length || (p.length === k.length && p < k)) break
      keys[j + 1] = p
      j--
    }
    keys[j + 1] = k
  }
  return keys
}

/** `v` written at `at` in the scratch: the offset after it, or -1 when it holds anything left to cborg. */
function put(v: unknown, at: number, depth: number): number {
  switch (typeof v) {
    case 'boolean':
      room(at, 1)
      scratch[at] = v ? 0xf5 : 0xf4
      return at + 1
    case 'number':
      if (!Number.isSafeInteger(v)) return -1
      return v >= 0 ? head(at, 0x00, v) : head(at, 0x20, -1 - v)
    case 'string':
      return putString(at, v)
    case 'object': {
      if (v === null) {
        room(at, 1)
        scratch[at] = 0xf6
        return at + 1
      }
      if (depth >= MAX_DEPTH) return -1
      if (v instanceof Uint8Array) {
        const n = v.byteLength
        at = head(at, 0x40, n)
        room(at, n)
        scratch.set(v, at)
        return at + n
      }
      if (Array.isArray(v)) {
        at = head(at, 0x80, v.length)
        for (const x of v) {
          at = put(x, at, depth + 1)
          if (at < 0) return -1
        }
        return at
      }
      if (!isPlain(v)) return -1
      const o = v as Record<string, unknown>
      const keys = sortedKeys(o)
      at = head(at, 0xa0, keys.length)
      for (const k of keys) {
        const x = o[k]
        // an ASCII key: its UTF-8 bytes are its characters, the order above is cborg's
        if (x === undefined || !isAscii(k)) return -1
        at = putAscii(at, k)
        at = put(x, at, depth + 1)
        if (at < 0) return -1
      }
      return at
    }
    default:
      return -1
  }
}

/** cborg's options for every frame: no undefined, no duplicate map keys, shortest heads, no tags taken */
const STRICT = { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false, allowIndefinite: false, allowBigInt: false }

/**
 * CBOR → a value, as cborg's `decode` with STRICT gives it. Frames are read here: the values
 * encodeFrame writes (null, booleans, safe integers, text, bytes, definite arrays, maps with
 * text keys), shortest heads only. cborg makes a token object per item and merges its options
 * per call, a tenth of a DM's CPU on the receiving side. Anything else (a float, a tag, a
 * duplicate key, truncated or trailing bytes, any other error) goes to cborg whole, so what
 * is accepted, and every error message, stays cborg's. Byte strings are copies, as cborg's.
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  if (bytes instanceof Uint8Array && bytes.byteLength > 0) {
    try {
      const r = new CborReader(bytes)
      const v = r.value(0)
      if (r.at === r.bytes.byteLength) return v
    } catch (err) {
      if (err !== DEFER) throw err
    }
  }
  return decode(bytes, STRICT)
}

/** thrown inside CborReader: this input is cborg's to judge */
const DEFER = Symbol('defer')
const utf8Decoder = new TextDecoder()

class CborReader {
  at = 0
  readonly bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    // Buffer's slice shares memory: byte strings are cut from a plain view
    this.bytes = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes
  }

  /** a head's argument after its initial byte: shortest form only, a safe integer */
  private arg(minor: number): number {
    if (minor < 24) return minor
    if (minor > 27) throw DEFER
    const size = 1 << (minor - 24) // 1, 2, 4 or 8 bytes
    this.need(size)
    const b = this.bytes
    const at = this.at
    let n: number
    if (size === 1) n = b[at] as number
    else if (size === 2) n = ((b[at] as number) << 8) | (b[at + 1] as number)
    else if (size === 4) n = uint32(b, at)
    else {
      const hi = uint32(b, at)
      if (hi > 0x1fffff) throw DEFER // past 2^53
      n = hi * 0x100000000 + uint32(b, at + 4)
    }
    // the shortest head for n is this one: strict cborg refuses a longer one
    if (n < (size === 1 ? 24 : 2 ** (4 * size))) throw DEFER
    this.at += size
    return n
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.byteLength) throw DEFER
  }

  value(depth: number): unknown {
    const b = this.bytes
    if (this.at >= b.byteLength) throw DEFER
    const initial = b[this.at++] as number
    const minor = initial & 31
    switch (initial >> 5) {
      case 0:
        return this.arg(minor)
      case 1: {
        const n = this.arg(minor)
        if (n >= Number.MAX_SAFE_INTEGER) throw DEFER
        return -1 - n
      }
      case 2: {
        const n = this.arg(minor)
        this.need(n)
        const out = b.slice(this.at, this.at + n)
        this.at += n
        return out
      }
      case 3:
        return this.text(this.arg(minor))
      case 4: {
        const n = this.arg(minor)
        // each item takes a byte at least: a length the rest cannot hold is cborg's to refuse
        if (depth >= MAX_DEPTH || n > b.byteLength - this.at) throw DEFER
        const out: unknown[] = []
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1))
        return out
      }
      case 5: {
        const n = this.arg(minor)
        if (depth >= MAX_DEPTH || n * 2 > b.byteLength - this.at) throw DEFER
        const out: Record<string, unknown> = {}
        for (let i = 0; i < n; i++) {
          // a text key: any other is cborg's to refuse
          if (this.at >= b.byteLength || (b[this.at] as number) >> 5 !== 3) throw DEFER
          const key = this.value(depth + 1) as string
          if (key === '__proto__' || Object.hasOwn(out, key)) throw DEFER
          out[key] = this.value(depth + 1)
        }
        return out
      }
      case 7:
        if (minor === 20) return false
        if (minor === 21) return true
        if (minor === 22) return null
        throw DEFER
      default:
        throw DEFER
    }
  }

  /** `n` bytes of UTF-8, decoded as cborg does (malformed sequences replaced, a BOM dropped) */
  private text(n: number): string {
    this.need(n)
    const b = this.bytes
    const start = this.at
    this.at += n
    if (n <= 32) {
      let s = ''
      for (let i = start; i < start + n; i++) {
        const c = b[i] as number
        if (c >= 0x80) return utf8Decoder.decode(b.subarray(start, start + n))
        s += String.fromCharCode(c)
      }
      return s
    }
    return utf8Decoder.decode(b.subarray(start, start + n))
  }
}

function uint32(b: Uint8Array, at: number): number {
  return (b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
}

/**
 * A hot frame's fast check: true only for a value its schema takes unchanged (a strict object
 * with no defaults or transforms, so zod's output would equal it). Anything else, including
 * every refusal, goes to the schema, which gives the value or the error. zod's parse costs a
 * DM's receiving side ~10% of its CPU and a tenth of its garbage (a payload object per field);
 * codec.test.ts checks each guard against its schema.
 */
export type Guard = (raw: unknown) => boolean

export function decodeFrame<S extends z.ZodType>(
  bytes: Uint8Array,
  schema: S,
  maxBytes: number,
  what: string,
  accepts?: Guard
): z.output<S> {
  if (bytes.byteLength > maxBytes) {
    throw new FrameTooLargeError(`${what} frame of ${bytes.byteLength} bytes exceeds the ${maxBytes}-byte limit`)
  }
  let raw: unknown
  try {
    raw = decodeCbor(bytes)
  } catch (err) {
    throw new MalformedFrameError(`${what} frame is not valid CBOR: ${(err as Error).message}`)
  }
  if (accepts?.(raw) === true) return raw as z.output<S>
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new MalformedFrameError(`${what} frame does not match its schema: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  }
  return parsed.data
}

/** A plain object (as decoding makes them) with exactly `n` own enumerable keys: what a strict zod object of `n` fields may take as it is. */
export function isRecordOf(v: unknown, n: number): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false
  let k = 0
  for (const key in v) if (Object.hasOwn(v, key)) k++
  return k === n
}

/** What `zBytes` takes: a Uint8Array of exactly `len` bytes, or at most `max`. */
export function isBytes(v: unknown, opts: { len?: number; max?: number }): v is Uint8Array {
  return v instanceof Uint8Array && (opts.len == null || v.byteLength === opts.len) && (opts.max == null || v.byteLength <= opts.max)
}

/** A CBOR byte string, optionally of an exact length or at most `max` bytes. */
export function zBytes(opts: { len?: number; max?: number } = {}): z.ZodType<Uint8Array> {
  return z.custom<Uint8Array>(
    v => isBytes(v, opts),
    opts.len != null ? `expected ${opts.len} bytes` : `expected at most ${opts.max ?? 'n'} bytes`
  )
}
