/**
 * The inbox (SPEC.md §8.4): every message that reached this session, once, in LevelDB.
 * Layout in the `inbox` sublevel (store layout 2):
 *   m!<order:16>!<id>        → CBOR InboxMessage (arrival order)
 *   u!<order:16>!<id>        → ''   (unread; removed when read)
 * `order` is the message's `seq`: arrival time in microseconds, made strictly increasing, so
 * messages that arrive in the same millisecond keep their arrival order. Records written
 * before `seq` existed have none and are keyed by `receivedAt` (ms), which sorts before.
 * A message is written with a synced group commit before it is acknowledged; its id stays
 * (in memory too, id → arrival) for as long as the message, which dedupes retries and replays.
 */
import { z } from 'zod'
import { decodeFrame, encodeFrame } from '../codec.js'
import type { Sublevel } from '../store/index.js'
import type { BatchOp, GroupCommit, WriteOp } from '../store/commit.js'
import { MAX_ENVELOPE_BYTES, PRIORITIES } from './constants.js'

export const InboxMessageSchema = z.object({
  id: z.string(),
  from: z.string(),
  fromName: z.string(),
  to: z.string(),
  group: z.string().optional(),
  priority: z.enum(PRIORITIES),
  body: z.string(),
  sentAt: z.number(),
  receivedAt: z.number(),
  replyTo: z.string().optional(),
  readAt: z.number().optional(),
  seq: z.number().optional()
})
export type InboxMessage = z.infer<typeof InboxMessageSchema>

const pad = (n: number): string => String(n).padStart(16, '0')
/** the value of an unread mark (`u!`): LevelDB copies it, so one serves every mark */
const EMPTY = new Uint8Array(0)
const order = (m: InboxMessage): number => m.seq ?? m.receivedAt

