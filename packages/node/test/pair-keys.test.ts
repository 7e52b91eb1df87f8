/**
 * DM pair keys (SPEC.md §8.2): X25519 now runs in node:crypto; the shared secret must be the
 * one noble's x25519 gives (nodes of earlier builds derive theirs that way), and both ends of
 * a pair must derive the same key.
 */
import { randomBytes } from 'node:crypto'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import { PairKeys, x25519Secret, x25519Shared } from '../src/crypto/index.js'

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

  it('refuses a low-order point instead of deriving a key from an all-zero secret', () => {
    const mine = x25519Secret(ed25519.utils.toMontgomerySecret(randomBytes(32)))
    expect(() => x25519Shared(mine, new Uint8Array(32))).toThrow(/low-order/)
  })
})
