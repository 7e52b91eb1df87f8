/**
 * The xsalsa20 stream cipher with the API of the `xsalsa20` npm package, which @libp2p/pnet
 * uses to protect every connection. That package keeps all ciphers in one WebAssembly memory:
 * pnet never calls `finalize()`, so each connection leaks a slot, and once the memory grows
 * every other cipher's view of it goes stale. Long-lived nodes crashed after ~9k
 * connections. This one keeps its state in plain JS: a key, a nonce and a byte offset.
 */
import { xsalsa20 as xor } from '@noble/ciphers/salsa.js'

const BLOCK = 64

export default function XSalsa20 (nonce, key) {
  if (nonce == null || nonce.length < 24) throw new Error('nonce must be at least 24 bytes')
  if (key == null || key.length < 32) throw new Error('key must be at least 32 bytes')
  return new Stream(Uint8Array.from(nonce.subarray(0, 24)), Uint8Array.from(key.subarray(0, 32)))
}

XSalsa20.NONCEBYTES = 24
XSalsa20.KEYBYTES = 32

class Stream {
  constructor (nonce, key) {
    this.nonce = nonce
    this.key = key
    this.offset = 0
  }

  /** XOR `input` with the next `input.length` bytes of keystream. */
  update (input, output = new Uint8Array(input.length)) {
    if (input == null) throw new Error('input must be Uint8Array or Buffer')
    if (input.length === 0) return output
    const skip = this.offset % BLOCK
    const padded = new Uint8Array(skip + input.length)
    padded.set(input, skip)
    const out = xor(this.key, this.nonce, padded, undefined, Math.floor(this.offset / BLOCK))
    output.set(out.subarray(skip))
    this.offset += input.length
    return output
  }

  finalize () {}

  final () {}
}
