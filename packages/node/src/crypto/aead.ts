/**
 * The AEADs every envelope and record is sealed with: ChaCha20-Poly1305 with a 96-bit nonce
 * (RFC 8439; DM, group, state and file envelopes, SPEC.md §8.2, `nonce ‖ ciphertext ‖ tag`;
 * and Noise's messages, `nativeChaChaPoly`) and XChaCha20-Poly1305 (presence bodies, §6.1).
 *
 * Two implementations of the same functions. node:crypto builds a Cipheriv object per
 * message (an OpenSSL context, a stream, a native handle the GC finalises): ~4–11 µs alone and
 * much more under a burst, where an envelope's seal and open were ~9 % of the CPU
 * (bench/load.mjs 100x1000); noble's XChaCha20 in JS takes ~30 µs to open a presence body.
 * libsodium's one-shot calls through sodium-native's prebuilt binding take ~1–4 µs and leave
 * no object behind. The binding is loaded at the first envelope, or a second after the first
 * Noise message or presence body (`LOAD_DELAY_MS`; ~3 ms,
 * `process.dlopen` of the prebuild: sodium-native's JavaScript wrapper costs ~27 ms to load) and only if it agrees
 * with node:crypto and noble on known answers and refuses forged tags; otherwise, or where no
 * prebuild exists, node:crypto and noble do the work. The bytes never differ.
 *
 * Its ed25519 check serves identity/keys.ts the same way (`nativeVerify`).
 *
 * The binding checks its arguments' sizes with C asserts only: every call here passes a
 * 32-byte key, a nonce of its cipher's size and an output of the exact size, checked before
 * the call.
 */
import { createCipheriv, createDecipheriv, sign as cryptoSign, generateKeyPairSync } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import { MalformedFrameError } from '../errors.js'

export const KEY_BYTES = 32
export const NONCE_BYTES = 12
export const TAG_BYTES = 16

export const XNONCE_BYTES = 24

type Encrypt = (c: Uint8Array, m: Uint8Array, ad: Uint8Array, npub: Uint8Array, k: Uint8Array) => number
type Decrypt = (m: Uint8Array, c: Uint8Array, ad: Uint8Array, npub: Uint8Array, k: Uint8Array) => number

interface Binding {
  crypto_aead_chacha20poly1305_ietf_encrypt: Encrypt
  crypto_aead_chacha20poly1305_ietf_decrypt: Decrypt
  crypto_aead_xchacha20poly1305_ietf_encrypt: Encrypt
  crypto_aead_xchacha20poly1305_ietf_decrypt: Decrypt
  /** XSalsa20 (libsodium's crypto_stream) with its position in `state`: sodium-native's own wrapper */
  crypto_stream_xor_init?: (state: Uint8Array, nonce: Uint8Array, key: Uint8Array) => void
  crypto_stream_xor_update?: (state: Uint8Array, out: Uint8Array, input: Uint8Array) => void
  crypto_stream_xor_STATEBYTES?: number
  /** ed25519 verification, each argument as (buffer, offset, length): sodium-native's own wrapper */
  crypto_sign_verify_detached?: (...args: Array<ArrayBufferLike | number>) => boolean
}
const FUNCTIONS = [
  'crypto_aead_chacha20poly1305_ietf_encrypt',
  'crypto_aead_chacha20poly1305_ietf_decrypt',
  'crypto_aead_xchacha20poly1305_ietf_encrypt',
  'crypto_aead_xchacha20poly1305_ietf_decrypt'
] as const

/** The binding and the implementations made of it, once loaded */
interface Sodium {
  binding: Binding
  aead: Aead
  chachaPoly: ChaChaPoly
  /** libsodium's ed25519 check, where it agrees with node:crypto (sodiumVerify) */
  verify: Verify | null
}
/** null where the binding cannot load; undefined until it has been tried */
let sodium: Sodium | null | undefined
let loading: ReturnType<typeof setTimeout> | undefined
/**
 * A Noise message or a presence body schedules the load this long later, the fallbacks
 * serving meanwhile: a daemon's first handshake and record come while it joins, and the load
 * (~5 ms of CPU with its checks) would delay "connected" by as much (bench/foundation.mjs). An
 * envelope (a DM, a group message, a state update) loads it at once: a burst right after the
 * join is where it pays (bench/load.mjs 10x100, whose burst starts ~0.8 s after its nodes).
 */
const LOAD_DELAY_MS = 1_000

/** Which implementation runs, loading the binding now if not tried yet: 'node:crypto' stands for node:crypto and noble. */
export function aeadImpl(): 'libsodium' | 'node:crypto' {
  return loadNow() != null ? 'libsodium' : 'node:crypto'
}

