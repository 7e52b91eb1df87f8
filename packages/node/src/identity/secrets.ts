/**
 * Everything a mesh needs is derived from two random 32-byte secrets (SPEC.md §3):
 * - the *network secret* keys libp2p's private-network protector. Members and relays hold it.
 * - the *content secret* keys presence bodies and group traffic. Only members hold it, so a
 *   relay that forwards and stores our frames never holds a key that opens them.
 */
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'

const enc = new TextEncoder()

export function deriveKey(secret: Uint8Array, meshId: string, label: string): Uint8Array {
  return hkdf(sha256, secret, enc.encode(`claudemesh/${meshId}`), enc.encode(label), 32)
}

/** The 95-byte swarm key file that @libp2p/pnet expects, derived from the network secret. */
export function swarmKey(networkSecret: Uint8Array, meshId: string): Uint8Array {
  const psk = deriveKey(networkSecret, meshId, 'pnet/v1')
  return enc.encode(`/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(psk).toString('hex')}`)
}

export function presenceKey(contentSecret: Uint8Array, meshId: string): Uint8Array {
  return deriveKey(contentSecret, meshId, 'presence/v1')
}
