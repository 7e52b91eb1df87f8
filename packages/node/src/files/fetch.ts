/**
 * The fetcher's side of the file protocol (SPEC.md §16.2): one stream per holder, a query for
 * the manifest and the holder's bitmap, then chunk requests kept within a credit window of
 * WINDOW_BYTES. libp2p 3 streams buffer whatever arrives until it is read (yamux credits the
 * sender on receipt, not on consumption), so this window is what bounds memory: the holder
 * never has more than a window of chunks to send. Each chunk is checked against its hash in
 * the manifest before it is stored; a chunk that does not match ends the stream with that
 * holder.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { encodeFrame } from '../codec.js'
import { MalformedFrameError } from '../errors.js'
import { lpOptions } from '../messaging/lp.js'
import type { MeshLibp2p } from '../transport/index.js'
import * as c from './constants.js'
import { decodeReply } from './frames.js'
import { type Manifest, plainChunkSize, sha256 } from './manifest.js'

type Lp = ReturnType<typeof lpStream>

export class HolderStream {
  private constructor(
    readonly peer: string,
    private readonly stream: Stream,
    private readonly lp: Lp
  ) {}

  static async open(libp2p: MeshLibp2p, peer: PeerId, protocol: string): Promise<HolderStream> {
    const stream = await libp2p.dialProtocol(peer, protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(15_000) })
    const lp = lpStream(stream, { ...lpOptions(c.MAX_FILE_FRAME_BYTES), maxBufferSize: c.WINDOW_BYTES + 2 * c.MAX_FILE_FRAME_BYTES })
    return new HolderStream(peer.toString(), stream, lp)
  }

  private async reply(): Promise<ReturnType<typeof decodeReply>> {
    return decodeReply((await this.lp.read({ signal: AbortSignal.timeout(c.READ_TIMEOUT_MS) })).subarray())
  }

  /** The manifest bytes and the holder's bitmap, or undefined when it does not hold the file. */
  async query(id: Uint8Array): Promise<{ m: Uint8Array; have: Uint8Array } | undefined> {
    await this.lp.write(encodeFrame({ t: 'q', id }))
    const r = await this.reply()
    if (r.t === 'n') return undefined
    if (r.t !== 'i') throw new MalformedFrameError(`file holder answered a query with a "${r.t}" frame`)
    return { m: r.m, have: r.have }
  }

  /**
   * Fetch `want` (chunk indices) in order; `onChunk` stores each verified chunk. Returns the
   * indices the holder did not have after all.
   */
  async fetch(id: Uint8Array, m: Manifest, want: number[], onChunk: (i: number, b: Uint8Array) => Promise<void>): Promise<number[]> {
    const sealed = (i: number): number => plainChunkSize(m, i) + c.SEAL_OVERHEAD
    const expected: number[] = []
    const missing: number[] = []
    let next = 0
    let inflight = 0
    while (next < want.length || expected.length > 0) {
      const batch: number[] = []
      while (next < want.length && batch.length < c.MAX_REQUEST_CHUNKS && inflight + sealed(want[next] ?? 0) <= c.WINDOW_BYTES) {
        const i = want[next++] ?? 0
        batch.push(i)
        inflight += sealed(i)
      }
      if (batch.length > 0) {
        await this.lp.write(encodeFrame({ t: 'g', id, i: batch }))
        expected.push(...batch)
      }
      const r = await this.reply()
      const i = expected.shift()
      if (i == null || (r.t !== 'c' && r.t !== 'x') || r.i !== i)
        throw new MalformedFrameError(`file holder sent an unexpected frame (expected chunk ${String(i)})`)
      inflight -= sealed(i)
      if (r.t === 'x') {
        missing.push(i)
        continue
      }
      const hash = m.h[i]
      if (hash == null || r.b.byteLength !== sealed(i) || Buffer.compare(sha256(r.b), hash) !== 0) {
        throw new MalformedFrameError(`chunk ${i} from ${this.peer} does not match its hash in the manifest: refused`)
      }
      await onChunk(i, r.b)
    }
    return missing
  }

  async close(): Promise<void> {
    await this.stream.close().catch(() => {
      this.stream.abort(new Error('closed'))
    })
  }

  abort(err: Error): void {
    this.stream.abort(err)
  }
}
