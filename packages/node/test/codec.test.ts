/**
 * `encodeFrame` writes deterministic CBOR itself (codec.ts): its bytes must be cborg's, for
 * every value, since peers running either compute the same signatures and AADs over them.
 * `decodeCbor` reads frames itself: it must take what cborg takes (strict) and give the same
 * value, and leave everything else, errors included, to cborg.
 */
import { decode as cborgDecode, encode as cborgEncode } from 'cborg'
import { describe, expect, it, type Mock, vi } from 'vitest'
import type { z } from 'zod'
import { decodeCbor, encodeFrame } from '../src/codec.js'
import { MAX_ACK_IDS, MAX_BODY_BYTES, MAX_ENVELOPE_BYTES } from '../src/messaging/constants.js'
import { ContentSchema, DmEnvelopeSchema, isPlainContent, isPlainDmEnvelope } from '../src/messaging/envelope.js'
import { DmFrameSchema, isPlainDmFrame } from '../src/messaging/frames.js'
import { rng } from './helpers.js'

// what encodeFrame leaves to cborg is counted; the expected bytes come from cborg itself
vi.mock('cborg', async importOriginal => {
  const m = await importOriginal<typeof import('cborg')>()
  return { ...m, encode: vi.fn(m.encode), decode: vi.fn(m.decode) }
})
const { encode, decode } = await vi.importActual<typeof import('cborg')>('cborg')
const leftToCborg = (): number => (cborgEncode as Mock).mock.calls.length
const decodesLeftToCborg = (): number => (cborgDecode as Mock).mock.calls.length
const STRICT = { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false, allowIndefinite: false, allowBigInt: false }

const INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -0]
const STRINGS = [
  '',
  'a',
  'x'.repeat(23),
  'y'.repeat(24),
  'z'.repeat(300),
  'naïve',
  'é'.repeat(40),
  '日本語',
  '😀 ok',
  'a\uD800b',
  '\uDC00',
  'k'.repeat(70000)
]

function value(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 7 : 10))
  switch (pick) {
    case 0:
      return null
    case 1:
      return r() < 0.5
    case 2: {
      const n = INTS[Math.floor(r() * INTS.length)] as number
      return r() < 0.3 ? -n - (r() < 0.5 ? 1 : 0) : r() < 0.5 ? n : Math.floor(r() * 2 ** (1 + Math.floor(r() * 52)))
    }
    case 3:
      return r() < 0.5 ? (STRINGS[Math.floor(r() * STRINGS.length)] as string) : Math.random().toString(36).slice(2)
    case 4:
      return Uint8Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256))
    case 5:
      return r() < 0.1 ? 1.5 : r() < 0.1 ? undefined : Buffer.from('buf')
    case 6:
      return r() < 0.5 ? Number.NaN : 2 ** 60
    case 7:
    case 8: {
      const o: Record<string, unknown> = {}
      const n = Math.floor(r() * 12)
      for (let i = 0; i < n; i++) {
        const k =
          r() < 0.1
            ? (STRINGS[Math.floor(r() * 8)] as string)
            : (['t', 'id', 'to', 'from', 'sentAt', 'e', 'ids', 'v', 'body', 'a', 'bb', 'ab'][Math.floor(r() * 12)] as string)
        o[k] = value(r, depth + 1)
      }
      return o
    }
    default:
      return Array.from({ length: Math.floor(r() * 6) }, () => value(r, depth + 1))
  }
}

