/**
 * The presence exchange stream (SPEC.md §6.2): length-prefixed frames, one way, then EOF.
 * The sender writes and half-closes; the receiver reads until EOF or the limit. A frame is a
 * signed record, or (first frame of the exchange on connect only) `0x00` ‖ the sender's sync
 * summary, which presence carries without reading (§6.2, §9.4, §11.4).
 */
import type { Connection, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { lpStream } from '@libp2p/utils'
import { MAX_EXCHANGE_RECORDS, MAX_RECORD_BYTES, MAX_SUMMARY_BYTES, SUMMARY_TAG } from './constants.js'

const log = logger('claudemesh:presence')
const TIMEOUT_MS = 10_000
const MAX_FRAME = Math.max(MAX_RECORD_BYTES, MAX_SUMMARY_BYTES + 1)

/** `summary`, when given, goes first, tagged (the exchange on connect); then the records. */
export async function sendRecords(conn: Connection, protocol: string, records: Uint8Array[], summary?: Uint8Array): Promise<void> {
  let stream: Stream | undefined
  try {
    stream = await conn.newStream(protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(TIMEOUT_MS) })
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
    const frames = records.slice(0, MAX_EXCHANGE_RECORDS)
    if (summary != null && summary.byteLength <= MAX_SUMMARY_BYTES) frames.unshift(tagged(summary))
    await lp.writeV(frames)
    await stream.close()
  } catch (err) {
    stream?.abort(err as Error)
    log('presence exchange to %p failed: %s', conn.remotePeer, (err as Error).message)
  }
}

function tagged(summary: Uint8Array): Uint8Array {
  const out = new Uint8Array(summary.byteLength + 1)
  out[0] = SUMMARY_TAG
  out.set(summary, 1)
  return out
}

export interface ExchangeReceiver {
  onRecord: (bytes: Uint8Array) => Promise<unknown>
  onError: (message: string) => void
  /**
   * Set for the first exchange a connection brings (the one on connect): called once, with the
   * summary if the first frame is one, else with nothing, at the first record, at EOF or on an
   * error, whichever comes first.
   */
  onSummary?: (summary: Uint8Array | undefined) => void
}

/** Read frames until the sender's EOF; anything else (oversize, timeout, too many) is reported. */
export async function receiveRecords(stream: Stream, rx: ExchangeReceiver): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
  let onSummary = rx.onSummary
  const summarised = (summary?: Uint8Array): void => {
    const f = onSummary
    onSummary = undefined
    f?.(summary)
  }
  try {
    for (let records = 0, first = true; ; first = false) {
      const frame = (await lp.read({ signal: AbortSignal.timeout(TIMEOUT_MS) })).subarray()
      // only the first frame may be a summary; one in an exchange not on connect is skipped
      if (first && frame[0] === SUMMARY_TAG) {
        summarised(frame.subarray(1))
        continue
      }
      summarised()
      // a full exchange is fine if the sender stops there; one frame more is not
      if (records++ === MAX_EXCHANGE_RECORDS) {
        stream.abort(new Error('too many records in one exchange'))
        rx.onError('presence exchange: too many records')
        return
      }
      if (frame.byteLength > MAX_RECORD_BYTES) throw new Error(`a record of ${frame.byteLength} bytes is over ${MAX_RECORD_BYTES}`)
      await rx.onRecord(frame)
    }
  } catch (err) {
    summarised()
    if ((err as Error).name !== 'UnexpectedEOFError') {
      rx.onError(`presence exchange: ${(err as Error).message}`)
      stream.abort(err as Error)
      return
    }
    // the sender's EOF: close our end too, or the stream stays half-open on both sides and
    // counts against the protocol's inbound stream limit until the connection ends
    await stream.close({ signal: AbortSignal.timeout(TIMEOUT_MS) }).catch((e: Error) => {
      stream.abort(e)
    })
  }
}
