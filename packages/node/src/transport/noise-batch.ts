/**
 * Yamux hands the Noise connection one frame per call (a 12-byte header, a window update, a
 * few bytes of multistream-select), and each became its own Noise message, its own PSK
 * cipher call and its own socket write, then on the other end its own TCP read, PSK call,
 * Noise open and event. A connection's set-up is ~10 streams of several frames each. Here the
 * frames one end writes in one turn of the event loop go out together: queued in the Noise
 * stream's write buffer and sent once at `setImmediate` (or at once past FLUSH_BYTES), as one
 * Noise message (split at Noise's 64 KiB limit as before). Yamux is a byte stream over Noise,
 * so the remote sees the same bytes; only their grouping into messages changes. Backpressure
 * is the library's: a send answers false while the socket wants a drain, close waits for the
 * buffer to empty, abort discards it.
 */
import type { ConnectionEncrypter } from '@libp2p/interface'
import { logger } from '@libp2p/logger'

const log = logger('claudemesh:transport')

/** past this many queued bytes a send goes out at once (bulk transfers keep their pace) */
const FLUSH_BYTES = 64 * 1024

/** the fields of @libp2p/utils' AbstractMessageStream this reads and drives (7.4.x) */
interface QueuedStream {
  send: (data: { byteLength: number }) => boolean
  processSendQueue: () => boolean
  writeBuffer: { append: (data: unknown) => void; byteLength: number }
  writeStatus: string
  writableNeedsDrain: boolean
}

/** counts, for tests and benches: sends queued, and flushes that sent them */
export const batchStats = { sends: 0, flushes: 0 }

function batch(stream: QueuedStream): void {
  const send = stream.send.bind(stream)
  let pending: ReturnType<typeof setImmediate> | undefined
  const flush = (): void => {
    pending = undefined
    batchStats.flushes++
    try {
      stream.processSendQueue()
    } catch {
      // processSendQueue aborted the stream already
    }
  }
  stream.send = data => {
    // closing or closed: the library throws its own error
    if (stream.writeStatus !== 'writable') return send(data)
    batchStats.sends++
    stream.writeBuffer.append(data)
    if (stream.writeBuffer.byteLength >= FLUSH_BYTES) {
      if (pending != null) clearImmediate(pending)
      pending = undefined
      batchStats.flushes++
      return stream.processSendQueue()
    }
    pending ??= setImmediate(flush)
    return !stream.writableNeedsDrain
  }
}

function shaped(conn: unknown): conn is QueuedStream {
  const s = conn as Partial<QueuedStream> | null
  return (
    typeof s?.send === 'function' &&
    typeof s.processSendQueue === 'function' &&
    typeof s.writeBuffer?.append === 'function' &&
    typeof s.writeStatus === 'string' &&
    typeof s.writableNeedsDrain === 'boolean'
  )
}

/** Wrap a connection encrypter (Noise) so each secured connection batches its writes. */
export function batchedWrites<C>(factory: (components: C) => ConnectionEncrypter): (components: C) => ConnectionEncrypter {
  return components => {
    const inner = factory(components)
    const wrap = <T extends { connection: unknown }>(secured: T): T => {
      if (shaped(secured.connection)) batch(secured.connection)
      else log.error('secured connection has changed shape: writes not batched')
      return secured
    }
    const outer = Object.create(inner) as ConnectionEncrypter
    outer.secureOutbound = async (connection, options) => wrap(await inner.secureOutbound(connection, options))
    outer.secureInbound = async (connection, options) => wrap(await inner.secureInbound(connection, options))
    return outer
  }
}
