/**
 * The xsalsa20 stream cipher with the API of the `xsalsa20` npm package, which @libp2p/pnet
 * uses to protect every connection. That package keeps all ciphers in one WebAssembly memory:
 * pnet never calls `finalize()`, so each connection leaks a slot, and once the memory grows
 * every other cipher's view of it goes stale. Long-lived nodes crashed after ~9k
 * connections. This one keeps its state in plain JS.
 *
 * Every byte of every connection passes here, and most writes are small (a yamux header, a
 * DM frame), so the per-call cost is what counts: @noble/ciphers' `xsalsa20` spent ~15 µs a
 * call on its key schedule, checks and copies before the first block. XSalsa20 is Salsa20
 * under the subkey HSalsa20(key, nonce[0..16]) with nonce[16..24]: the subkey (from noble's
 * hsalsa) and the Salsa20 input words are set up once per cipher, each call runs the block
 * function straight into the output, and the keystream block a call ends inside is kept for
 * the next call's first bytes. Byte for byte the same keystream (the package's test).
 *
 * Where libsodium's binding runs (sodium-native's prebuild, loaded and checked against noble
 * by @claudemesh/node's crypto/aead.ts, which puts it in the process-wide slot `NATIVE`), a
 * stream XORs through libsodium's XSalsa20 instead: ~4x faster at 600 bytes, 10x at 4 KiB, a
 * little slower under 100. A stream made before the slot was filled (a node's first
 * connections: the binding loads a second after the join) switches at its next call, its
 * native state brought to the same keystream position first.
 */
import { hsalsa } from '@noble/ciphers/salsa.js'

const BLOCK = 64
/**
 * `{ stateBytes, init(state, nonce, key), update(state, out, input) }`: libsodium's
 * crypto_stream_xor_init/update (XSalsa20, its position kept in `state`), or absent
 */
const NATIVE = Symbol.for('claudemesh.xsalsa20.native')
/** past this many bytes a stream stays in JS: catching a native state up costs ~0.4 ms a MiB */
const MAX_CATCH_UP = 64 * 1024 * 1024
/** "expand 32-byte k" as little-endian words */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])

export default function XSalsa20(nonce, key) {
  if (nonce == null || nonce.length < 24) throw new Error('nonce must be at least 24 bytes')
  if (key == null || key.length < 32) throw new Error('key must be at least 32 bytes')
  return new Stream(nonce.subarray(0, 24), key.subarray(0, 32))
}

XSalsa20.NONCEBYTES = 24
XSalsa20.KEYBYTES = 32

