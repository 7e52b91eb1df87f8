/**
 * A member's side of the relay mailbox (SPEC.md §12.4). One stream per connected relay: it
 * deposits sealed DMs for recipients we cannot reach (the relay answers `h` once they are on
 * its disk, and later `d` once the recipient took them) and receives the mail the relay held
 * for us, which goes through the same receive choke-point as a direct DM before it is acked.
 *
 * Deposits go, in send order, to the first relay (in the mesh's order) with an open stream.
 * Whatever was not acknowledged when a stream dies is deposited again, from the start of the
 * queue: the relay keeps one copy per message id, and the recipient's inbox another.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils'
import { MAX_ACK_IDS, RETRY_MAX_MS } from '../constants.js'
import { type DmEnvelope, decodeDm, idText } from '../envelope.js'
import { lpOptions } from '../lp.js'
import type { OutboxItem } from '../outbox.js'
import { Pump, TurnFlusher } from '../../serial.js'
import type { MeshLibp2p } from '../../transport/index.js'
import {
  decodeMailboxFrame,
  encodeMailboxFrame,
  MAILBOX_WINDOW,
  type MailboxFrame,
  MAX_MAILBOX_FRAME_BYTES,
  type Refusal
} from './frames.js'

const log = logger('claudemesh:mailbox')

/** A relay stream with deposits in flight and nothing heard for this long is presumed dead. */
export const MAILBOX_ACK_TIMEOUT_MS = 15_000

export interface MailboxHost {
  /** the receive choke-point, given the envelope decoded once here; resolves the id to ack, or undefined when refused */
  accept: (envelope: Uint8Array, decoded: DmEnvelope) => Promise<string | undefined>
  /** deposits are on the disk of the relay with this PeerId */
  held: (items: OutboxItem[], relay: string) => Promise<void>
  /** a relay says these deposits reached their recipients */
  delivered: (ids: string[]) => Promise<void>
  /** a relay refused these deposits for good */
  refused: (items: OutboxItem[], why: Refusal) => Promise<void>
}

interface Session {
  relay: string
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** ids deposited on this stream and not yet answered */
  inflight: Set<string>
  lastHeard: number
  /** mail acks and receipt acks waiting for this turn's flush */
  acks: { a: Uint8Array[]; n: Uint8Array[]; k: Uint8Array[] }
  /** mail and receipt acks go out once per turn of the event loop */
  flusher: TurnFlusher
}