/** CLAUDEMESH_AEAD=node keeps node:crypto and noble (an A/B, or a binding suspected of a fault). */
function loadNow(): Sodium | null {
  if (sodium === undefined) {
    clearTimeout(loading)
    const b = process.env.CLAUDEMESH_AEAD === 'node' ? null : load()
    sodium = b != null ? { binding: b, aead: sodiumAead(b), chachaPoly: sodiumChaChaPoly(b), verify: sodiumVerify(b) } : null
    if (b != null) offerStream(b)
  }
  return sodium
}

/** libsodium's if loaded, else null (and its load scheduled): for the join's path. */
function native(): Sodium | null {
  if (sodium !== undefined) return sodium
  loading ??= setTimeout(loadNow, LOAD_DELAY_MS).unref()
  return null
}

function load(): Binding | null {
  try {
    const require = createRequire(import.meta.url)
    const dir = dirname(require.resolve('sodium-native/package.json'))
    const mod = { exports: {} as Partial<Binding> }
    process.dlopen(mod, join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node'))
    const b = mod.exports
    if (FUNCTIONS.some(f => typeof b[f] !== 'function')) return null
    return agrees(b as Binding) && xAgrees(b as Binding) ? (b as Binding) : null
  } catch {
    return null
  }
}

/**
 * The pnet cipher (packages/xsalsa20, every byte of every connection) runs in libsodium too
 * once the binding's XSalsa20 gives noble's keystream across calls that split its blocks. It
 * reads the process-wide slot below; nothing here depends on that package.
 */
const XSALSA20_SLOT = Symbol.for('claudemesh.xsalsa20.native')

function offerStream(b: Binding): void {
  // CLAUDEMESH_XSALSA20=js keeps the pnet cipher in JS (an A/B, or a binding suspected of a fault)
  if (process.env.CLAUDEMESH_XSALSA20 === 'js') return
  const { crypto_stream_xor_init: init, crypto_stream_xor_update: update, crypto_stream_xor_STATEBYTES: stateBytes } = b
  if (typeof init !== 'function' || typeof update !== 'function' || typeof stateBytes !== 'number' || stateBytes < 1) return
  try {
    const key = Uint8Array.from({ length: KEY_BYTES }, (_, i) => 0x21 + i * 3)
    const nonce = Uint8Array.from({ length: XNONCE_BYTES }, (_, i) => 0x90 - i)
    const plain = Uint8Array.from({ length: 200 }, (_, i) => i * 5)
    const want = xsalsa20(key, nonce, plain)
    const state = new Uint8Array(stateBytes)
    init(state, nonce, key)
    const got = new Uint8Array(plain.byteLength)
    // a byte, most of a block, across a block boundary, the rest
    for (const [from, to] of [
      [0, 1],
      [1, 60],
      [60, 130],
      [130, 200]
    ] as const)
      update(state, got.subarray(from, to), plain.subarray(from, to))
    if (!Buffer.from(got).equals(Buffer.from(want))) return
    ;(globalThis as Record<symbol, unknown>)[XSALSA20_SLOT] = { stateBytes, init, update }
  } catch {}
}

/** An ed25519 signature check: `sig` (64 bytes) over `msg` by the raw public key `pk` (32 bytes). */
export type Verify = (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean

/**
 * libsodium's ed25519 check (~55-85 µs against node:crypto's ~120-150 µs: every member checks
 * every member's presence record, N² at a mesh's start and each heartbeat round, and every group
 * message and state update), if it takes what node:crypto signed and refuses a flipped bit.
 * libsodium also refuses a few signatures RFC 8032 takes (small-order keys and R, a
 * non-canonical key): identity/keys.ts refuses those on every path, so both take the same ones.
 */
function sodiumVerify(b: Binding): Verify | null {
  const f = b.crypto_sign_verify_detached
  if (typeof f !== 'function') return null
  const verify: Verify = (sig, msg, pk) =>
    f(sig.buffer, sig.byteOffset, sig.byteLength, msg.buffer, msg.byteOffset, msg.byteLength, pk.buffer, pk.byteOffset, pk.byteLength)
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const pk = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
    const msg = Uint8Array.from({ length: 100 }, (_, i) => i)
    const sig = cryptoSign(null, msg, privateKey)
    if (verify(sig, msg, pk) !== true) return null
    sig[5] = (sig[5] as number) ^ 1
    return verify(sig, msg, pk) === false ? verify : null
  } catch {
    return null
  }
}

/** libsodium's ed25519 check once the binding is loaded (its load scheduled otherwise); null meanwhile, or without it. */
export function nativeVerify(): Verify | null {
  return native()?.verify ?? null
}

/** The binding seals as node:crypto does, opens what node:crypto sealed, and refuses a flipped tag bit. */
function agrees(b: Binding): boolean {
  const key = Uint8Array.from({ length: KEY_BYTES }, (_, i) => 0x80 + i)
  const nonce = Uint8Array.from([7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47])
  const aad = Uint8Array.from([0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7])
  const plain = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
  )
  const theirs = nodeSeal(key, nonce, plain, aad)
  const ours = new Uint8Array(NONCE_BYTES + plain.byteLength + TAG_BYTES)
  ours.set(nonce)
  if (b.crypto_aead_chacha20poly1305_ietf_encrypt(ours.subarray(NONCE_BYTES), plain, aad, nonce, key) !== plain.byteLength + TAG_BYTES)
    return false
  if (!Buffer.from(ours).equals(theirs)) return false
  const back = new Uint8Array(plain.byteLength)
  if (b.crypto_aead_chacha20poly1305_ietf_decrypt(back, theirs.subarray(NONCE_BYTES), aad, nonce, key) !== plain.byteLength) return false
  if (!Buffer.from(back).equals(plain)) return false
  const forged = Uint8Array.from(theirs)
  forged[forged.byteLength - 1] = (forged[forged.byteLength - 1] as number) ^ 1
  return b.crypto_aead_chacha20poly1305_ietf_decrypt(back, forged.subarray(NONCE_BYTES), aad, nonce, key) !== plain.byteLength
}

