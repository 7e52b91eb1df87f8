/**
 * The relay's mailbox (SPEC.md §12.4): sealed DMs for members that are not connected, kept
 * in LevelDB until the recipient's node acknowledges them. A deposit is acknowledged (`h`)
 * only once it is in a synced write; group commit makes the writes of one turn share one
 * fsync. The relay reads envelope headers (sender, recipient, id, times) and nothing else.
 *
 * Layout in the `mailbox` sublevel:
 *   m!<recipient>!<seq:16>  → the envelope, as deposited (seq: strictly increasing)
 *   d!<sender>!<id>         → CBOR time: a receipt the sender has not taken yet
 */
import {
  type BatchOp,
  DEFAULT_TTL_MS,
  decodeDm,
  decodeMailboxFrame,
  encodeFrame,
  decodeFrame,
  encodeMailboxFrame,
  type GroupCommit,
  idBytes,
  idText,
  lpOptions,
  MAILBOX_WINDOW,
  Pump,
  TurnFlusher,
  type MailboxFrame,
  MAX_ACK_IDS,
  MAX_CLOCK_SKEW_MS,
  MAX_MAILBOX_FRAME_BYTES,
  mailboxProtocol,
  type Refusal,
  type Sublevel
} from '@claudemesh/node'
import { peerIdStringOfRaw } from '@claudemesh/node/identity'
import type { Connection, Stream } from '@libp2p/interface'
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils'
import type { MeshLibp2p } from '@claudemesh/node'
import { z } from 'zod'
import { TypedEventEmitter } from 'main-event'
import type { Log } from './log.js'

export interface MailboxEvents {
  /** a deposit is on disk and acknowledged to its sender */
  'mailbox:stored': CustomEvent<{ id: string; from: string; to: string }>
  /** a deposit was refused */
  'mailbox:refused': CustomEvent<{ from: string; why: Refusal }>
  /** the recipient took its mail (receipt: true) or refused it */
  'mailbox:taken': CustomEvent<{ to: string; ids: string[]; receipt: boolean }>
}

export interface MailboxLimits {
  /** most messages held for one recipient */
  perRecipient: number
  /** most envelope bytes held for one recipient */
  perRecipientBytes: number
  /** most envelope bytes held in all */
  totalBytes: number
  /** how long a receipt waits for its sender */
  receiptTtlMs: number
}

export const DEFAULT_LIMITS: MailboxLimits = {
  perRecipient: 10_000,
  perRecipientBytes: 64 * 1024 * 1024,
  totalBytes: 1024 * 1024 * 1024,
  receiptTtlMs: 8 * 24 * 3600_000
}

interface Held {
  id: string
  from: string
  to: string
  key: string
  size: number
  exp: number
  durable: Promise<boolean> | true
  /**
   * The envelope as deposited, kept while it waits to go out on its recipient's open stream
   * (`send`), so it need not be read back from LevelDB; dropped once written, and never more
   * than FRESH_BYTES_MAX in all. A resend (a new stream) reads the store.
   */
  bytes?: Uint8Array
}

/** the most deposited bytes held in memory for recipients with an open stream */
const FRESH_BYTES_MAX = 32 * 1024 * 1024

interface Session {
  peer: string
  /** the member's raw Ed25519 public key: a deposit's `from` must be these bytes */
  pub?: Uint8Array
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** mail written to this stream and not yet acknowledged */
  sent: Set<string>
  /**
   * The cursor over this member's unsent mail: `queue[head..]` is, in deposit order, what this
   * stream has not written yet — the box when the stream opened, then every deposit for the
   * member as it is indexed. Entries that left the box meanwhile (taken, expired, a failed
   * write) are skipped when the cursor reaches them. So a round costs what it sends, not the
   * depth of the box.
   */
  queue: Held[]
  head: number
  out: { h: Uint8Array[]; d: Uint8Array[] }
  refusals: Map<Refusal, Uint8Array[]>
  /** acks, receipts and refusals go out once per turn of the event loop */
  flusher: TurnFlusher
  /** sends the recipient its mail, one writer at a time */
  pump: Pump
}

