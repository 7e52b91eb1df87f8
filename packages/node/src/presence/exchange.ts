/**
 * The presence exchange stream (SPEC.md §6.2): length-prefixed signed records, one way,
 * then EOF. The sender writes and half-closes; the receiver reads until EOF or the limit.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { lpStream } from '@libp2p/utils'
import { MAX_EXCHANGE_RECORDS, MAX_RECORD_BYTES } from './constants.js'

const log = logger('claudemesh:presence')
const TIMEOUT_MS = 10_000

export async function sendRecords(conn: Connection, protocol: string, records: Uint8Array[]): Promise<void> {
  let stream: Stream | undefined
  try {
    stream = await conn.newStream(protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(TIMEOUT_MS) })
    const lp = lpStream(stream, { maxDataLength: MAX_RECORD_BYTES })
    await lp.writeV(records.slice(0, MAX_EXCHANGE_RECORDS))
    await stream.close()
  } catch (err) {
    stream?.abort(err as Error)
    log('presence exchange to %p failed: %s', conn.remotePeer, (err as Error).message)
  }
}

/** Read records until the sender's EOF; anything else (oversize, timeout, too many) is reported. */
export async function receiveRecords(
  stream: Stream,
  onRecord: (bytes: Uint8Array) => Promise<unknown>,
  onError: (message: string) => void
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_RECORD_BYTES })
  try {
    for (let i = 0; i < MAX_EXCHANGE_RECORDS; i++) {
      const frame = await lp.read({ signal: AbortSignal.timeout(TIMEOUT_MS) })
      await onRecord(frame.subarray())
    }
    // a full exchange is fine if the sender stops there; one frame more is not
    await lp.read({ signal: AbortSignal.timeout(TIMEOUT_MS) })
    stream.abort(new Error('too many records in one exchange'))
    onError('presence exchange: too many records')
  } catch (err) {
    if ((err as Error).name !== 'UnexpectedEOFError') {
      onError(`presence exchange: ${(err as Error).message}`)
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
