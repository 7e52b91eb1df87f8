/**
 * Length-prefix options for the DM streams. The default varint decoder of `lpStream` is fed
 * one byte at a time and throws a fresh RangeError for every incomplete prefix — one
 * exception per frame over 127 bytes, ~8% of a busy recipient's CPU. This decoder throws one
 * shared error instead (same wire format: an unsigned varint).
 */
import type { Uint8ArrayList } from 'uint8arraylist'

const INCOMPLETE = new RangeError('incomplete length prefix')

export function decodeLength(buf: Uint8ArrayList): number {
  let value = 0
  for (let i = 0; i < buf.byteLength && i < 8; i++) {
    const b = buf.get(i)
    value += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return value
  }
  throw INCOMPLETE
}

export const lpOptions = (maxDataLength: number): { maxDataLength: number; lengthDecoder: typeof decodeLength } => ({
  maxDataLength,
  lengthDecoder: decodeLength
})