export class MailboxClient {
  readonly stats = { deposited: 0, held: 0, received: 0, receipts: 0, refused: 0 }
  /** DMs each relay handed us from its mailbox since start */
  private readonly receivedFrom = new Map<string, number>()
  private readonly relays: PeerId[]
  private readonly sessions = new Map<string, Session>()
  private readonly opening = new Set<string>()
  /** deposits waiting for a relay's `h`, in send order */
  private readonly queue = new Map<string, OutboxItem>()
  /**
   * The deposit stream's cursor (`pump`): `order[head..]` is, in send order, what `session`
   * has not written yet; entries that left the queue meanwhile are skipped when the cursor
   * reaches them. A round costs what it sends, not the window's worth already in flight
   * (a burst of 1000 deposits rescanned up to 1000 per ack). Made again for another stream.
   */
  private cursor: { session?: Session; order: OutboxItem[]; head: number } = { order: [], head: 0 }
  private readonly perPeer = new Map<string, number>()
  private pausedUntil = 0
  private backoff = 1_000
  private timer?: ReturnType<typeof setInterval>
  private running = false

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly protocol: string,
    relays: string[],
    private readonly host: MailboxHost
  ) {
    this.relays = relays.map(r => peerIdFromString(r))
  }

  /** whether the mailbox stream to this relay is open */
  hasSession(relay: string): boolean {
    return this.sessions.has(relay)
  }

  /** How many DMs this relay's mailbox handed us since start (what it held for this session). */
  received(relay: string): number {
    return this.receivedFrom.get(relay) ?? 0
  }

  /** whether deposits can go out now: a relay's mailbox stream is open */
  get ready(): boolean {
    return this.sessions.size > 0
  }

  /** A relay learnt after start (SPEC.md §12.1): deposit there too, after the earlier ones. */
  addRelay(relay: string): void {
    const id = peerIdFromString(relay)
    if (this.relays.some(r => r.equals(id))) return
    this.relays.push(id)
    this.tick()
  }

  /** Send what waits now (a stop is flushing). */
  nudge(): void {
    this.kick()
  }

  async start(): Promise<void> {
    this.running = true
    this.libp2p.addEventListener('connection:open', this.onConnect)
    this.timer = setInterval(() => {
      this.tick()
    }, 1_000)
    this.timer.unref()
    this.tick()
  }

  stop(): void {
    this.running = false
    clearInterval(this.timer)
    this.libp2p.removeEventListener('connection:open', this.onConnect)
    for (const s of this.sessions.values()) s.stream.abort(new Error('mailbox stopped'))
    this.sessions.clear()
  }

  /** Whether messages for this peer are waiting for a relay to take them. */
  has(peer: string): boolean {
    return (this.perPeer.get(peer) ?? 0) > 0
  }

  get queued(): number {
    return this.queue.size
  }

  /** Hand durable outbox items to the mailbox; they keep their order. */
  deposit(items: OutboxItem[]): void {
    for (const item of items) {
      if (this.queue.has(item.id)) continue
      this.queue.set(item.id, item)
      if (this.cursor.session != null) this.cursor.order.push(item)
      this.perPeer.set(item.to, (this.perPeer.get(item.to) ?? 0) + 1)
    }
    this.kick()
  }

  private forget(ids: string[]): OutboxItem[] {
    const out: OutboxItem[] = []
    for (const id of ids) {
      const item = this.queue.get(id)
      if (item == null) continue
      this.queue.delete(id)
      out.push(item)
      const n = (this.perPeer.get(item.to) ?? 1) - 1
      if (n > 0) this.perPeer.set(item.to, n)
      else this.perPeer.delete(item.to)
    }
    return out
  }

  private tick(): void {
    if (!this.running) return
    for (const relay of this.relays) {
      const id = relay.toString()
      const s = this.sessions.get(id)
      if (s != null && s.inflight.size > 0 && Date.now() - s.lastHeard > MAILBOX_ACK_TIMEOUT_MS) {
        this.end(s, new Error('the relay stopped answering'))
      }
      if (!this.sessions.has(id) && this.libp2p.getConnections(relay).length > 0) void this.open(relay)
    }
    this.kick()
  }

  private readonly onConnect = (evt: CustomEvent<Connection>): void => {
    const peer = evt.detail.remotePeer
    if (this.relays.some(r => r.equals(peer))) void this.open(peer)
  }

  private async open(relay: PeerId): Promise<void> {
    const id = relay.toString()
    if (!this.running || this.sessions.has(id) || this.opening.has(id)) return
    this.opening.add(id)
    try {
      const stream = await this.libp2p.dialProtocol(relay, this.protocol, {
        signal: AbortSignal.timeout(10_000),
        runOnLimitedConnection: true
      })
      if (!this.running) {
        stream.abort(new Error('mailbox stopped'))
        return
      }
      const lp = lpStream(stream, lpOptions(MAX_MAILBOX_FRAME_BYTES))
      const acks: Session['acks'] = { a: [], n: [], k: [] }
      const s: Session = {
        relay: id,
        stream,
        lp,
        inflight: new Set(),
        lastHeard: Date.now(),
        acks,
        flusher: new TurnFlusher(
          () => ackFrames(acks),
          async frames => {
            await lp.writeV(frames)
          },
          err => {
            this.end(s, err)
          }
        )
      }
      this.sessions.set(id, s)
      log('mailbox stream to relay %s open', id)
      void this.read(s)
      this.kick()
    } catch (err) {
      log('opening the mailbox on relay %s failed: %s', id, (err as Error).message)
    } finally {
      this.opening.delete(id)
    }
  }

  private end(s: Session, err: Error): void {
    if (this.sessions.get(s.relay) !== s) return
    this.sessions.delete(s.relay)
    if (this.cursor.session === s) this.cursor = { order: [], head: 0 }
    s.stream.abort(err)
    log('mailbox stream to relay %s ended: %s', s.relay, err.message)
    // everything it did not acknowledge goes again, in order, to whichever relay is next
    s.inflight.clear()
    this.kick()
  }

  /** The relay deposits go to: the first one, in the mesh's order, with an open stream. */
  private primary(): Session | undefined {
    for (const r of this.relays) {
      const s = this.sessions.get(r.toString())
      if (s != null) return s
    }
    return undefined
  }

  private kick(): void {
    this.pump.kick()
  }

  private readonly pump = new Pump(async () => {
    const s = this.primary()
    if (!this.running || s == null || Date.now() < this.pausedUntil) return false
    let c = this.cursor
    if (c.session !== s) c = this.cursor = { session: s, order: [...this.queue.values()], head: 0 }
    const frames: Uint8Array[] = []
    while (c.head < c.order.length && s.inflight.size < MAILBOX_WINDOW) {
      const item = c.order[c.head++] as OutboxItem
      if (this.queue.get(item.id) !== item || s.inflight.has(item.id)) continue
      if (s.inflight.size === 0) s.lastHeard = Date.now()
      s.inflight.add(item.id)
      frames.push(encodeMailboxFrame({ t: 'm', e: item.env }))
      this.stats.deposited++
    }
    if (c.head >= 1024 && c.head * 2 >= c.order.length) {
      c.order.splice(0, c.head)
      c.head = 0
    }
    if (frames.length > 0)
      await s.lp.writeV(frames).catch(err => {
        this.end(s, err as Error)
      })
    return false
  })

  private async read(s: Session): Promise<void> {
    try {
      while (true) {
        const f = decodeMailboxFrame((await s.lp.read()).subarray())
        s.lastHeard = Date.now()
        this.onFrame(s, f)
      }
    } catch (err) {
      this.end(s, err as Error)
    }
  }

  private onFrame(s: Session, f: MailboxFrame): void {
    switch (f.t) {
      case 'm': {
        let env: DmEnvelope
        try {
          env = decodeDm(f.e)
        } catch {
          return // the relay checks every header; one that does not decode is dropped, never acked
        }
        const id = env.id
        this.stats.received++
        this.receivedFrom.set(s.relay, (this.receivedFrom.get(s.relay) ?? 0) + 1)
        void this.host.accept(f.e, env).then(
          ok => {
            ;(ok != null ? s.acks.a : s.acks.n).push(id)
            s.flusher.flush()
          },
          err => {
            log('storing mail from relay %s failed: %s', s.relay, (err as Error).message)
          }
        )
        return
      }
      case 'h': {
        const ids = f.ids.map(idText)
        for (const id of ids) s.inflight.delete(id)
        const items = this.forget(ids)
        this.stats.held += items.length
        this.backoff = 1_000
        if (items.length > 0)
          void this.host.held(items, s.relay).catch(err => {
            log('recording held messages failed: %s', (err as Error).message)
          })
        this.kick()
        return
      }
      case 'd': {
        this.stats.receipts += f.ids.length
        void this.host.delivered(f.ids.map(idText)).then(
          () => {
            s.acks.k.push(...f.ids)
            s.flusher.flush()
          },
          err => {
            log('recording receipts failed: %s', (err as Error).message)
          }
        )
        return
      }
      case 'x': {
        const ids = f.ids.map(idText)
        for (const id of ids) s.inflight.delete(id)
        this.stats.refused += ids.length
        if (f.why === 'quota' || f.why === 'full') {
          // keep them, in order, and try again later: everything after them waits too
          this.pausedUntil = Date.now() + this.backoff
          this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS)
          this.end(s, new Error(`the relay's mailbox is ${f.why === 'full' ? 'full' : 'over quota for a recipient'}`))
          return
        }
        const items = this.forget(ids)
        if (items.length > 0) void this.host.refused(items, f.why).catch(() => {})
        this.kick()
        return
      }
      default:
        log('unexpected %s frame from relay %s', f.t, s.relay)
    }
  }
}

function ackFrames(acks: Session['acks']): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (const t of ['a', 'n', 'k'] as const) {
    while (acks[t].length > 0) frames.push(encodeMailboxFrame({ t, ids: acks[t].splice(0, MAX_ACK_IDS) }))
  }
  return frames
}
