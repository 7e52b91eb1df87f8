/**
 * Ed25519 helpers over @libp2p/crypto (node:crypto underneath: ~0.3 ms sign+verify, against
 * ~2.5 ms for a pure-JS signer). A session's libp2p PeerId *is* its ed25519 public key.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { InvalidKeyFileError } from '../errors.js'

export type { Ed25519PrivateKey }

export async function newEd25519Key (): Promise<Ed25519PrivateKey> {
  return generateKeyPair('Ed25519')
}

export function encodePrivateKey (key: Ed25519PrivateKey): string {
  return Buffer.from(privateKeyToProtobuf(key)).toString('base64')
}

export function decodePrivateKey (b64: string, what: string): Ed25519PrivateKey {
  let key
  try {
    key = privateKeyFromProtobuf(Buffer.from(b64, 'base64'))
  } catch (err) {
    throw new InvalidKeyFileError(`${what}: the private key does not decode (${(err as Error).message})`)
  }
  if (key.type !== 'Ed25519') throw new InvalidKeyFileError(`${what}: expected an Ed25519 key, found ${key.type}`)
  return key
}

export async function sign (key: Ed25519PrivateKey, data: Uint8Array): Promise<Uint8Array> {
  return key.sign(data)
}

/** Verify an ed25519 signature by a raw 32-byte public key; false on any malformed input. */
export async function verifyRaw (publicKey: Uint8Array, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (publicKey.byteLength !== 32 || sig.byteLength !== 64) return false
  try {
    return await publicKeyFromRaw(publicKey).verify(data, sig)
  } catch {
    return false
  }
}

/** The raw 32-byte ed25519 public key inside an Ed25519 PeerId, or undefined for other ids. */
export function publicKeyOfPeer (peer: PeerId | string): Uint8Array | undefined {
  try {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
    if (id.type !== 'Ed25519') return undefined
    return id.publicKey.raw
  } catch {
    return undefined
  }
}

export function peerIdOfRaw (publicKey: Uint8Array): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey))
}

const idCache = new Map<string, string>()

/** The PeerId string of a raw ed25519 key, cached: every inbound message needs it. */
export function peerIdStringOfRaw (publicKey: Uint8Array): string {
  const k = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64')
  let id = idCache.get(k)
  if (id == null) {
    id = peerIdOfRaw(publicKey).toString()
    if (idCache.size > 10_000) idCache.clear()
    idCache.set(k, id)
  }
  return id
}
