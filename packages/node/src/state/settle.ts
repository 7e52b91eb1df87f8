/**
 * Settle pulls on one long-lived stream per peer (SPEC.md §11.4, "Settle"): a claim pulls from
 * every connected peer (§14.4), and a new stream for each costs both sides a protocol
 * negotiation. On this stream the puller writes a version vector and the peer answers with what
 * it lacks and an empty frame; the stream stays open for the next one. A peer that does not speak
 * the protocol, or a stream that fails, falls back to the plain pull.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils'
import { z } from 'zod'
import { decodeFrame, encodeFrame } from '../codec.js'
import type { MeshLibp2p } from '../transport/index.js'
import * as c from './constants.js'
import type { Replica } from './replica.js'

const log = logger('claudemesh:crdt')
const VVSchema = z.object({ vv: z.record(z.string().max(128), z.number().int().nonnegative()) }).strict()
const MAX_VV_BYTES = 1024 * 1024
/** A served stream with no request for this long is closed (the puller opens another when it needs one). */
const IDLE_MS = 5 * 60_000
const FRAME_MS = 10_000

interface Channel {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** one question at a time on a stream */
  turn: Promise<unknown>
}

export class SettleChannels {
  /** by connection id */
  private readonly channels = new Map<string, Promise<Channel | undefined>>()
  /** peers that do not speak the protocol: plain pulls only */
  private readonly plain = new Set<string>()
  /** streams this node answers on */
  private readonly served = new Set<Stream>()
  readonly stats = { asked: 0, opened: 0, fallbacks: 0 }

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly replica: Replica,
    private readonly protocol: string,
    /** the plain pull (sync.ts): for a peer without the protocol, a failed stream, or a full answer */
    private readonly fallback: (conn: Connection) => Promise<number>
  ) {}

  async start(): Promise<void> {
    await this.libp2p.handle(
      this.protocol,
      (stream, conn) => {
        void this.serve(stream, conn)
      },
      { runOnLimitedConnection: true, maxInboundStreams: 2 }
    )
    this.libp2p.addEventListener('connection:close', this.onClose)
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    this.channels.delete(evt.detail.id)
  }

  async stop(): Promise<void> {
    this.libp2p.removeEventListener('connection:close', this.onClose)
    await this.libp2p.unhandle(this.protocol)
    for (const ch of this.channels.values()) void ch.then(x => x?.stream.abort(new Error('stopping')))
    this.channels.clear()
    for (const stream of this.served) stream.abort(new Error('stopping'))
    this.served.clear()
  }

  /** Ask the peer of `conn` for what this replica lacks; resolves once the answer is in. */
  async pull(conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    if (this.plain.has(peer)) {
      await this.fallback(conn)
      return
    }
    const ch = await this.channel(conn)
    if (ch == null) {
      this.stats.fallbacks++
      await this.fallback(conn)
      return
    }
    const asked = ch.turn.then(async () => this.ask(ch))
    ch.turn = asked.catch(() => {})
    let n: number
    try {
      n = await asked
    } catch (err) {
      log('settle pull from %p failed: %s', conn.remotePeer, (err as Error).message)
      this.drop(conn, ch, err as Error)
      this.stats.fallbacks++
      await this.fallback(conn)
      return
    }
    // a full answer: the plain pull fetches the rest, round by round
    if (n >= c.SYNC_BATCH) await this.fallback(conn)
  }

  private async channel(conn: Connection): Promise<Channel | undefined> {
    const had = this.channels.get(conn.id)
    const ch = had != null ? await had : undefined
    if (ch != null && ch.stream.status === 'open' && ch.stream.writeStatus === 'writable') return ch
    if (ch != null) this.channels.delete(conn.id)
    const opening = this.open(conn)
    this.channels.set(conn.id, opening)
    const opened = await opening
    if (opened == null) this.channels.delete(conn.id)
    return opened
  }

  private async open(conn: Connection): Promise<Channel | undefined> {
    try {
      const stream = await conn.newStream(this.protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(FRAME_MS) })
      this.stats.opened++
      const ch: Channel = { stream, lp: lpStream(stream, { maxDataLength: c.MAX_ENVELOPE_BYTES }), turn: Promise.resolve() }
      stream.addEventListener('close', () => {
        this.forget(conn, ch)
      })
      return ch
    } catch (err) {
      if ((err as Error).name === 'UnsupportedProtocolError') this.plain.add(conn.remotePeer.toString())
      else log('opening a settle stream to %p failed: %s', conn.remotePeer, (err as Error).message)
      return undefined
    }
  }

  private drop(conn: Connection, ch: Channel, err: Error): void {
    ch.stream.abort(err)
    this.forget(conn, ch)
  }

  /** Forget `ch` as the connection's channel, unless a newer one took its place. */
  private forget(conn: Connection, ch: Channel): void {
    void this.channels.get(conn.id)?.then(x => {
      if (x === ch) this.channels.delete(conn.id)
    })
  }

  /** One question: our vector out, envelopes back until the empty frame. */
  private async ask(ch: Channel): Promise<number> {
    this.stats.asked++
    await ch.lp.write(encodeFrame({ vv: this.replica.pullVector() }))
    let n = 0
    for (;;) {
      const frame = await ch.lp.read({ signal: AbortSignal.timeout(FRAME_MS) })
      if (frame.byteLength === 0) return n
      if (++n > c.SYNC_BATCH) throw new Error('the peer sent more than one batch')
      await this.replica.ingest(frame.subarray())
    }
  }

  private async serve(stream: Stream, conn: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_VV_BYTES })
    this.served.add(stream)
    try {
      for (;;) {
        let req: Uint8Array
        try {
          req = (await lp.read({ signal: AbortSignal.timeout(IDLE_MS) })).subarray()
        } catch (err) {
          // the puller went away or stayed idle: that ends the stream, not an error
          if ((err as Error).name === 'UnexpectedEOFError' || (err as Error).name === 'TimeoutError') break
          throw err
        }
        const { vv } = decodeFrame(req, VVSchema, MAX_VV_BYTES, 'crdt version vector')
        const missing = await this.replica.missing(vv, c.SYNC_BATCH)
        await lp.writeV([...missing, new Uint8Array(0)])
      }
      await stream.close()
    } catch (err) {
      log('serving settle pulls to %p failed: %s', conn.remotePeer, (err as Error).message)
      stream.abort(err as Error)
    } finally {
      this.served.delete(stream)
    }
  }
}
