/**
 * @libp2p/utils' LengthPrefixedDecoder (Noise reads its ciphertext frames through it) loops
 * over the bytes it holds until decoding the next length prefix fails with a RangeError, which
 * means "not enough bytes yet". Most chunks end on a frame boundary, so nearly every chunk a
 * connection receives ended in a new RangeError, stack trace and all: 2 % of a busy node's
 * CPU. Here an empty buffer fails with one RangeError made once (no new trace); any other
 * buffer goes to the length decoder as before. Same frames, same errors on bad input.
 * Applied once per process, to every decoder.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { logger } from '@libp2p/logger'

const log = logger('claudemesh:transport')
const PATCHED = Symbol.for('claudemesh.lpDecoder.emptyBuffer')

type LengthDecoder = ((data: { byteLength: number }) => number) & { [PATCHED]?: true }

/** thrown, never built again, for an empty buffer: the decoder's loop stops on any RangeError */
const EMPTY = new RangeError('no length prefix yet')
const wrapped = new WeakMap<LengthDecoder, LengthDecoder>()

function emptyFirst(decode: LengthDecoder): LengthDecoder {
  let w = wrapped.get(decode)
  if (w == null) {
    w = Object.assign(
      (data: { byteLength: number }): number => {
        if (data.byteLength === 0) throw EMPTY
        return decode(data)
      },
      { [PATCHED]: true as const }
    )
    wrapped.set(decode, w)
  }
  return w
}

export function cheapEmptyLengthPrefix(): void {
  const proto = LengthPrefixedDecoder.prototype as unknown as Record<string | symbol, unknown>
  if (proto[PATCHED] === true) return
  const decode = proto.decode
  if (typeof decode !== 'function') {
    log.error('LengthPrefixedDecoder has changed shape: left as it is')
    return
  }
  proto.decode = function* (this: { lengthDecoder?: LengthDecoder }, buf: unknown): Generator<unknown> {
    const d = this.lengthDecoder
    if (typeof d === 'function' && d[PATCHED] !== true) this.lengthDecoder = emptyFirst(d)
    return yield* (decode as (buf: unknown) => Generator<unknown>).call(this, buf)
  }
  proto[PATCHED] = true
}