export class Inbox {
  /** ids being committed right now: a concurrent duplicate waits for the same write */
  private readonly inflight = new Map<string, Promise<boolean>>()
  /** the newest add, settled: each add resolves after it (see add) */
  private tail: Promise<void> = Promise.resolve()
  private unreadCount = -1
  private lastSeq = 0
  /** unread messages per sender (keys in arrival order) and their body bytes: caps and fair order */
  private readonly bySender = new UnreadIndex()

  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit
  ) {}

  /** every id in the inbox and its arrival time: dedupe and lookup without a disk read */
  private readonly ids = new Map<string, number>()

  async start(): Promise<void> {
    let n = 0
    for await (const _ of this.db.keys({ gte: 'u!', lt: 'u"' })) n++
    this.unreadCount = n
    for await (const k of this.db.keys({ gte: 'u!', lt: 'u"' })) {
      const v = await this.db.get(`m!${k.slice(2)}`)
      if (v != null) this.bySender.add(decode(v), k.slice(2))
    }
    for await (const k of this.db.keys({ gte: 'm!', lt: 'm"' })) this.ids.set(k.slice(19), Number(k.slice(2, 18)))
    for await (const k of this.db.keys({ gte: 'm!', lt: 'm"', reverse: true, limit: 1 })) this.lastSeq = Number(k.slice(2, 18))
  }

  get unread(): number {
    return Math.max(0, this.unreadCount)
  }

  /** Unread messages (and body bytes) of one sender, and in total: the caps (SPEC.md §8.8). */
  readonly counts = {
    of: (sender: string): { count: number; bytes: number } => this.bySender.of(sender),
    total: (): { count: number; bytes: number } => ({ count: this.unread, bytes: this.bySender.bytes })
  }

  /**
   * Unread messages, fairly (SPEC.md §8.8): one from each sender in turn, senders in order of
   * their oldest unread message, so a flood never buries another sender's message. `held`:
   * how many more unread each sender has beyond those returned.
   */
  async fair(limit: number): Promise<{ messages: InboxMessage[]; held: Array<{ from: string; count: number }> }> {
    const { keys, held } = this.bySender.fair(limit)
    const messages: InboxMessage[] = []
    for (const k of keys) {
      const v = await this.db.get(`m!${k}`)
      if (v != null) messages.push(decode(v))
    }
    return { messages, held }
  }

  /** Synchronous: the DM choke-point and the group validator ask for every envelope they take. */
  has(id: string): boolean {
    return this.ids.has(id)
  }

  /**
   * Store a message durably unless it is already here. Resolves true when it was new (and is
   * now on disk), false for a duplicate. Either way the caller may acknowledge it.
   */
  add(m: InboxMessage): Promise<boolean> {
    const pending = this.inflight.get(m.id)
    if (pending != null) return pending.then(() => false)
    if (this.ids.has(m.id)) return Promise.resolve(false)
    const seq = (m.seq = this.lastSeq = Math.max(m.receivedAt * 1000, this.lastSeq + 1))
    const before = this.tail
    // a chain of promises, not async functions: a burst keeps thousands of adds waiting on the
    // fsync, and a suspended async function keeps its frame until then. The writes batch
    // freely; each add resolves after every earlier one, so a message is counted and announced
    // (message:receive) in the order it was stored (SPEC.md §12.4)
    const p = this.commit
      .write(this.addOps(m))
      .then(() => before)
      .then(() => {
        this.ids.set(m.id, seq)
        this.unreadCount++
        this.bySender.add(m, `${pad(seq)}!${m.id}`)
        return true
      })
    this.inflight.set(m.id, p)
    this.tail = p.then(
      () => {},
      () => {}
    )
    return p.finally(() => {
      this.inflight.delete(m.id)
    })
  }

  /** The message's value is encoded when its batch is written (LazyPut): nothing changes `m` before its write resolves. */
  private addOps(m: InboxMessage): WriteOp[] {
    const k = `${pad(order(m))}!${m.id}`
    return [
      { type: 'put', sublevel: this.db, key: `m!${k}`, encode: () => encodeFrame(m) },
      { type: 'put', sublevel: this.db, key: `u!${k}`, value: EMPTY }
    ] as WriteOp[]
  }

  async get(id: string): Promise<InboxMessage | undefined> {
    const at = this.ids.get(id)
    if (at == null) return undefined
    const v = await this.db.get(`m!${pad(at)}!${id}`)
    return v == null ? undefined : decode(v)
  }

  /** Messages in arrival order; unread only by default. */
  async list(opts: { unreadOnly?: boolean; limit?: number; newest?: boolean } = {}): Promise<InboxMessage[]> {
    const range = { limit: opts.limit ?? -1, reverse: opts.newest === true }
    const out: InboxMessage[] = []
    if (opts.unreadOnly === false) {
      for await (const v of this.db.values({ ...range, gte: 'm!', lt: 'm"' })) out.push(decode(v))
    } else {
      for await (const key of this.db.keys({ ...range, gte: 'u!', lt: 'u"' })) {
        const v = await this.db.get(`m!${key.slice(2)}`)
        if (v != null) out.push(decode(v))
      }
    }
    return opts.newest === true ? out.reverse() : out
  }

  /**
   * Read marks check, then write: two pushes that mark at once would both see a message
   * unread and both show it. They run one at a time, so each message is reported as newly
   * read to exactly one caller (SPEC.md §13.3).
   */
  private marking: Promise<unknown> = Promise.resolve()

  private async serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.marking.then(fn)
    this.marking = run.catch(() => {})
    return run
  }

  /** Undo a read mark: a push that never reached the model gives its messages back. */
  async markUnread(ids: string[]): Promise<void> {
    await this.serially(async () => this.writeUnread(ids))
  }

  private async writeUnread(ids: string[]): Promise<void> {
    const ops: BatchOp[] = []
    const back: Array<[InboxMessage, string]> = []
    for (const id of new Set(ids)) {
      const m = await this.get(id)
      if (m?.readAt == null) continue
      const { readAt: _, ...unread } = m
      const k = `${pad(order(m))}!${id}`
      ops.push({ type: 'put', sublevel: this.db, key: `m!${k}`, value: encodeFrame(unread) } as BatchOp)
      ops.push({ type: 'put', sublevel: this.db, key: `u!${k}`, value: EMPTY } as BatchOp)
      back.push([unread, k])
    }
    await this.commit.write(ops)
    this.unreadCount += back.length
    for (const [m, k] of back) this.bySender.add(m, k)
  }

  /** Mark messages read (durably); returns those that were unread until now. */
  async markRead(ids: string[], at = Date.now()): Promise<InboxMessage[]> {
    return this.serially(async () => this.writeRead(ids, at))
  }

  private async writeRead(ids: string[], at: number): Promise<InboxMessage[]> {
    const changed: InboxMessage[] = []
    const ops: BatchOp[] = []
    for (const id of new Set(ids)) {
      const m = await this.get(id)
      if (m == null || m.readAt != null) continue
      const read = { ...m, readAt: at }
      changed.push(read)
      ops.push({ type: 'put', sublevel: this.db, key: `m!${pad(order(m))}!${id}`, value: encodeFrame(read) } as BatchOp)
      ops.push({ type: 'del', sublevel: this.db, key: `u!${pad(order(m))}!${id}` } as BatchOp)
    }
    await this.commit.write(ops)
    this.unreadCount -= changed.length
    for (const m of changed) this.bySender.remove(m, `${pad(order(m))}!${m.id}`)
    return changed
  }
}

