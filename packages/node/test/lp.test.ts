import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { decodeLength } from '../src/messaging/lp.js'

function varint(n: number): number[] {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return out
}

describe('the DM length prefix decoder', () => {
  it('reads every unsigned varint length, and refuses incomplete prefixes with a RangeError', () => {
    for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 67_584, 2 ** 21, 2 ** 28 + 5]) {
      const bytes = varint(n)
      expect(decodeLength(new Uint8ArrayList(Uint8Array.from(bytes)))).toBe(n)
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(() => decodeLength(new Uint8ArrayList(Uint8Array.from(bytes.slice(0, cut))))).toThrow(RangeError)
      }
    }
  })
})
