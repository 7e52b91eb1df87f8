/**
 * The holder's side of the file protocol (SPEC.md §16.2): answer queries with the manifest and
 * a bitmap of the chunks held, and chunk requests with the sealed chunks, in request order.
 * Writes wait for the stream to drain, and a fetcher asks only for what fits its window, so
 * neither side buffers more than a window per stream.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { lpStream } from '@libp2p/utils'
import { encodeFrame } from '../codec.js'
import { lpOptions } from '../messaging/lp.js'
import type { Blobs } from './blobs.js'
import * as c from './constants.js'
import { decodeRequest, type Request } from './frames.js'
import { hex } from './manifest.js'

const log = logger('claudemesh:files:serve')
/** A stream idle this long between requests is closed. */
const IDLE_MS = 60_000

export class FileServer {
  readonly stats = { served: 0, bytes: 0, refused: 0 }

  constructor(private readonly blobs: Blobs) {}

  async serve(stream: Stream, conn: Connection): Promise<void> {
    const lp = lpStream(stream, lpOptions(c.MAX_REQUEST_BYTES))
    try {
      while (true) {
        let raw
        try {
          raw = await lp.read({ signal: AbortSignal.timeout(IDLE_MS) })
        } catch (err) {
          if ((err as Error).name === 'UnexpectedEOFError') break
          throw err
        }
        await this.answer(decodeRequest(raw.subarray()), lp)
      }
      await stream.close()
    } catch (err) {
      this.stats.refused++
      log('serving a file stream to %p failed: %s', conn.remotePeer, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private async answer(req: Request, lp: { write: (b: Uint8Array) => Promise<void> }): Promise<void> {
    const id = hex(req.id)
    const rec = this.blobs.get(id)
    if (req.t === 'q') {
      const m = rec == null ? undefined : await this.blobs.manifest(id)
      await lp.write(encodeFrame(m == null || rec == null ? { t: 'n' } : { t: 'i', m, have: this.blobs.bitmap(id, rec.chunks) }))
      return
    }
    // the next chunk is read from disk while this one is written: the stream never waits on the disk
    const read = (k: number): Promise<Uint8Array> | undefined => {
      const i = req.i[k]
      return i == null || rec == null || !this.blobs.has(id, i) ? undefined : this.blobs.readChunk(id, i)
    }
    let ahead = read(0)
    for (let k = 0; k < req.i.length; k++) {
      const i = req.i[k] as number
      const reading = ahead
      ahead = read(k + 1)
      // a read-ahead that fails is seen (and ends the stream) when its turn comes
      ahead?.catch(() => {})
      if (reading == null) {
        await lp.write(encodeFrame({ t: 'x', i }))
        continue
      }
      const b = await reading
      await lp.write(encodeFrame({ t: 'c', i, b }))
      this.stats.served++
      this.stats.bytes += b.byteLength
    }
  }
}
