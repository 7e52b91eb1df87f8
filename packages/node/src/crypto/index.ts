/**
 * DM and group cryptography (SPEC.md §8.2, §9.2).
 *
 * DMs: each pair of session keys shares one key, derived once and cached:
 *   k = HKDF-SHA256(ikm = X25519(mont(a), mont(B)), salt = dmKey(mesh content secret),
 *                   info = "claudemesh/dm/v1" || min(A,B) || max(A,B))
 * where mont() maps ed25519 keys to x25519. Each envelope is ChaCha20-Poly1305 under k with a
 * random 96-bit nonce; the header (sender, recipient, id, time) is the associated data. Only
 * the two holders of the pair's keys, who are also mesh members, can make or open it, so
 * opening it proves the sender (as with NaCl's crypto_box) at ~2 µs instead of a signature.
 *
 * Groups: one ChaCha20-Poly1305 key per group derived from the content secret; every group
 * envelope is also signed by the sender's ed25519 key, since all members hold the group key.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject, randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { concat } from 'uint8arrays/concat'
import { MalformedFrameError } from '../errors.js'
import { deriveKey } from '../identity/secrets.js'
import { NONCE_BYTES, openWith, sealWith } from './aead.js'

/** HKDF labels under the content secret (SPEC.md §8.2, §9.2). */
const DM_KEY_LABEL = 'dm/v1'
const GROUP_KEY_LABEL = 'group/v1'

/** Random bytes drawn from a pool: one syscall per 64 KiB instead of two per message. */
let pool = Buffer.alloc(0)
let poolAt = 0
function randomView(n: number): Buffer {
  if (poolAt + n > pool.byteLength) {
    pool = randomBytes(64 * 1024)
    poolAt = 0
  }
  poolAt += n
  return pool.subarray(poolAt - n, poolAt)
}

/** `n` random bytes of their own (a view of the pool would keep its 64 KiB alive). */
export const randomSlice = (n: number): Uint8Array => new Uint8Array(randomView(n))

const enc = new TextEncoder()

/** `nonce ‖ ChaCha20-Poly1305 ‖ tag` under a random nonce (aead.ts: the nonce is copied into the output). */
export function seal(key: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array {
  return sealWith(key, randomView(NONCE_BYTES), plain, aad)
}

export const open = openWith

/** DER prefix of a raw X25519 private key (RFC 8410 PKCS#8); made once per node. */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const Fp = ed25519.Point.Fp

/**
 * X(B) = u = (1 + y) / (1 − y) mod p, B's point in Montgomery form (SPEC.md §8.2), straight
 * from the encoded y: ~30 µs, where noble's toMontgomery first decompresses the point (a
 * square root, ~90 µs) only to check it is on the curve. A key that is not on it still gives a
 * u; X25519 is twist-secure, so the pair key from it is one nobody else can compute and the
 * peer's envelopes do not authenticate (`tampered`, as the refused key was).
 */
export function montgomeryU(edPub: Uint8Array): Uint8Array {
  if (edPub.byteLength !== 32) throw new MalformedFrameError('an ed25519 public key is 32 bytes')
  const b = Uint8Array.from(edPub)
  b[31] = (b[31] as number) & 0x7f // the sign of x: not part of u
  const y = Fp.create(Fp.fromBytes(b, true))
  const den = Fp.sub(Fp.ONE, y)
  if (Fp.is0(den)) throw new MalformedFrameError('the identity point has no Montgomery form')
  return Fp.toBytes(Fp.div(Fp.add(Fp.ONE, y), den))
}

/**
 * X25519 through node:crypto (native, ~20× noble's JS, which cost ~1.5 ms a peer: 10k pairs in
 * a 100-node burst). Same function (RFC 7748); an all-zero result (a low-order point) is
 * refused as noble refuses it. The peer's key is imported as a JWK: OpenSSL takes the raw
 * bytes (~12 µs) where a DER import runs its decoder (~90 µs).
 */
export function x25519Shared(secret: KeyObject, peerMont: Uint8Array): Uint8Array {
  let shared: Buffer
  try {
    const x = Buffer.from(peerMont.buffer, peerMont.byteOffset, peerMont.byteLength).toString('base64url')
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' })
    shared = diffieHellman({ privateKey: secret, publicKey })
  } catch {
    // OpenSSL refuses a low-order point itself (its result would be all zero)
    throw new MalformedFrameError('X25519 failed (a low-order point, or not 32 bytes)')
  }
  if (shared.every(b => b === 0)) throw new MalformedFrameError('X25519 gave the all-zero secret (a low-order point)')
  return new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength)
}

export const x25519Secret = (raw: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' })

/** Pairwise DM keys for one session key, cached per peer (one X25519 per pair, ~0.1 ms). */
export class PairKeys {
  private readonly cache = new Map<string, Uint8Array>()
  /** keys derived so far (not found in the cache) */
  readonly stats = { derived: 0 }
  private readonly xSecret: KeyObject
  private readonly salt: Uint8Array

  constructor(
    private readonly selfPub: Uint8Array,
    ed25519Seed: Uint8Array,
    contentSecret: Uint8Array,
    meshId: string
  ) {
    this.xSecret = x25519Secret(ed25519.utils.toMontgomerySecret(ed25519Seed))
    this.salt = deriveKey(contentSecret, meshId, DM_KEY_LABEL)
  }

  /** The key shared with `peerPub` (raw ed25519); throws on a key with no X25519 secret (low order, wrong length). */
  key(peerPub: Uint8Array): Uint8Array {
    const id = Buffer.from(peerPub.buffer, peerPub.byteOffset, peerPub.byteLength).toString('hex')
    let k = this.cache.get(id)
    if (k == null) {
      const shared = x25519Shared(this.xSecret, montgomeryU(peerPub))
      const [lo, hi] =
        Buffer.compare(Buffer.from(this.selfPub), Buffer.from(peerPub)) <= 0 ? [this.selfPub, peerPub] : [peerPub, this.selfPub]
      k = new Uint8Array(hkdfSync('sha256', shared, this.salt, concat([enc.encode('claudemesh/dm/v1'), lo, hi]), 32))
      if (this.cache.size > 10_000) this.cache.clear()
      this.cache.set(id, k)
      this.stats.derived++
    }
    return k
  }
}

export function groupKey(contentSecret: Uint8Array, meshId: string, group: string): Uint8Array {
  return deriveKey(contentSecret, meshId, `${GROUP_KEY_LABEL}/${group}`)
}

/** The gossipsub topic of a group: an HMAC of its name, so a relay never learns group names. */
export function groupTopic(contentSecret: Uint8Array, meshId: string, group: string): string {
  const tag = createHmac('sha256', deriveKey(contentSecret, meshId, 'group-topic/v1'))
    .update(group)
    .digest('hex')
    .slice(0, 32)
  return `/claudemesh/${meshId}/group/${tag}/1`
}