describe('encodeFrame', () => {
  it('gives the bytes cborg gives, over random values', () => {
    const r = rng(7)
    const before = leftToCborg()
    for (let i = 0; i < 5000; i++) {
      const v = value(r, 0)
      expect(
        Buffer.from(encodeFrame(v)).toString('hex'),
        JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? [...x] : x))
      ).toBe(Buffer.from(encode(v)).toString('hex'))
    }
    // most values take the own path; the rest show the fallback agrees too
    const fallbacks = leftToCborg() - before
    expect(fallbacks).toBeGreaterThan(200)
    expect(fallbacks).toBeLessThan(2500)
  })

  it('writes frames itself and leaves only what it does not take to cborg', () => {
    const before = leftToCborg()
    encodeFrame({ t: 'm', e: new Uint8Array(10), ids: [new Uint8Array(16)], sentAt: 1_765_000_000_000, n: -5, ok: true, none: null })
    encodeFrame(['naïve', '日本語', 'x'.repeat(1000)])
    expect(leftToCborg()).toBe(before)
    for (const v of [1.5, { a: undefined }, new Map(), '😀', [2 ** 60]]) encodeFrame(v)
    expect(leftToCborg()).toBe(before + 5)
  })

  it('gives a frame to keep a buffer of its own, with the same bytes', () => {
    // a pooled frame is a slice of a shared slab: kept, it keeps the whole slab
    const small = { id: 'x'.repeat(32), env: new Uint8Array(300), exp: 1_765_000_000_000 }
    expect(encodeFrame(small).buffer.byteLength).toBeGreaterThan(encodeFrame(small).byteLength)
    for (const v of [small, 1.5, { a: undefined }, ['naïve', 'x'.repeat(5000)]]) {
      const own = encodeFrame(v, true)
      expect(own.byteOffset).toBe(0)
      expect(own.buffer.byteLength).toBe(own.byteLength)
      expect(Buffer.from(own).equals(Buffer.from(encode(v)))).toBe(true)
    }
  })

  it('gives the bytes cborg gives at the edges', () => {
    const deep: unknown[] = []
    let at = deep
    for (let i = 0; i < 40; i++) at.push((at = []))
    const cases: unknown[] = [
      ...INTS,
      ...INTS.map(n => -n - 1),
      ...STRINGS,
      deep,
      Object.create(null),
      Object.assign(Object.create(null), { b: 1, a: 2 }),
      { b: 1, a: 2, aa: 3, ab: 4, B: 5 },
      new Map([['a', 1]]),
      new Uint16Array([1, 2]),
      { v: undefined },
      [1.25, -0.5]
    ]
    for (const v of cases) expect(Buffer.from(encodeFrame(v)).equals(Buffer.from(encode(v)))).toBe(true)
  })
})

/** what a decoder makes of the bytes: its value, or its error's message */
function outcome(f: (b: Uint8Array) => unknown, b: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: f(b) }
  } catch (err) {
    return { error: (err as Error).message }
  }
}

function expectSameAsCborg(b: Uint8Array): void {
  const theirs = outcome(x => decode(x, STRICT), b)
  expect(outcome(decodeCbor, b), Buffer.from(b).toString('hex')).toStrictEqual(theirs)
}

describe('decodeCbor', () => {
  it('gives the value cborg gives, over random values', () => {
    const r = rng(11)
    const before = decodesLeftToCborg()
    for (let i = 0; i < 5000; i++) expectSameAsCborg(encode(value(r, 0)))
    // floats, undefined and big integers are cborg's; the rest are read here
    const fallbacks = decodesLeftToCborg() - before
    expect(fallbacks).toBeGreaterThan(200)
    expect(fallbacks).toBeLessThan(2500)
  })

  it('takes and refuses what cborg does, over damaged frames', () => {
    const r = rng(12)
    for (let i = 0; i < 5000; i++) {
      const b = Uint8Array.from(encode(value(r, 0)))
      const cut = Math.floor(r() * 4)
      if (cut === 0) b[Math.floor(r() * b.length)] = Math.floor(r() * 256)
      else if (cut === 1) expectSameAsCborg(b.subarray(0, Math.floor(r() * b.length)))
      else if (cut === 2) expectSameAsCborg(Uint8Array.from([...b, Math.floor(r() * 256)]))
      expectSameAsCborg(b)
    }
  })

  it('refuses what strict cborg refuses at the edges', () => {
    const cases = [
      '1805', // 5 in two bytes: not the shortest head
      '190005',
      '1a00000005',
      '1b0000000000000005',
      '1b0020000000000000', // 2^53: past the safe integers
      '3b001fffffffffffff', // -2^53
      '3b001ffffffffffffe', // -(2^53 - 1): the smallest safe integer
      '1b001fffffffffffff',
      'a2616101616102', // a key twice
      'a1016161', // a number as a key
      'a1', // a map with nothing in it
      '9a00000001', // a long head for a short length
      '5803010203', // bytes with a long head
      '9f01ff', // indefinite length
      'f7', // undefined
      'f93c00', // a half float
      'c11a5f5e1000', // a tag
      '0101', // trailing bytes
      '',
      'a1695f5f70726f746f5f5f01', // __proto__
      '63efbbbf61', // a BOM, then a
      '62c328' // not UTF-8
    ]
    for (const hex of cases) expectSameAsCborg(Buffer.from(hex, 'hex'))
  })

  it('reads frames itself and gives byte strings of their own', () => {
    const frame = encodeFrame({
      t: 'm',
      e: new Uint8Array([1, 2, 3]),
      ids: [new Uint8Array(16)],
      at: 1_765_000_000_000,
      n: -5,
      ok: true,
      none: null,
      s: 'naïve'
    })
    const before = decodesLeftToCborg()
    const input = Buffer.from(frame)
    const v = decodeCbor(input) as { e: Uint8Array }
    expect(decodesLeftToCborg()).toBe(before)
    expect(v).toStrictEqual(decode(frame, STRICT))
    expect(Object.getPrototypeOf(v.e)).toBe(Uint8Array.prototype)
    input.fill(0)
    expect([...v.e]).toEqual([1, 2, 3])
  })
})

