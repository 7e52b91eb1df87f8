/**
 * packages/xsalsa20, the PSK cipher under every connection (SPEC.md §4): the same keystream
 * as @noble/ciphers' xsalsa20 byte for byte, whatever sizes the writes come in, so nodes
 * interoperate with the upstream package and with each other.
 */
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import { describe, expect, it } from 'vitest'
// the workspace override itself (no dependency edge from here: pnet imports it as `xsalsa20`)
import XSalsa20 from '../../xsalsa20/index.js'
import { aeadImpl } from '../src/crypto/aead.js'

/** where crypto/aead.ts puts libsodium's XSalsa20 for the package, once the binding loaded and agreed with noble */
const SLOT = Symbol.for('claudemesh.xsalsa20.native')
type Native = { stateBytes: number; init: (...a: Uint8Array[]) => void; update: (...a: Uint8Array[]) => void }
const slot = globalThis as unknown as Record<symbol, Native | undefined>

/** seeded bytes, so a failure is reproducible */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

describe('xsalsa20 (the pnet cipher)', () => {
  // the tests before the libsodium one run in JS: nothing has filled the slot yet in this file
  it('XORs the keystream of @noble/ciphers xsalsa20, across calls of every size and alignment', () => {
    const sizes = [1, 3, 12, 63, 64, 65, 100, 127, 128, 1400, 4096, 65_543]
    for (let seed = 1; seed <= 20; seed++) {
      const key = bytes(32, seed)
      const nonce = bytes(24, seed + 1000)
      const cipher = XSalsa20(nonce, key)
      const chunks: Uint8Array[] = []
      for (let k = 0; k < 40; k++) {
        const n = sizes[(seed * 7 + k * 13) % sizes.length] as number
        // an odd byte offset into a larger buffer: the word-at-a-time path must not assume alignment
        const backing = bytes(n + 3, seed * 100 + k)
        chunks.push(backing.subarray(k % 4, (k % 4) + n))
      }
      const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0))
      let at = 0
      for (const c of chunks) {
        all.set(c, at)
        at += c.length
      }
      const want = xsalsa20(key, nonce, all)
      const got = new Uint8Array(all.length)
      at = 0
      for (const c of chunks) {
        got.set(cipher.update(c), at)
        at += c.length
      }
      expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true)
    }
  })

  it('writes into a given output and leaves the input alone', () => {
    const key = bytes(32, 7)
    const nonce = bytes(24, 8)
    const input = bytes(200, 9)
    const copy = input.slice()
    const out = new Uint8Array(200)
    expect(XSalsa20(nonce, key).update(input, out)).toBe(out)
    expect(Buffer.from(input).equals(Buffer.from(copy))).toBe(true)
    expect(Buffer.from(out).equals(Buffer.from(xsalsa20(key, nonce, input)))).toBe(true)
  })

  it('runs in libsodium where its binding loads, a stream made before switching mid-way at the same keystream position', () => {
    aeadImpl() // loads the binding now
    const native = slot[SLOT]
    // CI runs on linux-x64: the fast path must be the one measured there
    if (process.platform === 'linux' && process.arch === 'x64') expect(native).toBeDefined()
    if (native == null) return
    let calls = 0
    const counted: Native = {
      ...native,
      update: (...a) => {
        calls++
        native.update(...a)
      }
    }
    try {
      const sizes = [1, 63, 64, 65, 100, 1400, 12, 70_000, 3]
      for (let seed = 1; seed <= 10; seed++) {
        const key = bytes(32, seed)
        const nonce = bytes(24, seed + 500)
        const input = bytes(sizes.reduce((a, b) => a + b, 0) * 2, seed + 900)
        slot[SLOT] = undefined
        const early = XSalsa20(nonce, key)
        const got = new Uint8Array(input.length)
        let at = 0
        const step = (n: number): void => {
          got.set(early.update(input.subarray(at, at + n)), at)
          at += n
        }
        // in JS until the slot is filled, then in libsodium from the next call on
        for (const n of sizes.slice(0, seed % sizes.length)) step(n)
        slot[SLOT] = counted
        const before = calls
        for (const n of sizes) step(n)
        expect(calls).toBeGreaterThan(before)
        // a stream made after it runs there from the start
        const late = XSalsa20(nonce, key).update(input)
        expect(Buffer.from(got.subarray(0, at)).equals(Buffer.from(xsalsa20(key, nonce, input.subarray(0, at))))).toBe(true)
        expect(Buffer.from(late).equals(Buffer.from(xsalsa20(key, nonce, input)))).toBe(true)
      }
      // sizes are checked before the binding (its own checks are C asserts)
      const cipher = XSalsa20(bytes(24, 1), bytes(32, 2))
      expect(() => cipher.update(new Uint8Array(10), new Uint8Array(9))).toThrow(RangeError)
      expect(() => cipher.update([1, 2, 3] as unknown as Uint8Array)).toThrow(TypeError)
    } finally {
      slot[SLOT] = native
    }
  })

  it('refuses a short key or nonce', () => {
    expect(() => XSalsa20(new Uint8Array(23), new Uint8Array(32))).toThrow(/nonce/)
    expect(() => XSalsa20(new Uint8Array(24), new Uint8Array(31))).toThrow(/key/)
  })
})