/** The binding's XChaCha20-Poly1305 seals as noble's does and refuses a flipped tag bit. */
function xAgrees(b: Binding): boolean {
  const key = Uint8Array.from({ length: KEY_BYTES }, (_, i) => i * 7)
  const nonce = Uint8Array.from({ length: XNONCE_BYTES }, (_, i) => 0x40 + i)
  const aad = Uint8Array.from({ length: 32 }, (_, i) => 255 - i)
  const plain = Uint8Array.from({ length: 100 }, (_, i) => i)
  const theirs = xchacha20poly1305(key, nonce, aad).encrypt(plain)
  const ours = new Uint8Array(plain.byteLength + TAG_BYTES)
  if (b.crypto_aead_xchacha20poly1305_ietf_encrypt(ours, plain, aad, nonce, key) !== ours.byteLength) return false
  if (!Buffer.from(ours).equals(Buffer.from(theirs))) return false
  ours[0] = (ours[0] as number) ^ 1
  return b.crypto_aead_xchacha20poly1305_ietf_decrypt(new Uint8Array(plain.byteLength), ours, aad, nonce, key) !== plain.byteLength
}

function nodeSeal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
  c.setAAD(aad, { plaintextLength: plain.byteLength })
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()])
}

function checkKey(key: Uint8Array): void {
  if (key.byteLength !== KEY_BYTES) throw new RangeError(`a ChaCha20-Poly1305 key is ${KEY_BYTES} bytes, not ${key.byteLength}`)
}

const tampered = (): MalformedFrameError => new MalformedFrameError('ciphertext does not authenticate (tampered, or not for this key)')

export interface Aead {
  /** `nonce ‖ ChaCha20-Poly1305(key, nonce, plain, aad) ‖ tag`; `nonce` is NONCE_BYTES, fresh for the key */
  seal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array
  /** the plaintext of `nonce ‖ ciphertext ‖ tag`; MalformedFrameError when it does not authenticate */
  open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array
}

const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

const nodeAead: Aead = {
  seal: (key, nonce, plain, aad) => view(nodeSeal(key, nonce, plain, aad)),
  open(key, sealed, aad) {
    const d = createDecipheriv('chacha20-poly1305', key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES })
    d.setAAD(aad, { plaintextLength: sealed.byteLength - NONCE_BYTES - TAG_BYTES })
    d.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES))
    try {
      return view(Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.byteLength - TAG_BYTES)), d.final()]))
    } catch {
      throw tampered()
    }
  }
}

/** `f` (a binding's encrypt) into `out`, sized `ciphertext ‖ tag` by the caller. */
function encryptInto(f: Encrypt, out: Uint8Array, plain: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): void {
  if (f(out, plain, ad, nonce, key) !== out.byteLength) throw new Error('libsodium sealing failed')
}

/** `f` (a binding's decrypt) into `out`, sized for the plaintext; a failure is a negative status, which the binding returns as an unsigned 64-bit number. */
function decryptInto(f: Decrypt, out: Uint8Array, sealed: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): void {
  if (f(out, sealed, ad, nonce, key) !== out.byteLength) throw tampered()
}

const sodiumAead = (b: Binding): Aead => ({
  seal(key, nonce, plain, aad) {
    const out = Buffer.allocUnsafe(NONCE_BYTES + plain.byteLength + TAG_BYTES)
    out.set(nonce)
    encryptInto(b.crypto_aead_chacha20poly1305_ietf_encrypt, out.subarray(NONCE_BYTES), plain, aad, nonce, key)
    return view(out)
  },
  open(key, sealed, aad) {
    const out = Buffer.allocUnsafe(sealed.byteLength - NONCE_BYTES - TAG_BYTES)
    decryptInto(b.crypto_aead_chacha20poly1305_ietf_decrypt, out, sealed.subarray(NONCE_BYTES), aad, sealed.subarray(0, NONCE_BYTES), key)
    return view(out)
  }
})

