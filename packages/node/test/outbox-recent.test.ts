/**
 * The outbox's "sent" list and held-by-relay counts (SPEC.md §19.1, §12.4): `recent` scans the
 * store once, then follows every status the outbox writes without reading the store again, and
 * agrees with a full scan; a held message remembers the relay that holds it across a restart.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeFrame, GroupCommit, openStore, SESSION_LAYOUT, type Store, sublevel } from '../src/index.js'
import { type MessageStatus, newStatus, Outbox } from '../src/messaging/outbox.js'
import { MAX_RECENT } from '../src/messaging/recent.js'
import { tempHome } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function store(): Promise<{ db: Store; dir: string }> {
  const t = await tempHome()
  const dir = join(t.home, 'db')
  const db = await openStore(dir, SESSION_LAYOUT)
  cleanups.push(async () => {
    await db.close().catch(() => {})
    await t.cleanup()
  })
  return { db, dir }
}

const id = (): string => randomBytes(16).toString('hex')

/** `n` delivered statuses written straight to the store, sent at base + i. */
async function stored(db: Store, n: number, base: number): Promise<MessageStatus[]> {
  const out = sublevel(db, 'outbox')
  const list: MessageStatus[] = []
  for (let i = 0; i < n; i += 1_000) {
    const batch = Array.from({ length: Math.min(1_000, n - i) }, (_, j) => {
      const s = newStatus(id(), `peer${(i + j) % 7}`, 'bob', 'pending', base + i + j)
      s.status = 'delivered'
      s.at = base + i + j + 5
      s.times.delivered = s.at
      return s
    })
    await db.batch(batch.map(s => ({ type: 'put', sublevel: out, key: `s!${s.id}`, value: encodeFrame(s) })) as never)
    list.push(...batch)
  }
  return list
}

const newestIds = (list: MessageStatus[], n: number): string[] =>
  [...list]
    .sort((a, b) => (b.times.pending ?? 0) - (a.times.pending ?? 0))
    .slice(0, n)
    .map(s => s.id)

describe("the outbox's sent list", () => {
  it('scans once, then follows new messages, acks, receipts and reads without reading the store, and agrees with a fresh scan', async () => {
    const { db } = await store()
    const base = Date.now() - 1_000_000
    const all = await stored(db, 3_000, base)
    const box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    expect((await box.recent(100)).map(s => s.id)).toEqual(newestIds(all, 100))

    // written behind the outbox's back: a later call does not see it, so it read no store
    const [ghost] = await stored(db, 1, Date.now())
    expect((await box.recent(5)).map(s => s.id)).not.toContain(ghost?.id)

    // through the outbox: a DM queued, acked, a read receipt; a group message and a member's read
    const now = Date.now()
    const dm = { id: id(), to: 'peer1', toName: 'bob', env: new Uint8Array([1]), createdAt: now, exp: now + 60_000 }
    const group = newStatus(id(), '@dev', '@dev', 'delivered', now + 1, 'dev')
    await box.enqueue([dm], [group])
    let top = await box.recent(3)
    expect(top.map(s => [s.id, s.status])).toEqual([
      [group.id, 'delivered'],
      [dm.id, 'pending'],
      [newestIds(all, 1)[0], 'delivered']
    ])
    await box.acked('peer1', [dm.id], 'delivered', now + 10)
    await box.advance('peer1', [dm.id], 'read', now + 20)
    await box.advance('peer3', [group.id], 'read', now + 30)
    top = await box.recent(2)
    expect(top.map(s => [s.id, s.status, s.reads])).toEqual([
      [group.id, 'delivered', { peer3: now + 30 }],
      [dm.id, 'read', undefined]
    ])
    // an older message (among the newest 500) read now keeps its place by send time
    const old = all[2_700] as MessageStatus
    await box.advance(old.to, [old.id], 'read', now + 40)

    // a fresh outbox on the same store scans again and sees exactly the same list (and the ghost)
    const fresh = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await fresh.start()
    const expected = (await fresh.recent(MAX_RECENT)).filter(s => s.id !== ghost?.id)
    const kept = (await box.recent(MAX_RECENT)).slice(0, expected.length)
    // compared field by field: the store's CBOR orders keys its own way
    expect(kept.map(s => s.id)).toEqual(expected.map(s => s.id))
    expect(kept).toEqual(expected)
    expect(kept.find(s => s.id === old.id)?.status).toBe('read')
    expect(kept.findIndex(s => s.id === old.id)).toBe(2 + newestIds(all, 500).indexOf(old.id))
    expect((await box.recent(10_000)).length).toBe(MAX_RECENT)
  })

  it('a status written while the first scan runs wins over what the scan read', async () => {
    const { db } = await store()
    const all = await stored(db, 5_000, Date.now() - 1_000_000)
    const box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    const newest = newestIds(all, 1)[0] as string
    const target = all.find(s => s.id === newest) as MessageStatus
    const scanning = box.recent(10)
    await box.advance(target.to, [newest], 'read')
    const [first] = await scanning
    expect(first?.id).toBe(newest)
    expect(first?.status).toBe('read')
  })

  it('costs no store read after the first call: 20 000 statuses (timings printed)', async () => {
    const { db } = await store()
    const all = await stored(db, 20_000, Date.now() - 1_000_000)
    const box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    let t = performance.now()
    expect((await box.recent(100)).map(s => s.id)).toEqual(newestIds(all, 100))
    const first = performance.now() - t
    t = performance.now()
    for (let i = 0; i < 20; i++) await box.recent(100)
    const later = (performance.now() - t) / 20
    console.warn(`outbox.recent(100) over 20 000 statuses: first call ${first.toFixed(1)} ms, later calls ${later.toFixed(2)} ms each`)
    expect(later).toBeLessThan(first)
  })
})

describe('held by relay', () => {
  it('a held message counts for the relay that took it, across a restart, until its receipt', async () => {
    const { db: first, dir } = await store()
    let db = first
    let box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    const now = Date.now()
    const items = ['a', 'b', 'c'].map(x => ({
      id: x.repeat(32),
      to: 'peer',
      toName: 'bob',
      env: new Uint8Array([1]),
      createdAt: now,
      exp: now + 60_000
    }))
    await box.enqueue(items)
    await box.acked('peer', ['a'.repeat(32), 'b'.repeat(32)], 'held', now, 'relayOne')
    await box.acked('peer', ['c'.repeat(32)], 'held', now)
    expect(Object.fromEntries(box.heldByRelay())).toEqual({ relayOne: 2, '': 1 })
    await db.close()
    db = await openStore(dir, SESSION_LAYOUT)
    cleanups.push(async () => {
      await db.close()
    })
    box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    expect(Object.fromEntries(box.heldByRelay())).toEqual({ relayOne: 2, '': 1 })
    expect(box.heldCount).toBe(3)
    await box.delivered(['a'.repeat(32)])
    expect(Object.fromEntries(box.heldByRelay())).toEqual({ relayOne: 1, '': 1 })
  })
})
