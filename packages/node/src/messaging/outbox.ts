/**
 * The outbox and per-message status (SPEC.md §8.3, §8.5). A DM is accepted only once its
 * envelope is durably in the outbox; it stays there until the recipient's node acks it or it
 * expires. Status per message id: pending → (held) → delivered → read, or failed.
 * Layout in the `outbox` sublevel:
 *   q!<id>   → CBOR OutboxItem (removed on ack or expiry); its status is `pending`; its
 *              `seq` (send order, µs, strictly increasing) orders the queue when it is reloaded
 *   s!<id>   → CBOR MessageStatus, written once the message leaves the queue
 *   h!<id>   → CBOR {to, exp, relay?}: held by a relay's mailbox (that relay's PeerId, when
 *              known), no delivery receipt yet (§12.4)
 * One write to accept a message, one batch to settle it: the hot path stays short.
 */
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import type { BatchOp, GroupCommit, WriteOp } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import { MAX_DM_FRAME_BYTES } from './constants.js'
import { RecentStatuses } from './recent.js'

export const STATUSES = ['pending', 'held', 'delivered', 'read', 'failed'] as const
export type DeliveryStatus = (typeof STATUSES)[number]

const OutboxItemSchema = z.object({
  id: z.string(),
  to: z.string(),
  toName: z.string().optional(),
  env: zBytes(),
  createdAt: z.number(),
  exp: z.number(),
  seq: z.number().optional()
})
export type OutboxItem = z.infer<typeof OutboxItemSchema>

const StatusSchema = z.object({
  id: z.string(),
  to: z.string(),
  toName: z.string(),
  group: z.string().optional(),
  status: z.enum(STATUSES),
  at: z.number(),
  times: z.record(z.string(), z.number()),
  reads: z.record(z.string(), z.number()).optional(),
  error: z.string().optional()
})
export type MessageStatus = z.infer<typeof StatusSchema>

const HeldSchema = z.object({ to: z.string(), exp: z.number(), relay: z.string().max(128).optional() })

/** How many stored statuses `recent` reads at most: ids are random, so it cannot seek to the newest. */
export const MAX_RECENT_SCAN = 20_000

const RANK: Record<DeliveryStatus, number> = { pending: 0, held: 1, delivered: 2, read: 3, failed: 4 }

