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

async function inbox(): Promise<Inbox> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-inbox-'))
  const db: Store = await openStore(dir, SESSION_LAYOUT)
  cleanups.push(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })
  const box = new Inbox(sublevel(db, 'inbox'), new GroupCommit(db))
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
})
