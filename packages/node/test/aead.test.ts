/**
 * The envelope cipher (crypto/aead.ts): libsodium through sodium-native's prebuilt binding
 * where it loads, node:crypto otherwise. Both must be RFC 8439's ChaCha20-Poly1305 byte for
 * byte (noble's is the independent reference), each must open what the other sealed (a mesh
 * mixes nodes of either), and a node with a prebuild for its platform must use it.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { describe, expect, it } from 'vitest'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  aeadImpl,
  implementations,
  nativeChaChaPoly,
  NONCE_BYTES,
  openWith,
  sealWith,
  TAG_BYTES,
  XNONCE_BYTES,
  xOpenWith,
  xSealWith
} from '../src/crypto/aead.js'
import { keptKeyCrypto } from '../src/transport/noise-crypto.js'
import { MalformedFrameError } from '../src/errors.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'))
const prebuild = (): string => {
  const dir = dirname(createRequire(import.meta.url).resolve('sodium-native/package.json'))
  return join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node')
}

describe('envelope cipher', () => {
  it('uses libsodium where sodium-native has a prebuild for this platform', () => {
    expect(aeadImpl()).toBe(existsSync(prebuild()) ? 'libsodium' : 'node:crypto')
    // CI runs on linux-x64: the fast path must be the one measured there
    if (process.platform === 'linux' && process.arch === 'x64') expect(aeadImpl()).toBe('libsodium')
  })

  it('CLAUDEMESH_AEAD=node keeps node:crypto and noble, with the same bytes', () => {
    const src = join(import.meta.dirname, '..', 'dist', 'crypto', 'aead.js')
    const k = new Uint8Array(32).fill(3)
    const a = new Uint8Array(20).fill(5)
    const p = new Uint8Array(99).fill(9)
    const script = `import('${src}').then(m => { const k = new Uint8Array(32).fill(3), a = new Uint8Array(20).fill(5), p = new Uint8Array(99).fill(9)
      const hex = b => Buffer.from(b).toString('hex')
      console.log(JSON.stringify([m.aeadImpl(), hex(m.sealWith(k, new Uint8Array(12).fill(1), p, a)), hex(m.xSealWith(k, new Uint8Array(24).fill(2), p, a))])) })`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, CLAUDEMESH_AEAD: 'node' },
      encoding: 'utf8'
    })
    const [impl, sealed, xSealed] = JSON.parse(out) as [string, string, string]
    expect(impl).toBe('node:crypto')
    expect(sealed).toBe(Buffer.from(sealWith(k, new Uint8Array(12).fill(1), p, a)).toString('hex'))
    expect(xSealed).toBe(Buffer.from(xSealWith(k, new Uint8Array(24).fill(2), p, a)).toString('hex'))
  })

  it('seals the RFC 8439 §2.8.2 vector in both implementations', () => {
    const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
    const nonce = hex('070000004041424344454647')
    const aad = hex('50515253c0c1c2c3c4c5c6c7')
    const plain = new TextEncoder().encode(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
    )
    for (const [name, impl] of Object.entries(implementations())) {
      const sealed = impl.seal(key, nonce, plain, aad)
      expect(Buffer.from(sealed.subarray(0, NONCE_BYTES)).toString('hex'), name).toBe('070000004041424344454647')
      expect(Buffer.from(sealed.subarray(NONCE_BYTES, NONCE_BYTES + 16)).toString('hex'), name).toBe('d31a8d34648e60db7b86afbc53ef7ec2')
      expect(Buffer.from(sealed.subarray(sealed.byteLength - TAG_BYTES)).toString('hex'), name).toBe('1ae10b594f09e26a7e902ecbd0600691')
      expect(Buffer.from(impl.open(key, sealed, aad)).equals(Buffer.from(plain)), name).toBe(true)
    }
  })

  it('gives noble’s bytes, and each implementation opens what the other sealed, at every size', () => {
    const impls = Object.values(implementations())
    for (const size of [0, 1, 15, 16, 63, 64, 65, 1000, 70_000]) {
      const key = randomBytes(32)
      const nonce = randomBytes(NONCE_BYTES)
      const aad = randomBytes(size % 200)
      const plain = randomBytes(size)
      const reference = Buffer.concat([nonce, chacha20poly1305(key, nonce, aad).encrypt(plain)])
      for (const a of impls) {
        const sealed = a.seal(key, nonce, plain, aad)
        expect(Buffer.from(sealed).equals(reference)).toBe(true)
        for (const b of impls) expect(Buffer.from(b.open(key, sealed, aad)).equals(plain)).toBe(true)
      }
    }
  })

  it('refuses a changed byte anywhere (nonce, ciphertext, tag, associated data) or another key', () => {
    const key = randomBytes(32)
    const aad = randomBytes(40)
    const plain = randomBytes(50)
    for (const impl of Object.values(implementations())) {
      const sealed = impl.seal(key, randomBytes(NONCE_BYTES), plain, aad)
      for (let i = 0; i < sealed.byteLength; i++) {
        const bad = Uint8Array.from(sealed)
        bad[i] = (bad[i] as number) ^ 0x01
        expect(() => impl.open(key, bad, aad)).toThrow(MalformedFrameError)
      }
      const badAad = Uint8Array.from(aad)
      badAad[0] = (badAad[0] as number) ^ 0x80
      expect(() => impl.open(key, sealed, badAad)).toThrow(MalformedFrameError)
      expect(() => impl.open(randomBytes(32), sealed, aad)).toThrow(MalformedFrameError)
    }
  })

  it('checks sizes before the binding sees them: key, nonce, a ciphertext shorter than nonce and tag', () => {
    const key = randomBytes(32)
    expect(() => sealWith(randomBytes(31), randomBytes(NONCE_BYTES), randomBytes(4), new Uint8Array())).toThrow(RangeError)
    expect(() => sealWith(key, randomBytes(8), randomBytes(4), new Uint8Array())).toThrow(RangeError)
    expect(() => openWith(randomBytes(33), randomBytes(40), new Uint8Array())).toThrow(RangeError)
    expect(() => openWith(key, randomBytes(NONCE_BYTES + TAG_BYTES - 1), new Uint8Array())).toThrow(MalformedFrameError)
    // the shortest ciphertext, an empty plaintext, round-trips
    const empty = sealWith(key, randomBytes(NONCE_BYTES), new Uint8Array(), new Uint8Array())
    expect(empty.byteLength).toBe(NONCE_BYTES + TAG_BYTES)
    expect(openWith(key, empty, new Uint8Array()).byteLength).toBe(0)
  })

  it('Noise messages: the library’s cipher and ours read each other, from a byte list too, and decrypt in place', () => {
    const impl = aeadImpl()
    expect(nativeChaChaPoly() != null).toBe(impl === 'libsodium')
    for (const size of [0, 1, 100, 1199, 1200, 65_519]) {
      const k = randomBytes(32)
      const nonce = randomBytes(NONCE_BYTES)
      const ad = randomBytes(32)
      const plain = randomBytes(size)
      const ours = Buffer.from(keptKeyCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k).subarray())
      expect(ours.equals(Buffer.from(chacha20poly1305(k, nonce, ad).encrypt(plain)))).toBe(true)
      const list = new Uint8ArrayList(plain.subarray(0, size >> 1), plain.subarray(size >> 1))
      expect(
        Buffer.from(
          keptKeyCrypto
            .chaCha20Poly1305Encrypt(list as unknown as Parameters<typeof keptKeyCrypto.chaCha20Poly1305Encrypt>[0], nonce, ad, k)
            .subarray()
        ).equals(ours)
      ).toBe(true)
      const theirs = Buffer.from(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k).subarray())
      expect(theirs.equals(ours)).toBe(true)
      expect(Buffer.from(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k).subarray()).equals(plain)).toBe(true)
      // as Noise calls it: the plaintext into the ciphertext's own bytes
      const frame = Uint8Array.from(ours)
      const out = keptKeyCrypto.chaCha20Poly1305Decrypt(frame, nonce, ad, k, frame.subarray(0, size))
      expect(Buffer.from(out.subarray()).equals(plain)).toBe(true)
      const bad = Uint8Array.from(ours)
      bad[bad.byteLength - 1] = (bad[bad.byteLength - 1] as number) ^ 1
      expect(() => keptKeyCrypto.chaCha20Poly1305Decrypt(bad, nonce, ad, k)).toThrow()
    }
  })

  it('XChaCha20-Poly1305 (presence bodies) gives noble’s bytes, opens noble’s, and refuses any changed byte', () => {
    for (const size of [0, 1, 200, 1500]) {
      const key = randomBytes(32)
      const nonce = randomBytes(XNONCE_BYTES)
      const aad = randomBytes(32)
      const plain = randomBytes(size)
      const reference = Buffer.concat([nonce, xchacha20poly1305(key, nonce, aad).encrypt(plain)])
      const sealed = xSealWith(key, nonce, plain, aad)
      expect(Buffer.from(sealed).equals(reference)).toBe(true)
      expect(Buffer.from(xOpenWith(key, reference, aad)).equals(plain)).toBe(true)
      for (let i = 0; i < sealed.byteLength; i += 7) {
        const bad = Uint8Array.from(sealed)
        bad[i] = (bad[i] as number) ^ 0x10
        expect(() => xOpenWith(key, bad, aad)).toThrow(MalformedFrameError)
      }
      expect(() => xOpenWith(key, sealed, randomBytes(32))).toThrow(MalformedFrameError)
    }
    expect(() => xSealWith(randomBytes(32), randomBytes(12), new Uint8Array(1), new Uint8Array())).toThrow(RangeError)
    expect(() => xOpenWith(randomBytes(32), randomBytes(XNONCE_BYTES + TAG_BYTES - 1), new Uint8Array())).toThrow(MalformedFrameError)
  })
})