export class Outbox {
  /** pending items per recipient, in send order */
  private readonly byPeer = new Map<string, Map<string, OutboxItem>>()
  /** the status of every queued item, so acks need no read */
  private readonly queued = new Map<string, MessageStatus>()
  /** messages a relay holds for each recipient, id → expiry and relay, until a receipt or expiry */
  private readonly held = new Map<string, Map<string, { exp: number; relay?: string }>>()
  /**
   * the statuses of held messages this process set held, so the relay's receipt (`d`, one per
   * DM, right after its `h` when the recipient is online) needs no read of `s!<id>`
   */
  private readonly heldStatus = new Map<string, MessageStatus>()
  /** the newest statuses, kept in memory once a live view asked for them */
  private readonly newest = new RecentStatuses<MessageStatus>()
  /** send order across restarts: microseconds, strictly increasing */
  private lastSeq = 0

  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit
  ) {}

  async start(): Promise<void> {
    // keys are random ids: restore send order from each item's seq (older items: createdAt)
    const items: OutboxItem[] = []
    for await (const v of this.db.values({ gte: 'q!', lt: 'q"' }))
      items.push(decodeFrame(v, OutboxItemSchema, MAX_DM_FRAME_BYTES, 'outbox item'))
    items.sort((a, b) => (a.seq ?? a.createdAt * 1000) - (b.seq ?? b.createdAt * 1000))
    for (const item of items) {
      this.lastSeq = Math.max(this.lastSeq, item.seq ?? 0)
      this.queue(item, newStatus(item.id, item.to, item.toName ?? '', 'pending', item.createdAt))
    }
    for await (const [k, v] of this.db.iterator({ gte: 'h!', lt: 'h"' })) {
      const h = decodeFrame(v, HeldSchema, 1024, 'held record')
      this.track(h.to, k.slice(2), h.exp, h.relay)
    }
  }

  /** Whether an outbox sublevel holds any queued DM, without loading it (a courier's first look). */
  static async hasQueued(db: Sublevel): Promise<boolean> {
    for await (const _ of db.keys({ gte: 'q!', lt: 'q"', limit: 1 })) return true
    return false
  }

  /** How many of this peer's messages a relay holds without a delivery receipt yet. */
  heldFor(peer: string): number {
    return this.held.get(peer)?.size ?? 0
  }

  /** Every message held by a relay, across recipients. */
  get heldCount(): number {
    let n = 0
    for (const m of this.held.values()) n += m.size
    return n
  }

  /** Messages held per relay PeerId (those held before relays were recorded count under ''). */
  heldByRelay(): Map<string, number> {
    const out = new Map<string, number>()
    for (const m of this.held.values()) for (const h of m.values()) out.set(h.relay ?? '', (out.get(h.relay ?? '') ?? 0) + 1)
    return out
  }

  peers(): string[] {
    return [...this.byPeer.keys()]
  }

  pending(peer: string): OutboxItem[] {
    return [...(this.byPeer.get(peer)?.values() ?? [])]
  }

  get size(): number {
    let n = 0
    for (const m of this.byPeer.values()) n += m.size
    return n
  }

  /**
   * Durably queue DMs and record them pending; resolves once on disk. `more` joins the same
   * synced batch (a schedule records its fired occurrence with its messages, SPEC.md §18.3).
   */
  enqueue(items: Array<OutboxItem & { toName: string }>, extra: MessageStatus[] = [], more: BatchOp[] = []): Promise<void> {
    const ops: WriteOp[] = [...more]
    try {
      for (const item of items) item.seq = this.lastSeq = Math.max(item.createdAt * 1000, this.lastSeq + 1)
      // encoded when the batch is written (LazyPut): nothing changes an item before its write resolves
      for (const item of items)
        ops.push({ type: 'put', sublevel: this.db, key: `q!${item.id}`, encode: () => encodeFrame(item) } as WriteOp)
      for (const s of extra) ops.push(this.put(`s!${s.id}`, encodeFrame(s)))
    } catch (err) {
      return Promise.reject(err)
    }
    // not async: a suspended async function keeps its locals (the operations) until the fsync,
    // and a burst keeps thousands of sends waiting on it
    return this.commit.write(ops).then(() => {
      for (const item of items) this.queue(item, newStatus(item.id, item.to, item.toName, 'pending', item.createdAt))
      for (const s of extra) this.newest.note(s)
    })
  }

  /** The recipient's node (or, `held`, the relay `relay`) has the messages on disk: drop them from the outbox. */
  async acked(peer: string, ids: string[], status: DeliveryStatus = 'delivered', at = Date.now(), relay?: string): Promise<string[]> {
    return (
      await this.settle(
        ids.map(id => ({ id, to: peer })),
        status,
        at,
        relay
      )
    ).map(i => i.id)
  }

  /**
   * Messages to any recipients leave the queue with `status` (acked, held by the relay `relay`,
   * failed), in one synced batch. Everything the routing rule reads (the queue, the held set,
   * §12.4) changes at once, before the write: a message is never, even for a moment, neither
   * queued nor held, so a later DM to its recipient cannot take another path and overtake it.
   */
  async settle(
    items: Array<{ id: string; to: string }>,
    status: DeliveryStatus,
    at = Date.now(),
    relay?: string
  ): Promise<Array<{ id: string; to: string }>> {
    const ops: BatchOp[] = []
    const done: Array<{ id: string; to: string }> = []
    const unknown: Array<{ id: string; exp: number }> = []
    for (const { id, to } of items) {
      const q = this.byPeer.get(to)
      const item = q?.get(id)
      if (q == null || item == null) continue
      q.delete(id)
      if (q.size === 0) this.byPeer.delete(to)
      done.push({ id, to })
      ops.push({ type: 'del', sublevel: this.db, key: `q!${id}` } as BatchOp)
      const s = this.queued.get(id)
      if (s != null) ops.push(...this.advanceOps(s, status, at, item.exp, relay))
      else unknown.push({ id, exp: item.exp })
    }
    for (const { id, exp } of unknown) {
      const s = await this.status(id)
      if (s != null) ops.push(...this.advanceOps(s, status, at, exp, relay))
    }
    // the statuses stay readable in memory until they are on disk: a receipt racing this
    // write (a relay's `d` right after its `h`) must find and advance them
    try {
      await this.commit.write(ops)
    } finally {
      for (const { id } of done) this.queued.delete(id)
    }
    return done
  }

  /** A later status (read) for messages this peer received. Only the recipient may say so. */
  async advance(peer: string, ids: string[], status: DeliveryStatus, at = Date.now()): Promise<string[]> {
    const ops: BatchOp[] = []
    const changed: string[] = []
    for (const id of ids) {
      const s = await this.status(id)
      if (s == null) continue
      if (s.group != null) {
        if (s.reads?.[peer] != null) continue
        s.reads = { ...s.reads, [peer]: at }
        ops.push(this.put(`s!${id}`, encodeFrame(s)))
        this.newest.note(s)
        changed.push(id)
      } else if (s.to === peer) {
        const more = this.advanceOps(s, status, at)
        if (more.length > 0) {
          ops.push(...more)
          changed.push(id)
        }
      }
    }
    await this.commit.write(ops)
    return changed
  }

  /** A relay's receipt: held messages reached their recipients. Returns the changed statuses. */
  async delivered(ids: string[], at = Date.now()): Promise<MessageStatus[]> {
    const ops: BatchOp[] = []
    const changed: MessageStatus[] = []
    for (const id of ids) {
      const queued = this.queued.get(id)
      if (queued != null && this.byPeer.get(queued.to)?.has(id) === true) {
        // still queued here (a retry raced the receipt): it leaves the queue delivered
        if ((await this.acked(queued.to, [id], 'delivered', at)).length > 0) changed.push(queued)
        continue
      }
      // queued but leaving the queue right now (its `held` being written) counts as held here
      const s = queued ?? (await this.status(id))
      if (s == null || s.group != null) continue
      const more = this.advanceOps(s, 'delivered', at)
      if (more.length > 0) {
        ops.push(...more)
        changed.push(s)
      }
    }
    await this.commit.write(ops)
    return changed
  }

  /** Fail everything past its expiry; returns the failed items. */
  async expire(now = Date.now()): Promise<OutboxItem[]> {
    const dead: OutboxItem[] = []
    for (const q of this.byPeer.values()) for (const item of q.values()) if (item.exp <= now) dead.push(item)
    for (const item of dead) {
      await this.acked(item.to, [item.id], 'failed', now)
    }
    // held past its expiry with no receipt: the relay dropped it undelivered
    const ops: BatchOp[] = []
    for (const [to, m] of this.held) {
      for (const [id, { exp }] of m) {
        if (exp > now) continue
        const s = await this.status(id)
        if (s != null) ops.push(...this.advanceOps(s, 'failed', now))
        else this.untrack(to, id)
        dead.push({ id, to, env: new Uint8Array(0), createdAt: 0, exp })
      }
    }
    await this.commit.write(ops)
    return dead
  }

  async status(id: string): Promise<MessageStatus | undefined> {
    const queued = this.queued.get(id) ?? this.heldStatus.get(id)
    if (queued != null) return queued
    const v = await this.db.get(`s!${id}`)
    return v == null ? undefined : decodeFrame(v, StatusSchema, 64 * 1024, 'message status')
  }

  /**
   * The statuses of the latest `limit` messages this session sent, newest first (a live view's
   * "sent" list): the first call scans the store once (recent.ts), later ones read none.
   */
  async recent(limit: number): Promise<MessageStatus[]> {
    return this.newest.list(limit, async each => {
      let n = 0
      for await (const v of this.db.values({ gte: 's!', lt: 's"' })) {
        if (++n > MAX_RECENT_SCAN) break
        try {
          each(decodeFrame(v, StatusSchema, 64 * 1024, 'message status'))
        } catch {}
      }
      for (const s of this.queued.values()) each(s)
    })
  }

  private queue(item: OutboxItem, status?: MessageStatus): void {
    let q = this.byPeer.get(item.to)
    if (q == null) this.byPeer.set(item.to, (q = new Map()))
    q.set(item.id, item)
    if (status != null) {
      this.queued.set(item.id, status)
      this.newest.note(status)
    }
  }

  private put(key: string, value: Uint8Array): BatchOp {
    return { type: 'put', sublevel: this.db, key, value } as BatchOp
  }

  private advanceOps(s: MessageStatus, status: DeliveryStatus, at: number, exp = at, relay?: string): BatchOp[] {
    if (RANK[status] <= RANK[s.status]) return []
    const was = s.status
    s.status = status
    s.at = at
    s.times[status] = at
    this.newest.note(s)
    const ops = [this.put(`s!${s.id}`, encodeFrame(s))]
    if (status === 'held') {
      ops.push(this.put(`h!${s.id}`, encodeFrame(relay == null ? { to: s.to, exp } : { to: s.to, exp, relay })))
      this.track(s.to, s.id, exp, relay)
      this.heldStatus.set(s.id, s)
    } else if (was === 'held') {
      ops.push({ type: 'del', sublevel: this.db, key: `h!${s.id}` } as BatchOp)
      this.untrack(s.to, s.id)
    }
    return ops
  }

  private track(to: string, id: string, exp: number, relay?: string): void {
    let m = this.held.get(to)
    if (m == null) this.held.set(to, (m = new Map()))
    m.set(id, relay == null ? { exp } : { exp, relay })
  }

  private untrack(to: string, id: string): void {
    this.heldStatus.delete(id)
    const m = this.held.get(to)
    m?.delete(id)
    if (m?.size === 0) this.held.delete(to)
  }
}

export function newStatus(id: string, to: string, toName: string, status: DeliveryStatus, at: number, group?: string): MessageStatus {
  const s: MessageStatus = { id, to, toName, status, at, times: { [status]: at } }
  if (group != null) s.group = group
  return s
}