/** Per-sender unread keys (`<order>!<id>`, sorted) and body bytes, in memory. */
class UnreadIndex {
  private readonly senders = new Map<string, { keys: string[]; bytes: number }>()
  bytes = 0

  of(sender: string): { count: number; bytes: number } {
    const s = this.senders.get(sender)
    return { count: s?.keys.length ?? 0, bytes: s?.bytes ?? 0 }
  }

  add(m: InboxMessage, key: string): void {
    let s = this.senders.get(m.from)
    if (s == null) this.senders.set(m.from, (s = { keys: [], bytes: 0 }))
    const i = sortedIndex(s.keys, key)
    if (s.keys[i] === key) return
    s.keys.splice(i, 0, key)
    const size = Buffer.byteLength(m.body)
    s.bytes += size
    this.bytes += size
  }

  remove(m: InboxMessage, key: string): void {
    const s = this.senders.get(m.from)
    if (s == null) return
    const i = sortedIndex(s.keys, key)
    if (s.keys[i] !== key) return
    s.keys.splice(i, 1)
    const size = Buffer.byteLength(m.body)
    s.bytes -= size
    this.bytes -= size
    if (s.keys.length === 0) this.senders.delete(m.from)
  }

  /** Round robin over senders ordered by their oldest unread key. */
  fair(limit: number): { keys: string[]; held: Array<{ from: string; count: number }> } {
    const senders = [...this.senders].sort((a, b) => ((a[1].keys[0] as string) < (b[1].keys[0] as string) ? -1 : 1))
    const keys: string[] = []
    const taken = new Map<string, number>()
    for (let round = 0; keys.length < limit; round++) {
      let any = false
      for (const [from, s] of senders) {
        if (round >= s.keys.length || keys.length >= limit) continue
        keys.push(s.keys[round] as string)
        taken.set(from, round + 1)
        any = true
      }
      if (!any) break
    }
    const held = senders.map(([from, s]) => ({ from, count: s.keys.length - (taken.get(from) ?? 0) })).filter(h => h.count > 0)
    return { keys, held: held.sort((a, b) => b.count - a.count) }
  }
}

function sortedIndex(keys: string[], key: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((keys[mid] as string) < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

function decode(v: Uint8Array): InboxMessage {
  return decodeFrame(v, InboxMessageSchema, MAX_ENVELOPE_BYTES * 2, 'inbox record')
}

/** Store layout 1 → 2: inbox records keyed by arrival, no separate order index. */
export async function migrateInbox1to2(db: Sublevel): Promise<BatchOp[]> {
  const ops: BatchOp[] = []
  for await (const [key, value] of db.iterator({ gte: 'm!', lt: 'm"' })) {
    if (key.length !== 2 + 32) continue // already in the new layout
    const m = decode(value)
    ops.push({ type: 'put', sublevel: db, key: `m!${pad(m.receivedAt)}!${m.id}`, value } as BatchOp)
    ops.push({ type: 'del', sublevel: db, key } as BatchOp)
  }
  for await (const key of db.keys({ gte: 'o!', lt: 'o"' })) ops.push({ type: 'del', sublevel: db, key } as BatchOp)
  return ops
}
