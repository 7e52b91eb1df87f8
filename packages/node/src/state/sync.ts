/**
 * Moving signed updates between replicas (SPEC.md §11.4): every local change is gossiped on
 * the mesh's crdt topic (a hint: it may be lost or reordered), and replicas pull what their
 * version vector lacks: from a newly connected peer whose sync summary shows an update we lack
 * (or that sent no summary), from one random peer every SYNC_INTERVAL_MS, and promptly from a
 * peer when a gap shows.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { logger } from '@libp2p/logger'
import { lpStream } from '@libp2p/utils'
import { z } from 'zod'
import { decodeFrame, encodeFrame } from '../codec.js'
import { holdsMore } from '../sync-summary.js'
import type { MeshLibp2p } from '../transport/index.js'
import * as c from './constants.js'
import type { IngestResult, Replica, VersionVector } from './replica.js'
import { SettleChannels } from './settle.js'

const log = logger('claudemesh:crdt')
const VVSchema = z.object({ vv: z.record(z.string().max(128), z.number().int().nonnegative()) }).strict()
const MAX_VV_BYTES = 1024 * 1024

export class CrdtSync {
  private readonly topic: string
  private readonly protocol: string
  private timer?: ReturnType<typeof setInterval>
  private gapTimer?: ReturnType<typeof setTimeout>
  readonly stats = { pulls: 0, pulled: 0 }
  readonly settle: SettleChannels

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly replica: Replica,
    meshId: string
  ) {
    this.topic = c.crdtTopic(meshId)
    this.protocol = c.crdtSyncProtocol(meshId)
    this.settle = new SettleChannels(libp2p, replica, c.crdtSettleProtocol(meshId), async conn => this.pull(conn))
  }

  async start(): Promise<void> {
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(this.topic, async (_p, msg) => {
      // an update is forwarded as soon as it is in the document, not once its log write is
      // durable: that write costs each hop a group commit, and the envelope is its author's
      let inDoc: (() => void) | undefined
      const applied = new Promise<IngestResult>(resolve => {
        inDoc = () => {
          resolve('applied')
        }
      })
      const r = await Promise.race([this.replica.ingest(msg.data, inDoc), applied])
      // a deferred update is not forwarded: it is not checked yet, and pulls carry it once it is
      return r === 'rejected' ? TopicValidatorResult.Reject : r === 'applied' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
    })
    pubsub.subscribe(this.topic)
    await this.libp2p.handle(
      this.protocol,
      (stream, conn) => {
        void this.serve(stream, conn)
      },
      { runOnLimitedConnection: true, maxInboundStreams: 8 }
    )
    await this.settle.start()
    this.replica.onGap = () => {
      this.pullSoon()
    }
    this.timer = setInterval(() => {
      void this.pullRandom()
    }, c.SYNC_INTERVAL_MS)
    this.timer.unref()
    for (const conn of this.libp2p.getConnections()) void this.pull(conn)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    clearTimeout(this.gapTimer)
    const pubsub = this.libp2p.services.pubsub
    pubsub.unsubscribe(this.topic)
    pubsub.topicValidators.delete(this.topic)
    await this.libp2p.unhandle(this.protocol)
    await this.settle.stop()
  }

  /** Gossip a local change (best effort: pulls repair what gossip loses). */
  publish(envelope: Uint8Array): void {
    this.libp2p.services.pubsub.publish(this.topic, envelope).catch(err => {
      log('publishing an update failed: %s', (err as Error).message)
    })
  }

  /** Pull from every connected peer at once, once each, on its settle stream, within `timeoutMs` (SPEC.md §11.4, §14.4). */
  async pullAll(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const pulls = Promise.all([...onePerPeer(this.libp2p.getConnections()).values()].map(async c => this.settle.pull(c)))
    await Promise.race([
      pulls,
      new Promise(resolve => {
        timer = setTimeout(resolve, timeoutMs)
      })
    ])
    clearTimeout(timer)
  }

  /** The pull on connect (SPEC.md §11.4): only when the peer's summary shows more than we hold, or it sent none. */
  async pullOnConnect(conn: Connection, theirs?: VersionVector): Promise<boolean> {
    if (theirs != null && !holdsMore(theirs, this.replica.pullVector())) return false
    await this.pull(conn)
    return true
  }

  private pullSoon(): void {
    if (this.gapTimer != null) return
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined
      void this.pullRandom()
    }, 50)
  }

  private async pullRandom(): Promise<void> {
    const conns = this.libp2p.getConnections()
    const conn = conns[Math.floor(Math.random() * conns.length)]
    if (conn != null) await this.pull(conn)
  }

  /** Ask a peer for what our version vector lacks; repeat while answers come back full. */
  async pull(conn: Connection): Promise<number> {
    let total = 0
    for (let round = 0; round < 20; round++) {
      let stream: Stream | undefined
      let n = 0
      try {
        stream = await conn.newStream(this.protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
        const lp = lpStream(stream, { maxDataLength: c.MAX_ENVELOPE_BYTES })
        await lp.write(encodeFrame({ vv: this.replica.pullVector() }))
        while (true) {
          const frame = await lp.read({ signal: AbortSignal.timeout(10_000) })
          if (++n > c.SYNC_BATCH) throw new Error('the peer sent more than one batch')
          await this.replica.ingest(frame.subarray())
        }
      } catch (err) {
        if ((err as Error).name !== 'UnexpectedEOFError') log('crdt pull from %p failed: %s', conn.remotePeer, (err as Error).message)
      } finally {
        stream?.abort(new Error('done'))
      }
      this.stats.pulls++
      this.stats.pulled += n
      total += n
      if (n < c.SYNC_BATCH) break
    }
    return total
  }

  private async serve(stream: Stream, conn: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_VV_BYTES })
    try {
      const req = decodeFrame(
        (await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray(),
        VVSchema,
        MAX_VV_BYTES,
        'crdt version vector'
      )
      const missing = await this.replica.missing(req.vv, c.SYNC_BATCH)
      if (missing.length > 0) await lp.writeV(missing)
      await stream.close()
    } catch (err) {
      log('serving a crdt pull to %p failed: %s', conn.remotePeer, (err as Error).message)
      stream.abort(err as Error)
    }
  }
}

/**
 * One open connection per peer (two nodes that dialled each other hold two), a direct one
 * before a relayed (limited) one: a pull asks a peer for what it holds, which is the same over
 * either.
 */
export function onePerPeer(conns: Connection[]): Map<string, Connection> {
  const out = new Map<string, Connection>()
  for (const conn of conns) {
    if (conn.status !== 'open') continue
    const peer = conn.remotePeer.toString()
    const had = out.get(peer)
    if (had == null || (had.limits != null && conn.limits == null)) out.set(peer, conn)
  }
  return out
}