/** little-endian words of `bytes`, whatever the host's byte order */
function words(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Uint32Array(bytes.byteLength >> 2)
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true)
  return out
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
const swap = w => (((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0

class Stream {
  constructor(nonce, key) {
    const sub = new Uint32Array(8)
    hsalsa(SIGMA, words(key), words(nonce.subarray(0, 16)), sub)
    // hsalsa leaves its words in host order: the Salsa20 input wants their values
    if (!LE) for (let i = 0; i < 8; i++) sub[i] = swap(sub[i])
    const n = words(nonce.subarray(16, 24))
    // the Salsa20 input: constants, subkey, nonce, block counter (words 8, 9)
    this.input = new Uint32Array([
      SIGMA[0],
      sub[0],
      sub[1],
      sub[2],
      sub[3],
      SIGMA[1],
      n[0],
      n[1],
      0,
      0,
      SIGMA[2],
      sub[4],
      sub[5],
      sub[6],
      sub[7],
      SIGMA[3]
    ])
    this.offset = 0
    this.nonce = nonce.slice()
    this.key = key.slice()
    /** libsodium's state once this stream runs there (`toNative`); null: it stays in JS */
    this.state = undefined
    this.native = undefined
    /** keystream of the block `offset` is inside of (valid when offset % 64 ≠ 0) */
    this.words = new Uint32Array(16)
    this.bytes = new Uint8Array(this.words.buffer)
  }

  /** XOR `input` with the next `input.length` bytes of keystream. */
  update(input, output) {
    if (input == null) throw new Error('input must be Uint8Array or Buffer')
    if (this.state === undefined && globalThis[NATIVE] != null) this.toNative(globalThis[NATIVE])
    if (this.state != null) return this.nativeUpdate(input, output)
    output ??= new Uint8Array(input.length)
    const n = input.length
    if (n === 0) return output
    const ks = this.bytes
    let i = 0
    let pos = this.offset % BLOCK
    if (pos !== 0) {
      // the rest of the block the last call ended in
      for (; i < n && pos < BLOCK; i++, pos++) output[i] = input[i] ^ ks[pos]
    }
    let block = Math.floor((this.offset + i) / BLOCK)
    const whole = (n - i) >> 6
    if (whole > 0 && LE && ((input.byteOffset + i) & 3) === 0 && ((output.byteOffset + i) & 3) === 0) {
      // whole blocks a word at a time
      const src = new Uint32Array(input.buffer, input.byteOffset + i, whole * 16)
      const dst = new Uint32Array(output.buffer, output.byteOffset + i, whole * 16)
      const w = this.words
      for (let b = 0; b < whole * 16; b += 16) {
        this.block(block++)
        for (let j = 0; j < 16; j++) dst[b + j] = src[b + j] ^ w[j]
      }
      i += whole * BLOCK
    }
    while (n - i >= BLOCK) {
      this.block(block++)
      for (let j = 0; j < BLOCK; j++) output[i + j] = input[i + j] ^ ks[j]
      i += BLOCK
    }
    if (i < n) {
      // a partial block: its keystream stays for the next call
      this.block(block)
      for (let j = 0; i < n; i++, j++) output[i] = input[i] ^ ks[j]
    }
    this.offset += n
    return output
  }

  /** Run in libsodium from here on, its state first taken to this stream's position. */
  toNative(native) {
    if (this.offset > MAX_CATCH_UP) {
      this.state = null
      return
    }
    const state = new Uint8Array(native.stateBytes)
    native.init(state, this.nonce, this.key)
    const chunk = Math.min(this.offset, 65_536)
    const zeros = new Uint8Array(chunk)
    const sink = new Uint8Array(chunk)
    for (let left = this.offset; left > 0; left -= chunk) {
      const k = Math.min(left, chunk)
      native.update(state, sink.subarray(0, k), zeros.subarray(0, k))
    }
    this.native = native
    this.state = state
  }

  /** The binding checks sizes only with C asserts: its arguments are checked here. */
  nativeUpdate(input, output) {
    if (!(input instanceof Uint8Array)) throw new TypeError('input must be Uint8Array or Buffer')
    const n = input.length
    const out = output ?? new Uint8Array(n)
    if (!(out instanceof Uint8Array) || out.length < n) throw new RangeError('output must be a Uint8Array at least as long as input')
    if (n === 0) return out
    this.native.update(this.state, out.length === n ? out : out.subarray(0, n), input)
    this.offset += n
    return out
  }

  /** The keystream block `counter` into this.words (Salsa20/20, little-endian words). */
  block(counter) {
    const s = this.input
    s[8] = counter >>> 0
    s[9] = Math.floor(counter / 0x100000000) >>> 0
    let x0 = s[0]
    let x1 = s[1]
    let x2 = s[2]
    let x3 = s[3]
    let x4 = s[4]
    let x5 = s[5]
    let x6 = s[6]
    let x7 = s[7]
    let x8 = s[8]
    let x9 = s[9]
    let x10 = s[10]
    let x11 = s[11]
    let x12 = s[12]
    let x13 = s[13]
    let x14 = s[14]
    let x15 = s[15]
    let u
    for (let r = 0; r < 20; r += 2) {
      u = (x0 + x12) | 0
      x4 ^= (u << 7) | (u >>> 25)
      u = (x4 + x0) | 0
      x8 ^= (u << 9) | (u >>> 23)
      u = (x8 + x4) | 0
      x12 ^= (u << 13) | (u >>> 19)
      u = (x12 + x8) | 0
      x0 ^= (u << 18) | (u >>> 14)
      u = (x5 + x1) | 0
      x9 ^= (u << 7) | (u >>> 25)
      u = (x9 + x5) | 0
      x13 ^= (u << 9) | (u >>> 23)
      u = (x13 + x9) | 0
      x1 ^= (u << 13) | (u >>> 19)
      u = (x1 + x13) | 0
      x5 ^= (u << 18) | (u >>> 14)
      u = (x10 + x6) | 0
      x14 ^= (u << 7) | (u >>> 25)
      u = (x14 + x10) | 0
      x2 ^= (u << 9) | (u >>> 23)
      u = (x2 + x14) | 0
      x6 ^= (u << 13) | (u >>> 19)
      u = (x6 + x2) | 0
      x10 ^= (u << 18) | (u >>> 14)
      u = (x15 + x11) | 0
      x3 ^= (u << 7) | (u >>> 25)
      u = (x3 + x15) | 0
      x7 ^= (u << 9) | (u >>> 23)
      u = (x7 + x3) | 0
      x11 ^= (u << 13) | (u >>> 19)
      u = (x11 + x7) | 0
      x15 ^= (u << 18) | (u >>> 14)
      u = (x0 + x3) | 0
      x1 ^= (u << 7) | (u >>> 25)
      u = (x1 + x0) | 0
      x2 ^= (u << 9) | (u >>> 23)
      u = (x2 + x1) | 0
      x3 ^= (u << 13) | (u >>> 19)
      u = (x3 + x2) | 0
      x0 ^= (u << 18) | (u >>> 14)
      u = (x5 + x4) | 0
      x6 ^= (u << 7) | (u >>> 25)
      u = (x6 + x5) | 0
      x7 ^= (u << 9) | (u >>> 23)
      u = (x7 + x6) | 0
      x4 ^= (u << 13) | (u >>> 19)
      u = (x4 + x7) | 0
      x5 ^= (u << 18) | (u >>> 14)
      u = (x10 + x9) | 0
      x11 ^= (u << 7) | (u >>> 25)
      u = (x11 + x10) | 0
      x8 ^= (u << 9) | (u >>> 23)
      u = (x8 + x11) | 0
      x9 ^= (u << 13) | (u >>> 19)
      u = (x9 + x8) | 0
      x10 ^= (u << 18) | (u >>> 14)
      u = (x15 + x14) | 0
      x12 ^= (u << 7) | (u >>> 25)
      u = (x12 + x15) | 0
      x13 ^= (u << 9) | (u >>> 23)
      u = (x13 + x12) | 0
      x14 ^= (u << 13) | (u >>> 19)
      u = (x14 + x13) | 0
      x15 ^= (u << 18) | (u >>> 14)
    }
    const w = this.words
    w[0] = x0 + s[0]
    w[1] = x1 + s[1]
    w[2] = x2 + s[2]
    w[3] = x3 + s[3]
    w[4] = x4 + s[4]
    w[5] = x5 + s[5]
    w[6] = x6 + s[6]
    w[7] = x7 + s[7]
    w[8] = x8 + s[8]
    w[9] = x9 + s[9]
    w[10] = x10 + s[10]
    w[11] = x11 + s[11]
    w[12] = x12 + s[12]
    w[13] = x13 + s[13]
    w[14] = x14 + s[14]
    w[15] = x15 + s[15]
    if (!LE) for (let j = 0; j < 16; j++) w[j] = swap(w[j])
  }

  finalize() {}

  final() {}
}