describe('fast checks (Guard)', () => {
  const WEIRD: unknown[] = [
    undefined,
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 53,
    Number.NaN,
    '',
    'next',
    'now',
    'x'.repeat(64),
    'x'.repeat(65),
    'é'.repeat(64),
    'b'.repeat(MAX_BODY_BYTES),
    'é'.repeat(MAX_BODY_BYTES / 2 + 1),
    new Uint8Array(15),
    new Uint8Array(16),
    new Uint8Array(17),
    new Uint8Array(32),
    new Uint8Array(33),
    new Uint8Array(MAX_ENVELOPE_BYTES + 1),
    Buffer.alloc(16),
    new Uint16Array(8),
    [],
    [new Uint8Array(16)],
    [new Uint8Array(16), new Uint8Array(15)],
    Array.from({ length: MAX_ACK_IDS + 1 }, () => new Uint8Array(16)),
    {},
    'm',
    'a',
    'r',
    'x',
    1
  ]
  const now = 1_765_000_000_000
  const cases: Array<{ name: string; schema: z.ZodType; accepts: (v: unknown) => boolean; valid: () => Record<string, unknown> }> = [
    { name: 'dm frame m', schema: DmFrameSchema, accepts: isPlainDmFrame, valid: () => ({ t: 'm', e: new Uint8Array(200) }) },
    {
      name: 'dm frame a',
      schema: DmFrameSchema,
      accepts: isPlainDmFrame,
      valid: () => ({ t: 'a', ids: [new Uint8Array(16), new Uint8Array(16)] })
    },
    { name: 'dm frame r', schema: DmFrameSchema, accepts: isPlainDmFrame, valid: () => ({ t: 'r', ids: [new Uint8Array(16)] }) },
    {
      name: 'dm envelope',
      schema: DmEnvelopeSchema,
      accepts: isPlainDmEnvelope,
      valid: () => ({
        v: 1,
        from: new Uint8Array(32),
        to: new Uint8Array(32),
        id: new Uint8Array(16),
        ts: now,
        exp: now + 1,
        ct: new Uint8Array(100)
      })
    },
    { name: 'content', schema: ContentSchema, accepts: isPlainContent, valid: () => ({ body: 'hi', pri: 'next' }) },
    {
      name: 'content re',
      schema: ContentSchema,
      accepts: isPlainContent,
      valid: () => ({ body: '', pri: 'low', re: 'ab'.repeat(16), group: 'g' })
    }
  ]

  it('take only what the schema takes, and as the schema gives it', () => {
    const r = rng(21)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T
    for (const c of cases) {
      let taken = 0
      let refused = 0
      expect(c.accepts(c.valid()), c.name).toBe(true)
      for (let i = 0; i < 4000; i++) {
        let v: unknown = c.valid()
        const o = v as Record<string, unknown>
        const keys = [...Object.keys(o), 'e', 'ids', 're', 'group', 'body', 'zz']
        for (let m = Math.floor(r() * 3); m > 0; m--) {
          const k = pick(keys)
          if (r() < 0.2) delete o[k]
          else o[k] = pick(WEIRD)
        }
        if (r() < 0.05) v = Object.assign(Object.create(null), o)
        if (r() < 0.03) v = [o]
        if (c.accepts(v)) {
          taken++
          const parsed = c.schema.safeParse(v)
          expect(parsed.success, `${c.name}: ${String(parsed.error)}`).toBe(true)
          expect(parsed.data).toStrictEqual(v)
        } else {
          refused++
        }
      }
      // both ways are exercised for every schema
      expect(taken, c.name).toBeGreaterThan(100)
      expect(refused, c.name).toBeGreaterThan(100)
    }
  })
})
