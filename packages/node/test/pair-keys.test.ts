/**
 * DM pair keys (SPEC.md §8.2): X25519 now runs in node:crypto; the shared secret must be the
 * one noble's x25519 gives (nodes of earlier builds derive theirs that way), and both ends of
 * a pair must derive the same key.
 */
import { randomBytes } from 'node:crypto'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { montgomeryU, PairKeys, x25519Secret, x25519Shared } from '../src/crypto/index.js'
import { deriveKey } from '../src/identity/secrets.js'

describe('DM pair keys', () => {
  it('native X25519 gives noble x25519 shared secret for ed25519-derived keys', () => {
    for (let i = 0; i < 50; i++) {
      const seed = randomBytes(32)
      const peer = ed25519.getPublicKey(randomBytes(32))
      const mine = ed25519.utils.toMontgomerySecret(seed)
      const theirs = ed25519.utils.toMontgomery(peer)
      expect(Buffer.from(x25519Shared(x25519Secret(mine), theirs)).equals(Buffer.from(x25519.getSharedSecret(mine, theirs)))).toBe(true)
    }
  })

  it('both ends of a pair derive the same key, and another mesh secret gives another key', () => {
    const a = randomBytes(32)
    const b = randomBytes(32)
    const [pa, pb] = [ed25519.getPublicKey(a), ed25519.getPublicKey(b)]
    const secret = randomBytes(32)
    const ka = new PairKeys(pa, a, secret, 'mesh').key(pb)
    const kb = new PairKeys(pb, b, secret, 'mesh').key(pa)
    expect(Buffer.from(ka).equals(Buffer.from(kb))).toBe(true)
    expect(Buffer.from(new PairKeys(pa, a, randomBytes(32), 'mesh').key(pb)).equals(Buffer.from(ka))).toBe(false)
  })

  it('derives the key earlier builds derived (noble toMontgomery, x25519, hkdf as in SPEC.md §8.2)', () => {
    for (let i = 0; i < 20; i++) {
      const [a, b] = [randomBytes(32), randomBytes(32)]
      const [pa, pb] = [ed25519.getPublicKey(a), ed25519.getPublicKey(b)]
      const secret = randomBytes(32)
      const shared = x25519.getSharedSecret(ed25519.utils.toMontgomerySecret(a), ed25519.utils.toMontgomery(pb))
      const [lo, hi] = Buffer.compare(Buffer.from(pa), Buffer.from(pb)) <= 0 ? [pa, pb] : [pb, pa]
      const info = Buffer.concat([Buffer.from('claudemesh/dm/v1'), lo, hi])
      const want = hkdf(sha256, shared, deriveKey(secret, 'mesh', 'dm/v1'), info, 32)
      expect(Buffer.from(new PairKeys(pa, a, secret, 'mesh').key(pb)).equals(Buffer.from(want))).toBe(true)
    }
  })

  it('maps y straight to u as noble does for points, including the sign bit of x and a non-canonical y', () => {
    for (let i = 0; i < 100; i++) {
      const p = ed25519.getPublicKey(randomBytes(32))
      expect(Buffer.from(montgomeryU(p)).equals(Buffer.from(ed25519.utils.toMontgomery(p)))).toBe(true)
      const negated = Uint8Array.from(p)
      negated[31] = (negated[31] as number) ^ 0x80
      expect(Buffer.from(montgomeryU(negated)).equals(Buffer.from(montgomeryU(p)))).toBe(true)
    }
    // y = p + 2 (a non-canonical encoding of y = 2) maps as y = 2
    const two = new Uint8Array(32)
    two[0] = 2
    const pPlus2 = Uint8Array.from(Buffer.from('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'))
    pPlus2[0] = 0xef
    expect(Buffer.from(montgomeryU(pPlus2)).equals(Buffer.from(montgomeryU(two)))).toBe(true)
  })

  it('a key that is not a curve point gives a pair key nobody else holds; the identity point and wrong lengths none', () => {
    const a = randomBytes(32)
    const pa = ed25519.getPublicKey(a)
    const keys = new PairKeys(pa, a, randomBytes(32), 'mesh')
    // find an encoding that is not a point (about half of all y are not)
    let bad: Uint8Array | undefined
    for (let i = 0; bad == null && i < 64; i++) {
      const c = randomBytes(32)
      try {
        ed25519.Point.fromBytes(c)
      } catch {
        bad = c
      }
    }
    expect(bad).toBeDefined()
    expect(keys.key(bad as Uint8Array).byteLength).toBe(32)
    const identity = new Uint8Array(32)
    identity[0] = 1
    expect(() => keys.key(identity)).toThrow(/identity/)
    expect(() => keys.key(new Uint8Array(31))).toThrow(/32 bytes/)
  })

  it('refuses a low-order point instead of deriving a key from an all-zero secret', () => {
    const mine = x25519Secret(ed25519.utils.toMontgomerySecret(randomBytes(32)))
    expect(() => x25519Shared(mine, new Uint8Array(32))).toThrow(/low-order/)
  })
})
