/**
 * One outbound DM channel per recipient: a persistent stream that carries envelopes and
 * read receipts out and brings acks back (SPEC.md §8.3). Messages are pipelined up to a
 * window; on any stream failure everything unacked goes back to the queue and the channel
 * retries with exponential backoff. Kicked when a message is queued, the peer connects or
 * its presence changes.
 */
import { logger } from '@libp2p/logger'
import { ACK_TIMEOUT_MS, MAX_ACK_IDS, REFUSED_SLOW_MS, REFUSED_WINDOW, RETRY_MAX_MS, RETRY_MIN_MS, WINDOW } from './constants.js'
import { idBytes, idText } from './envelope.js'
import { decodeDmFrame, encodeDmFrame } from './frames.js'
import { Pump } from '../serial.js'
import type { FrameStream } from './frame-stream.js'
import type { OutboxItem } from './outbox.js'
import type { RefuseWhy } from './flood.js'

const log = logger('claudemesh:dm')

export interface ChannelHost {
  /** a stream to `peer` (a PeerId string: a same-home socket needs no parsed PeerId) */
  connect: (peer: string, signal: AbortSignal) => Promise<FrameStream>
  pending: (peer: string) => OutboxItem[]
  onAck: (peer: string, ids: string[]) => Promise<void>
  onRead: (peer: string, ids: string[]) => Promise<void>
  /** the peer refused messages for now (flood control, SPEC.md §8.8): they wait until `until` */
  onRefuse?: (peer: string, why: RefuseWhy, until: number) => void
  /** the peer cannot be reached: true when its messages went another way (a relay's mailbox) */
  divert?: (channel: Channel) => boolean
}

/** Most frames handed to the stream in one write. */
const BURST = 256

export class Channel {
  private frames?: FrameStream
  /** items to write, in send order; rebuilt from the outbox whenever the stream resets */
  private queue: OutboxItem[] = []
  private head = 0
  private readonly inflight = new Set<string>()
  private receipts: string[] = []
  private readonly pump = new Pump(
    async () => this.step(),
    err => {
      log('channel to %s failed: %s', this.peer, err.message)
      this.fail(err)
    }
  )
  private backoff = RETRY_MIN_MS
  private retryTimer?: ReturnType<typeof setTimeout>
  private lastAck = Date.now()
  private closed = false
  /** the recipient refused our messages until then: only receipts go out meanwhile */
  private pausedUntil = 0
  /** until then the window is REFUSED_WINDOW (the recipient refused us lately) */
  private slowUntil = 0

  constructor(
    readonly peer: string,
    private readonly host: ChannelHost
  ) {
    this.queue = host.pending(peer)
  }

  /** New messages for this peer (already durable in the outbox). */
  push(items: OutboxItem[]): void {
    if (this.closed) return // a closed channel's items are in the outbox; its successor loads them
    this.queue.push(...items)
    this.kick()
  }

  /** Queue read receipts (best effort: they live as long as this process). */
  receipt(ids: string[]): void {
    this.receipts.push(...ids)
    this.kick()
  }

  /** last time anything happened on this channel */
  lastActive = Date.now()

  kick(): void {
    if (this.closed) return
    this.lastActive = Date.now()
    if (!this.pump.busy) {
      // a kick cuts a backoff short: the peer connected, or something new is queued
      clearTimeout(this.retryTimer)
      this.retryTimer = undefined
    }
    this.pump.kick()
  }

  /** Periodic check: a silent stream with unacked messages is presumed dead. Never cuts a backoff short. */
  poll(): void {
    if (this.closed || this.pump.busy || this.retryTimer != null) return
    if (this.frames != null && this.inflight.size > 0 && Date.now() - this.lastAck > ACK_TIMEOUT_MS) {
      this.fail(new Error('no ack within the timeout'))
      return
    }
    if (this.head < this.queue.length || this.receipts.length > 0) this.kick()
  }

  /** Items that left the outbox without an ack (expired): stop waiting for them. */
  forget(ids: string[]): void {
    for (const id of ids) this.inflight.delete(id)
    this.queue = this.queue.filter((item, i) => i < this.head || !ids.includes(item.id))
  }