const pad = (n: number): string => String(n).padStart(16, '0')
const AtSchema = z.number()

export class MailboxServer extends TypedEventEmitter<MailboxEvents> {
  readonly stats = {
    deposits: 0,
    stored: 0,
    duplicates: 0,
    delivered: 0,
    dropped: 0,
    expired: 0,
    refused: {} as Partial<Record<Refusal, number>>,
    receiptsTaken: 0
  }
  private readonly held = new Map<string, Held>()
  private readonly boxes = new Map<string, { mail: Map<string, Held>; bytes: number }>()
  private readonly receipts = new Map<string, Map<string, number>>()
  private readonly sessions = new Map<string, Session>()
  private totalBytes = 0
  /** bytes of envelopes kept in memory (`Held.bytes`) */
  private freshBytes = 0
  private lastSeq = 0
  private timer?: ReturnType<typeof setInterval>
  private readonly protocol: string
  private readonly limits: MailboxLimits

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly db: Sublevel,
    private readonly commit: GroupCommit,
    meshId: string,
    private readonly log: Log,
    limits: Partial<MailboxLimits> = {}
  ) {
    super()
    this.protocol = mailboxProtocol(meshId)
    this.limits = { ...DEFAULT_LIMITS, ...limits }
  }

  /** messages held, their bytes, recipients with mail, receipts waiting, members connected */
  get size(): { messages: number; bytes: number; recipients: number; receipts: number; sessions: number } {
    let receipts = 0
    for (const r of this.receipts.values()) receipts += r.size
    return { messages: this.held.size, bytes: this.totalBytes, recipients: this.boxes.size, receipts, sessions: this.sessions.size }
  }

  async start(): Promise<void> {
    for await (const [key, value] of this.db.iterator({ gte: 'm!', lt: 'm"' })) {
      let env
      try {
        env = decodeDm(value)
      } catch {
        await this.db.del(key)
        continue
      }
      const seq = Number(key.slice(key.lastIndexOf('!') + 1))
      this.lastSeq = Math.max(this.lastSeq, seq)
      this.index({
        id: idText(env.id),
        from: peerIdStringOfRaw(env.from),
        to: peerIdStringOfRaw(env.to),
        key,
        size: value.byteLength,
        exp: env.exp,
        durable: true
      })
    }
    for await (const [key, value] of this.db.iterator({ gte: 'd!', lt: 'd"' })) {
      const [, sender = '', id = ''] = key.split('!')
      this.receiptsOf(sender).set(id, decodeFrame(value, AtSchema, 64, 'receipt'))
    }
    await this.libp2p.handle(
      this.protocol,
      (stream, conn) => {
        this.serve(stream, conn)
      },
      { runOnLimitedConnection: true, maxInboundStreams: 4 }
    )
    this.timer = setInterval(() => {
      void this.sweep()
    }, 30_000)
    this.timer.unref()
    await this.sweep()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.libp2p.unhandle(this.protocol).catch(() => {})
    for (const s of this.sessions.values()) s.stream.abort(new Error('relay stopping'))
    this.sessions.clear()
    // deposits in the commit queue finish their write; nothing acked is left behind
    await Promise.all([...this.held.values()].map(h => h.durable))
  }

  private index(h: Held): void {
    this.held.set(h.id, h)
    let box = this.boxes.get(h.to)
    if (box == null) this.boxes.set(h.to, (box = { mail: new Map(), bytes: 0 }))
    box.mail.set(h.id, h)
    box.bytes += h.size
    this.totalBytes += h.size
    this.sessions.get(h.to)?.queue.push(h)
  }

  private unindex(h: Held): void {
    this.dropBytes(h)
    this.held.delete(h.id)
    // gone from the box: no longer counts against the window of the stream it was sent on
    this.sessions.get(h.to)?.sent.delete(h.id)
    const box = this.boxes.get(h.to)
    if (box?.mail.delete(h.id) === true) {
      box.bytes -= h.size
      this.totalBytes -= h.size
      if (box.mail.size === 0) this.boxes.delete(h.to)
    }
  }

  private dropBytes(h: Held): void {
    if (h.bytes == null) return
    this.freshBytes -= h.bytes.byteLength
    h.bytes = undefined
  }

  private receiptsOf(sender: string): Map<string, number> {
    let r = this.receipts.get(sender)
    if (r == null) this.receipts.set(sender, (r = new Map()))
    return r
  }

  private serve(stream: Stream, conn: Connection): void {
    const peer = conn.remotePeer.toString()
    const old = this.sessions.get(peer)
    if (old != null) old.stream.abort(new Error('a newer mailbox stream from the same member'))
    const lp = lpStream(stream, lpOptions(MAX_MAILBOX_FRAME_BYTES))
    const out: Session['out'] = { h: [], d: [] }
    const refusals: Session['refusals'] = new Map()
    const s: Session = {
      peer,
      pub: conn.remotePeer.publicKey?.raw,
      stream,
      lp,
      sent: new Set(),
      // a new stream sends everything held from the start (§12.3), in deposit order
      queue: [...(this.boxes.get(peer)?.mail.values() ?? [])],
      head: 0,
      out,
      refusals,
      flusher: new TurnFlusher(
        () => answerFrames(out, refusals),
        async frames => {
          await lp.writeV(frames)
        },
        err => {
          stream.abort(err)
        }
      ),
      pump: new Pump(
        async () => this.send(s),
        err => {
          stream.abort(err)
        }
      )
    }
    this.sessions.set(peer, s)
    this.log.debug('mailbox open', { peer, held: this.boxes.get(peer)?.mail.size ?? 0 })
    const mine = this.receipts.get(peer)
    if (mine != null && mine.size > 0) {
      s.out.d.push(...[...mine.keys()].map(idBytes))
      s.flusher.flush()
    }
    s.pump.kick()
    void this.read(s)
  }

  private async read(s: Session): Promise<void> {
    try {
      while (true) {
        const f = decodeMailboxFrame((await s.lp.read()).subarray())
        this.onFrame(s, f)
      }
    } catch (err) {
      if ((err as Error).name !== 'UnexpectedEOFError')
        this.log.debug('mailbox stream ended', { peer: s.peer, error: (err as Error).message })
      s.stream.abort(err as Error)
    } finally {
      if (this.sessions.get(s.peer) === s) this.sessions.delete(s.peer)
    }
  }

  private onFrame(s: Session, f: MailboxFrame): void {
    switch (f.t) {
      case 'm':
        this.deposit(s, f.e)
        return
      case 'a':
        void this.taken(s, f.ids.map(idText), true)
        return
      case 'n':
        void this.taken(s, f.ids.map(idText), false)
        return
      case 'k':
        void this.receiptsTaken(s, f.ids.map(idText))
        return
      default:
        throw new Error(`a member may not send "${f.t}" frames`)
    }
  }

  private refuse(s: Session, id: Uint8Array, why: Refusal): void {
    this.stats.refused[why] = (this.stats.refused[why] ?? 0) + 1
    let list = s.refusals.get(why)
    if (list == null) s.refusals.set(why, (list = []))
    list.push(id)
    s.flusher.flush()
    this.safeDispatchEvent('mailbox:refused', { detail: { from: s.peer, why } })
  }

  /** One deposit: checked, quota-bound, written with a synced group commit, then acked. */
  private deposit(s: Session, bytes: Uint8Array): void {
    this.stats.deposits++
    let env
    try {
      env = decodeDm(bytes)
    } catch (err) {
      this.log.warn('refused a deposit that is not a DM envelope', { peer: s.peer, error: (err as Error).message })
      return
    }
    const id = idText(env.id)
    // the sender is the stream's member: compare the key's bytes, no PeerId string to build
    const from = s.pub != null ? (sameBytes(env.from, s.pub) ? s.peer : '') : peerIdStringOfRaw(env.from)
    const now = Date.now()
    if (from !== s.peer) {
      this.refuse(s, env.id, 'invalid')
      return
    }
    if (env.exp <= now) {
      this.refuse(s, env.id, 'expired')
      return
    }
    if (env.ts > now + MAX_CLOCK_SKEW_MS || env.exp - env.ts > DEFAULT_TTL_MS * 4) {
      this.refuse(s, env.id, 'invalid')
      return
    }
    const existing = this.held.get(id)
    if (existing != null) {
      if (existing.from !== from) {
        this.refuse(s, env.id, 'invalid')
        return
      }
      this.stats.duplicates++
      void Promise.resolve(existing.durable).then(ok => {
        if (ok) this.ack(s, env.id)
      })
      return
    }
    const to = peerIdStringOfRaw(env.to)
    const box = this.boxes.get(to)
    if ((box?.mail.size ?? 0) >= this.limits.perRecipient || (box?.bytes ?? 0) + bytes.byteLength > this.limits.perRecipientBytes) {
      this.refuse(s, env.id, 'quota')
      return
    }
    if (this.totalBytes + bytes.byteLength > this.limits.totalBytes) {
      this.refuse(s, env.id, 'full')
      return
    }
    this.lastSeq = Math.max(now * 1000, this.lastSeq + 1)
    const key = `m!${to}!${pad(this.lastSeq)}`
    const h: Held = { id, from, to, key, size: bytes.byteLength, exp: env.exp, durable: true }
    // its recipient's stream is open: it goes out as soon as it is on disk (a decoded frame's
    // byte string is a copy of its own, so keeping it pins no larger buffer)
    if (this.sessions.has(to) && this.freshBytes + bytes.byteLength <= FRESH_BYTES_MAX) {
      h.bytes = bytes
      this.freshBytes += bytes.byteLength
    }
    h.durable = this.commit.write([{ type: 'put', sublevel: this.db, key, value: bytes } as BatchOp]).then(
      () => {
        h.durable = true
        this.stats.stored++
        this.ack(s, env.id)
        this.safeDispatchEvent('mailbox:stored', { detail: { id, from, to } })
        const r = this.sessions.get(to)
        r?.pump.kick()
        return true
      },
      err => {
        this.log.error('mailbox write failed', { error: (err as Error).message })
        this.unindex(h)
        // the mail behind it no longer waits for it
        this.sessions.get(to)?.pump.kick()
        return false
      }
    )
    this.index(h)
  }

  private ack(s: Session, id: Uint8Array): void {
    s.out.h.push(id)
    s.flusher.flush()
  }

  /**
   * One round of a recipient's mail, in deposit order, with at most a window unacknowledged;
   * true when it wrote some. It reads from the stream's cursor (`Session.queue`), so a round
   * never rescans what the stream has already sent.
   */
  private async send(s: Session): Promise<boolean> {
    if (this.sessions.get(s.peer) !== s) return false
    const batch: Held[] = []
    const q = s.queue
    while (s.head < q.length && s.sent.size + batch.length < MAILBOX_WINDOW && batch.length < 256) {
      const h = q[s.head] as Held
      if (this.held.get(h.id) !== h) {
        s.head++ // left the box before its turn
        continue
      }
      if (h.durable !== true) break // keep the order: nothing overtakes a write in flight
      s.head++
      batch.push(h)
    }
    if (s.head >= 1024 && s.head * 2 >= q.length) {
      q.splice(0, s.head)
      s.head = 0
    }
    if (batch.length === 0) return false
    for (const h of batch) s.sent.add(h.id)
    // what is not kept in memory is read back from the store; taken before the read, which a
    // sweep or an unindex may outlast (each read lines up with a batch entry kept nothing)
    const kept = batch.map(h => h.bytes)
    const stored = batch.filter((_, i) => kept[i] == null)
    const read = stored.length > 0 ? await this.db.getMany(stored.map(h => h.key)) : []
    const frames: Uint8Array[] = []
    let r = 0
    for (const [i, h] of batch.entries()) {
      const v = kept[i] ?? read[r++]
      this.dropBytes(h)
      // left the box while the store was read (taken, expired)
      if (v != null && this.held.get(h.id) === h) frames.push(encodeMailboxFrame({ t: 'm', e: v }))
      else s.sent.delete(h.id)
    }
    await s.lp.writeV(frames)
    return true
  }

  /** The recipient has mail on its disk (or refused it): delete it, and tell the senders. */
  private async taken(s: Session, ids: string[], receipt: boolean): Promise<void> {
    const ops: BatchOp[] = []
    const notify = new Map<string, string[]>()
    const now = Date.now()
    const at = receipt ? encodeFrame(now) : undefined
    for (const id of ids) {
      s.sent.delete(id)
      const h = this.held.get(id)
      if (h == null || h.to !== s.peer || h.durable !== true) continue
      this.unindex(h)
      ops.push({ type: 'del', sublevel: this.db, key: h.key } as BatchOp)
      if (receipt) {
        this.stats.delivered++
        ops.push({ type: 'put', sublevel: this.db, key: `d!${h.from}!${id}`, value: at } as BatchOp)
        this.receiptsOf(h.from).set(id, now)
        const list = notify.get(h.from)
        if (list == null) notify.set(h.from, [id])
        else list.push(id)
      } else {
        this.stats.dropped++
      }
    }
    await this.commit.write(ops)
    if (ops.length > 0) this.safeDispatchEvent('mailbox:taken', { detail: { to: s.peer, ids, receipt } })
    for (const [sender, list] of notify) {
      const ss = this.sessions.get(sender)
      if (ss == null) continue
      ss.out.d.push(...list.map(idBytes))
      ss.flusher.flush()
    }
    s.pump.kick()
  }

  private async receiptsTaken(s: Session, ids: string[]): Promise<void> {
    const mine = this.receipts.get(s.peer)
    const ops: BatchOp[] = []
    for (const id of ids) {
      if (mine?.delete(id) !== true) continue
      this.stats.receiptsTaken++
      ops.push({ type: 'del', sublevel: this.db, key: `d!${s.peer}!${id}` } as BatchOp)
    }
    if (mine?.size === 0) this.receipts.delete(s.peer)
    await this.commit.write(ops)
  }

  /** Acks, receipts and refusals leave once per turn of the event loop. */
  /** Drop mail past its expiry and receipts nobody came for. */
  private async sweep(now = Date.now()): Promise<void> {
    const ops: BatchOp[] = []
    for (const h of this.held.values()) {
      if (h.exp > now || h.durable !== true) continue
      this.unindex(h)
      this.stats.expired++
      ops.push({ type: 'del', sublevel: this.db, key: h.key } as BatchOp)
    }
    for (const [sender, r] of this.receipts) {
      for (const [id, at] of r) {
        if (at + this.limits.receiptTtlMs > now) continue
        r.delete(id)
        ops.push({ type: 'del', sublevel: this.db, key: `d!${sender}!${id}` } as BatchOp)
      }
      if (r.size === 0) this.receipts.delete(sender)
    }
    if (ops.length > 0) {
      await this.commit.write(ops)
      this.log.info('mailbox sweep', { removed: ops.length })
    }
  }
}

function answerFrames(out: Session['out'], refusals: Session['refusals']): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (const t of ['h', 'd'] as const) {
    while (out[t].length > 0) frames.push(encodeMailboxFrame({ t, ids: out[t].splice(0, MAX_ACK_IDS) }))
  }
  for (const [why, list] of refusals) {
    while (list.length > 0) frames.push(encodeMailboxFrame({ t: 'x', why, ids: list.splice(0, MAX_ACK_IDS) }))
  }
  refusals.clear()
  return frames
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
