/** Read marks under concurrency (SPEC.md §13.3): each message is newly read for exactly one caller. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GroupCommit, openStore, SESSION_LAYOUT, type Store, sublevel } from '../src/index.js'
import { Inbox, type InboxMessage } from '../src/messaging/inbox.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function inbox(commit?: (db: Store) => GroupCommit): Promise<Inbox> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-inbox-'))
  const db: Store = await openStore(dir, SESSION_LAYOUT)
  cleanups.push(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })
  const box = new Inbox(sublevel(db, 'inbox'), commit?.(db) ?? new GroupCommit(db))
  await box.start()
  return box
}

const msg = (i: number): InboxMessage => ({
  id: i.toString(16).padStart(32, '0'),
  from: 'p',
  fromName: 'alice',
  to: 'q',
  priority: 'now',
  body: `m${i}`,
  sentAt: 1,
  receivedAt: Date.now()
})

describe('inbox read marks', () => {
  it('concurrent markRead calls each report a message at most once, and the unread count stays exact', async () => {
    const box = await inbox()
    const ids: string[] = []
    for (let i = 0; i < 50; i++) {
      await box.add(msg(i))
      ids.push(msg(i).id)
    }
    const results = await Promise.all(Array.from({ length: 20 }, async (_, k) => box.markRead(k % 2 === 0 ? ids : [...ids].reverse())))
    const reported = results.flat().map(m => m.id)
    expect(reported.sort()).toEqual([...ids].sort())
    expect(box.unread).toBe(0)
    expect(await box.list({ unreadOnly: true })).toEqual([])
  })

  it('markUnread racing markRead: a message given back is taken again once, never twice', async () => {
    const box = await inbox()
    for (let i = 0; i < 10; i++) await box.add(msg(i))
    const ids = Array.from({ length: 10 }, (_, i) => msg(i).id)
    expect(await box.markRead(ids)).toHaveLength(10)
    const [, ...takes] = await Promise.all([box.markUnread(ids), ...Array.from({ length: 8 }, async () => box.markRead(ids))])
    expect(
      takes
        .flat()
        .map(m => m.id)
        .sort()
    ).toEqual([...ids].sort())
    expect(box.unread).toBe(0)
  })

  it('an add whose write is slow resolves before a later add that was stored first: arrival order is storage-call order', async () => {
    let open!: () => void
    const gate = new Promise<void>(resolve => {
      open = resolve
    })
    let stored!: () => void
    const secondStored = new Promise<void>(resolve => {
      stored = resolve
    })
    const has = (ops: Parameters<GroupCommit['write']>[0], id: string): boolean =>
      ops.some(op => typeof op.key === 'string' && op.key.endsWith(id))
    const box = await inbox(db => {
      const c = new GroupCommit(db)
      const write = c.write.bind(c)
      // the first message's write is held back by its disk; the second's is not
      c.write = async ops => {
        if (has(ops, msg(1).id)) await gate
        await write(ops)
        if (has(ops, msg(2).id)) stored()
      }
      return c
    })
    const order: string[] = []
    const first = box.add(msg(1)).then(() => order.push('first'))
    const second = box.add(msg(2)).then(() => order.push('second'))
    // the second write is on disk while the first waits; it must not be announced before it
    await secondStored
    await new Promise(resolve => setImmediate(resolve))
    expect(order).toEqual([])
    open()
    await Promise.all([first, second])
    expect(order).toEqual(['first', 'second'])
    expect((await box.list({})).map(m => m.body)).toEqual(['m1', 'm2'])
  })
})