  close(): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.frames?.abort(new Error('channel closed'))
  }

  get idle(): boolean {
    return this.inflight.size === 0 && this.receipts.length === 0 && this.head >= this.queue.length
  }

  /** failed, and waiting out its backoff before the next attempt */
  get waiting(): boolean {
    return !this.closed && this.retryTimer != null
  }

  /** One round of writing: receipts, then messages up to the window. True when receipts remain. */
  private async step(): Promise<boolean> {
    if (this.closed || (this.head >= this.queue.length && this.receipts.length === 0)) {
      this.backoff = RETRY_MIN_MS
      return false
    }
    const out = await this.open()
    if (this.receipts.length > 0) {
      const ids = this.receipts.splice(0, MAX_ACK_IDS)
      await out.write(encodeDmFrame({ t: 'r', ids: ids.map(idBytes) }))
    }
    const wait = this.pausedUntil - Date.now()
    if (wait > 0) {
      this.retryAt(wait)
      return false
    }
    const window = Date.now() < this.slowUntil ? REFUSED_WINDOW : WINDOW
    while (this.head < this.queue.length && this.inflight.size < window) {
      if (this.inflight.size === 0) this.lastAck = Date.now()
      const frames: Uint8Array[] = []
      while (frames.length < BURST && this.head < this.queue.length && this.inflight.size < window) {
        const item = this.queue[this.head++] as OutboxItem
        this.inflight.add(item.id)
        frames.push(encodeDmFrame({ t: 'm', e: item.env }))
      }
      await out.writeV(frames)
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    this.backoff = RETRY_MIN_MS
    return this.receipts.length > 0
  }

  /** The stream failed: everything unacked goes again, through a relay or after a backoff. */
  private fail(err: Error): void {
    this.reset(err)
    this.retryOrDivert()
  }

  private retryOrDivert(): void {
    if (this.host.divert?.(this) === true) this.close()
    else this.scheduleRetry()
  }

  private async open(): Promise<FrameStream> {
    if (this.frames?.open === true) {
      if (this.inflight.size > 0 && Date.now() - this.lastAck > ACK_TIMEOUT_MS) throw new Error('no ack within the timeout')
      return this.frames
    }
    // a timer cleared once connected, not an AbortSignal.timeout (which fires anyway, a
    // DOMException with a stack 10 s after every first contact of a burst)
    const ac = new AbortController()
    const timer = setTimeout(() => {
      ac.abort(new Error('connecting timed out'))
    }, 10_000)
    let frames: FrameStream
    try {
      frames = await this.host.connect(this.peer, ac.signal)
    } finally {
      clearTimeout(timer)
    }
    this.frames = frames
    void this.readAcks(frames)
    return frames
  }

  private async readAcks(frames: FrameStream): Promise<void> {
    try {
      while (true) {
        const f = decodeDmFrame(await frames.read())
        // not awaited: acks from many frames share one group commit instead of one each
        if (f.t === 'a') {
          const ids = f.ids.map(idText)
          this.lastAck = Date.now()
          void this.host.onAck(this.peer, ids).then(
            () => {
              for (const id of ids) this.inflight.delete(id)
              this.kick()
            },
            err => {
              log('recording acks from %s failed: %s', this.peer, (err as Error).message)
            }
          )
        } else if (f.t === 'r') {
          void this.host.onRead(this.peer, f.ids.map(idText)).catch(() => {})
        } else if (f.t === 'x') {
          this.refused(f.ids.map(idText), f.why, f.ms)
        }
      }
    } catch (err) {
      if (this.frames === frames) {
        this.reset(err as Error)
        if (!this.idle) this.retryOrDivert()
      }
    }
  }

  /**
   * The recipient refused these for now: stop sending until it said to retry, then send
   * everything not acked again, in order (what was sent after them was refused too, or is
   * a duplicate the recipient acks).
   */
  private refused(ids: string[], why: RefuseWhy, ms: number): void {
    this.lastAck = Date.now()
    for (const id of ids) this.inflight.delete(id)
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms)
    this.slowUntil = this.pausedUntil + REFUSED_SLOW_MS
    this.host.onRefuse?.(this.peer, why, this.pausedUntil)
    this.queue = this.host.pending(this.peer).filter(i => !this.inflight.has(i.id))
    this.head = 0
    log('%s refused %d DMs for now (%s): retrying in %d ms', this.peer, ids.length, why, ms)
    this.retryAt(this.pausedUntil - Date.now())
  }

  private retryAt(ms: number): void {
    if (this.closed) return
    clearTimeout(this.retryTimer)
    // a little later than asked, so the retry is not refused again by a clock a hair behind
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined
        this.kick()
      },
      ms + 50 + Math.random() * 200
    )
    this.retryTimer.unref()
  }

  private reset(err: Error): void {
    this.frames?.abort(err)
    this.frames = undefined
    this.inflight.clear()
    // everything not acked goes again, in order; the recipient drops what it already has
    this.queue = this.host.pending(this.peer)
    this.head = 0
  }

  private scheduleRetry(): void {
    if (this.closed) return
    clearTimeout(this.retryTimer)
    const delay = this.backoff * (0.5 + Math.random())
    this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.kick()
    }, delay)
    this.retryTimer.unref()
  }
}