/** ChaCha20-Poly1305 as Noise frames it (`ciphertext ‖ tag`, the nonce its counter): transport/noise-crypto.ts. */
export interface ChaChaPoly {
  encrypt(plain: Uint8Array, nonce: Uint8Array, ad: Uint8Array, key: Uint8Array): Uint8Array
  /** into `dst` when it has the plaintext's length (it may be the ciphertext's own bytes: the tag is checked first); throws when it does not authenticate */
  decrypt(sealed: Uint8Array, nonce: Uint8Array, ad: Uint8Array, key: Uint8Array, dst?: Uint8Array): Uint8Array
}

function checkNonce(nonce: Uint8Array): void {
  if (nonce.byteLength !== NONCE_BYTES) throw new RangeError(`a nonce is ${NONCE_BYTES} bytes`)
}

/** libsodium's, or null while the binding is not loaded (the caller keeps its own meanwhile). */
export function nativeChaChaPoly(): ChaChaPoly | null {
  return native()?.chachaPoly ?? null
}

const sodiumChaChaPoly = (b: Binding): ChaChaPoly => ({
  encrypt(plain, nonce, ad, key) {
    checkKey(key)
    checkNonce(nonce)
    const out = Buffer.allocUnsafe(plain.byteLength + TAG_BYTES)
    encryptInto(b.crypto_aead_chacha20poly1305_ietf_encrypt, out, plain, ad, nonce, key)
    return view(out)
  },
  decrypt(sealed, nonce, ad, key, dst) {
    checkKey(key)
    checkNonce(nonce)
    if (sealed.byteLength < TAG_BYTES) throw tampered()
    const n = sealed.byteLength - TAG_BYTES
    const out = dst?.byteLength === n ? dst : Buffer.allocUnsafe(n)
    decryptInto(b.crypto_aead_chacha20poly1305_ietf_decrypt, out, sealed, ad, nonce, key)
    return out
  }
})

/** Both implementations where the binding loads (tests: each opens what the other sealed). */
export function implementations(): Partial<Record<'libsodium' | 'node:crypto', Aead>> {
  const lib = loadNow()
  return { 'node:crypto': nodeAead, ...(lib != null ? { libsodium: lib.aead } : {}) }
}

export function sealWith(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array {
  checkKey(key)
  checkNonce(nonce)
  return (loadNow()?.aead ?? nodeAead).seal(key, nonce, plain, aad)
}

export function openWith(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  checkKey(key)
  if (sealed.byteLength < NONCE_BYTES + TAG_BYTES) throw new MalformedFrameError('ciphertext too short')
  return (loadNow()?.aead ?? nodeAead).open(key, sealed, aad)
}

/**
 * XChaCha20-Poly1305 (24-byte nonce), the presence body's cipher (SPEC.md §6.1):
 * `nonce ‖ ciphertext ‖ tag`. libsodium's where the binding loads, noble's otherwise (~30 µs
 * to open a 220-byte body in JS, ~4 µs here: every member opens every member's record, N² a
 * heartbeat round and at a mesh's start).
 */
export function xSealWith(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array {
  checkKey(key)
  if (nonce.byteLength !== XNONCE_BYTES) throw new RangeError(`an XChaCha20 nonce is ${XNONCE_BYTES} bytes`)
  const out = new Uint8Array(XNONCE_BYTES + plain.byteLength + TAG_BYTES)
  out.set(nonce)
  const b = native()?.binding
  if (b == null) out.set(xchacha20poly1305(key, nonce, aad).encrypt(plain), XNONCE_BYTES)
  else encryptInto(b.crypto_aead_xchacha20poly1305_ietf_encrypt, out.subarray(XNONCE_BYTES), plain, aad, nonce, key)
  return out
}

/** The plaintext of `nonce(24) ‖ ciphertext ‖ tag`; MalformedFrameError when it does not authenticate. */
export function xOpenWith(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  checkKey(key)
  if (sealed.byteLength < XNONCE_BYTES + TAG_BYTES) throw new MalformedFrameError('ciphertext too short')
  const nonce = sealed.subarray(0, XNONCE_BYTES)
  const b = native()?.binding
  if (b == null) {
    try {
      return xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(XNONCE_BYTES))
    } catch {
      throw tampered()
    }
  }
  const out = new Uint8Array(sealed.byteLength - XNONCE_BYTES - TAG_BYTES)
  decryptInto(b.crypto_aead_xchacha20poly1305_ietf_decrypt, out, sealed.subarray(XNONCE_BYTES), aad, nonce, key)
  return out
}
