/**
 * Noise's X25519 with the keys kept as node:crypto KeyObjects. The library's default provider
 * re-imports both keys of every Diffie-Hellman from DER (PKCS#8 for the private key, SPKI for
 * the public one): OpenSSL 3's DER decoders cost ~0.4 ms and ~0.1 ms, against ~0.04 ms for the
 * DH itself, and a handshake does 3 DHs on each end and exports a new ephemeral key to DER.
 * Here a key pair we generate keeps its private KeyObject (our static key and each ephemeral
 * key), and a remote public key is imported as a raw JWK (`x`), which skips the decoder.
 * Same curve, same OpenSSL derive (which refuses an all-zero shared secret), same transcript:
 * only the key import changes. Hashing and HKDF are the library's.
 *
 * ChaCha20-Poly1305 below 16 KiB is libsodium's where crypto/aead.ts loads it (the envelopes'
 * cipher), one call per message: the library takes AssemblyScript's below 1200 bytes and
 * builds a node:crypto Cipheriv above, 2–2.5x the time up to 8 KiB (a message is a turn's
 * yamux frames, noise-batch.ts). From 16 KiB (bulk: files) OpenSSL's is as fast or faster,
 * and stays. The same function: a peer on either implementation reads the other.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { nativeChaChaPoly } from '../crypto/aead.js'

type ICryptoInterface = typeof defaultCrypto
type KeyPair = ReturnType<ICryptoInterface['generateX25519KeyPair']>
/** a key as noise hands it over: bytes, or a list of byte chunks (its uint8arraylist) */
type Bytes = Parameters<ICryptoInterface['generateX25519SharedKey']>[0]

/** the private KeyObject of each private key's bytes we handed out (or imported once) */
const privateObjects = new WeakMap<Uint8Array, KeyObject>()

function b64url(bytes: Bytes): string {
  const b = bytes.subarray()
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
}

function keyPairOf(privateKey: KeyObject): KeyPair {
  const jwk = privateKey.export({ format: 'jwk' })
  if (jwk.d == null || jwk.x == null) throw new Error('x25519 key export without d or x')
  const pair = { publicKey: new Uint8Array(Buffer.from(jwk.x, 'base64url')), privateKey: new Uint8Array(Buffer.from(jwk.d, 'base64url')) }
  privateObjects.set(pair.privateKey, privateKey)
  return pair
}

function privateObject(privateKey: Bytes): KeyObject {
  let obj = privateKey instanceof Uint8Array ? privateObjects.get(privateKey) : undefined
  if (obj == null) {
    if (privateKey.byteLength !== 32) throw new Error('x25519 private key must be 32 bytes')
    // the JWK wants an `x` but node derives the public key from `d`
    obj = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(privateKey), x: '' }, format: 'jwk' })
    if (privateKey instanceof Uint8Array) privateObjects.set(privateKey, obj)
  }
  return obj
}

const whole = (b: Bytes): Uint8Array => (b instanceof Uint8Array ? b : b.subarray())
/** from here OpenSSL's ChaCha20 (AVX2) outruns libsodium's (encrypt and decrypt of 16/32/64 KiB: 27.6/38.8/85 µs against 26.5/48/118) */
const SODIUM_BELOW = 16 * 1024

export const keptKeyCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    const s = plaintext.byteLength < SODIUM_BELOW ? nativeChaChaPoly() : null
    return s != null ? s.encrypt(whole(plaintext), nonce, ad, k) : defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    const s = ciphertext.byteLength < SODIUM_BELOW ? nativeChaChaPoly() : null
    return s != null
      ? s.decrypt(whole(ciphertext), nonce, ad, k, dst)
      : defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  },
  generateX25519KeyPair(): KeyPair {
    return keyPairOf(generateKeyPairSync('x25519').privateKey)
  },
  generateX25519KeyPairFromSeed(seed: Uint8Array): KeyPair {
    return keyPairOf(privateObject(seed))
  },
  generateX25519SharedKey(privateKey: Bytes, publicKey: Bytes): Uint8Array {
    if (publicKey.byteLength !== 32) throw new Error('x25519 public key must be 32 bytes')
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(publicKey) }, format: 'jwk' })
    return diffieHellman({ privateKey: privateObject(privateKey), publicKey: pub })
  }
}
