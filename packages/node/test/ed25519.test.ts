import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it, vi } from 'vitest'
import { aeadImpl, nativeVerify } from '../src/crypto/aead.js'
import { SMALL_ORDER, strictEd25519, verifyRaw } from '../src/identity/keys.js'
import { gater } from '../src/transport/index.js'

const SPKI = Buffer.from('302a300506032b6570032100', 'hex')
const openssl = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean =>
  verify(null, msg, createPublicKey({ key: Buffer.concat([SPKI, pk]), format: 'der', type: 'spki' }), sig)
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n
const le = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse()

/** libsodium's check, loading the binding now (the test machine has its prebuild) */
function sodium(): NonNullable<ReturnType<typeof nativeVerify>> {
  expect(aeadImpl()).toBe('libsodium')
  const v = nativeVerify()
  if (v == null) throw new Error('no libsodium ed25519 check')
  return v
}

function keyPair(): { pk: Buffer; sk: ReturnType<typeof generateKeyPairSync>['privateKey'] } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return { pk: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32), sk: privateKey }
}

describe('ed25519 signature checks', () => {
  it('list as small-order every point of the 8-torsion subgroup (sign bit aside) and the non-canonical 0 and 1', () => {
    const T = ed25519.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05')
    const torsion = new Set<string>()
    let q = ed25519.Point.ZERO
    for (let k = 0; k < 8; k++) {
      const b = Buffer.from(q.toBytes())
      b[31] = (b[31] as number) & 0x7f
      torsion.add(b.toString('hex'))
      q = q.add(T)
    }
    expect(q.equals(ed25519.Point.ZERO)).toBe(true) // T has order 8: its multiples are the whole subgroup
    const p = 2n ** 255n - 19n
    const listed = SMALL_ORDER.map(b => b.toString('hex'))
    expect(new Set(listed)).toEqual(new Set([...torsion, le(p).toString('hex'), le(p + 1n).toString('hex')]))
  })

  it("refuse a small-order key's forgery, which node:crypto alone takes", async () => {
    // the identity as key: R = [S]B satisfies RFC 8032's equation for every message
    const pk = Buffer.alloc(32)
    pk[0] = 1
    const sig = Buffer.concat([Buffer.from(ed25519.Point.BASE.toBytes()), le(1n)])
    const msg = Buffer.from('any update at all')
    expect(openssl(pk, msg, sig)).toBe(true)
    expect(sodium()(sig, msg, pk)).toBe(false)
    expect(strictEd25519(pk, sig)).toBe(false)
    expect(await verifyRaw(pk, msg, sig)).toBe(false)
  })

  it('refuse that forgery with node:crypto alone too (no binding: CLAUDEMESH_AEAD=node)', async () => {
    vi.stubEnv('CLAUDEMESH_AEAD', 'node')
    vi.resetModules()
    try {
      const aead = await import('../src/crypto/aead.js')
      const keys = await import('../src/identity/keys.js')
      expect(aead.aeadImpl()).toBe('node:crypto')
      expect(aead.nativeVerify()).toBeNull()
      const pk = Buffer.alloc(32)
      pk[0] = 1
      const sig = Buffer.concat([Buffer.from(ed25519.Point.BASE.toBytes()), le(1n)])
      expect(await keys.verifyRaw(pk, Buffer.from('any update at all'), sig)).toBe(false)
      const { pk: good, sk } = keyPair()
      const msg = randomBytes(64)
      expect(await keys.verifyRaw(good, msg, sign(null, msg, sk))).toBe(true)
    } finally {
      vi.unstubAllEnvs()
      vi.resetModules()
    }
  })

  it('leave no connection to or from a PeerId whose key is of small order (Noise takes its forgeries)', async () => {
    const g = gater(() => false)
    // the connection is not read: the verdict is the peer's
    const conn = {} as Parameters<NonNullable<typeof g.denyInboundEncryptedConnection>>[1]
    const weak = Buffer.alloc(32)
    weak[0] = 1
    for (const raw of [weak, SMALL_ORDER[2] as Buffer, SMALL_ORDER[6] as Buffer]) {
      const peer = peerIdFromPublicKey(publicKeyFromRaw(raw))
      expect(await g.denyDialPeer?.(peer)).toBe(true)
      expect(await g.denyInboundEncryptedConnection?.(peer, conn)).toBe(true)
      expect(await g.denyOutboundEncryptedConnection?.(peer, conn)).toBe(true)
    }
    const honest = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    expect(await g.denyInboundEncryptedConnection?.(honest, conn)).toBe(false)
    expect(await gater(p => p === honest.toString()).denyInboundEncryptedConnection?.(honest, conn)).toBe(true)
  })

  it('refuse S at or past the group order, as both implementations do', async () => {
    const { pk, sk } = keyPair()
    const msg = randomBytes(100)
    const sig = sign(null, msg, sk)
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`)
    const bent = Buffer.concat([sig.subarray(0, 32), le(s + ORDER)])
    expect(openssl(pk, msg, bent)).toBe(false)
    expect(sodium()(bent, msg, pk)).toBe(false)
    expect(strictEd25519(pk, bent)).toBe(false)
    expect(await verifyRaw(pk, msg, bent)).toBe(false)
  })

  it('take the same signatures with libsodium and with node:crypto', async () => {
    const check = sodium()
    for (let i = 0; i < 50; i++) {
      const { pk, sk } = keyPair()
      const msg = randomBytes(i * 13)
      const sig = sign(null, msg, sk)
      const cases: Array<[Uint8Array, Uint8Array, Uint8Array]> = [[pk, msg, sig]]
      const flipped = (b: Uint8Array): Buffer => {
        const c = Buffer.from(b)
        const at = i % c.byteLength
        c[at] = (c[at] as number) ^ (1 << (i % 8))
        return c
      }
      cases.push([flipped(pk), msg, sig], [pk, msg, flipped(sig)])
      if (msg.byteLength > 0) cases.push([pk, flipped(msg), sig])
      for (const [k, m, s] of cases) {
        let want: boolean
        try {
          want = strictEd25519(k, s) && openssl(k, m, s)
        } catch {
          want = false // a key that does not decode
        }
        expect(check(s, m, k)).toBe(want)
        expect(await verifyRaw(k, m, s)).toBe(want)
      }
      expect(await verifyRaw(pk, msg, sig)).toBe(true)
    }
  })
})
