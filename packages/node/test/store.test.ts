import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeFrame, openStore, SESSION_LAYOUT } from '../src/index.js'
import { Inbox } from '../src/messaging/inbox.js'
import { Outbox } from '../src/messaging/outbox.js'
import { type BatchOp, GroupCommit, type WriteOp } from '../src/store/commit.js'
import { type Store, StoreLockedError, sublevel } from '../src/store/index.js'
import { tempHome } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

describe('the store', () => {
  it('migrates a layout-1 inbox to layout 2 before anyone reads it', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const dir = join(t.home, 'db')
    const old = await openStore(dir, SESSION_LAYOUT)
    // write what layout 1 looked like: m!<id>, o!<at>!<id>, u!<at>!<id>, version 1
    const inbox = sublevel(old, 'inbox')
    const msg = { id: 'a'.repeat(32), from: 'p', fromName: 'alice', to: 'me', priority: 'next', body: 'hi', sentAt: 1, receivedAt: 2 }
    await old.batch([
      { type: 'put', sublevel: inbox, key: `m!${msg.id}`, value: encodeFrame(msg) },
      { type: 'put', sublevel: inbox, key: `o!${'2'.padStart(16, '0')}!${msg.id}`, value: new Uint8Array(0) },
      { type: 'put', sublevel: inbox, key: `u!${'2'.padStart(16, '0')}!${msg.id}`, value: new Uint8Array(0) }
    ])
    await old.put('meta!version', '1' as unknown as Uint8Array, { valueEncoding: 'utf8' })
    await old.close()
    const db = await openStore(dir, SESSION_LAYOUT)
    expect(await db.get('meta!version', { valueEncoding: 'utf8' })).toBe(String(SESSION_LAYOUT.version))
    const box = new Inbox(sublevel(db, 'inbox'), new GroupCommit(db))
    await box.start()
    expect(await box.has(msg.id)).toBe(true)
    expect((await box.list()).map(m => m.body)).toEqual(['hi'])
    expect((await box.list({ unreadOnly: false })).map(m => m.id)).toEqual([msg.id])
    await db.close()
  })

  it('a group commit writes each sublevel operation under the key the sublevel reads, and only to its own store', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const db = await openStore(join(t.home, 'db'), SESSION_LAYOUT)
    const other = await openStore(join(t.home, 'other'), SESSION_LAYOUT)
    const commit = new GroupCommit(db)
    const a = sublevel(db, 'a')
    const nested = sublevel(a as unknown as Store, 'b')
    await a.put('gone', new Uint8Array([9]))
    // one turn: every write shares one batch
    await Promise.all([
      commit.write([{ type: 'put', sublevel: a, key: 'k', value: new Uint8Array([1]) } as BatchOp]),
      commit.write([
        { type: 'put', sublevel: nested, key: 'k', value: new Uint8Array([2]) } as BatchOp,
        { type: 'del', sublevel: a, key: 'gone' } as BatchOp,
        { type: 'put', key: 'root!k', value: new Uint8Array([3]) } as BatchOp
      ])
    ])
    expect(commit.stats.batches).toBe(1)
    const bytes = (v: Uint8Array | undefined): number[] | undefined => (v == null ? undefined : [...v])
    expect(bytes(await a.get('k'))).toEqual([1])
    expect(bytes(await nested.get('k'))).toEqual([2])
    expect(await a.get('gone')).toBeUndefined()
    expect(bytes(await db.get('root!k'))).toEqual([3])
    await expect(
      commit.write([{ type: 'put', sublevel: sublevel(other, 'a'), key: 'x', value: new Uint8Array(1) } as BatchOp])
    ).rejects.toThrow(/own store/)
    await Promise.all([db.close(), other.close()])
  })

  it('a lazy put is encoded when its batch is written; one that fails to encode refuses its own write alone', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const db = await openStore(join(t.home, 'db'), SESSION_LAYOUT)
    const commit = new GroupCommit(db)
    const a = sublevel(db, 'a')
    const value = { n: 1 }
    let encodedAt = -1
    const lazy = (key: string, encode: () => Uint8Array): WriteOp => ({ type: 'put', sublevel: a, key, encode })
    const writes = [
      commit.write([
        lazy('late', () => {
          encodedAt = value.n
          return encodeFrame(value)
        }),
        { type: 'put', sublevel: a, key: 'eager', value: new Uint8Array([7]) } as BatchOp
      ]),
      commit.write([
        { type: 'put', sublevel: a, key: 'bad-sibling', value: new Uint8Array([1]) } as BatchOp,
        lazy('bad', () => {
          throw new Error('cannot encode')
        })
      ]),
      commit.write([lazy('other', () => new Uint8Array([5]))])
    ]
    // queued, not yet encoded: the flush runs on a later turn and reads the value as it is then
    expect(encodedAt).toBe(-1)
    value.n = 2
    const results = await Promise.allSettled(writes)
    expect(results.map(r => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(((results[1] as PromiseRejectedResult).reason as Error).message).toBe('cannot encode')
    expect(commit.stats.batches).toBe(1)
    expect(encodedAt).toBe(2)
    expect(await a.get('late')).toEqual(encodeFrame({ n: 2 }))
    expect([...((await a.get('eager')) as Uint8Array)]).toEqual([7])
    expect([...((await a.get('other')) as Uint8Array)]).toEqual([5])
    // the refused write left nothing: not its lazy put, not the eager one beside it
    expect(await a.get('bad')).toBeUndefined()
    expect(await a.get('bad-sibling')).toBeUndefined()
    await db.close()
  })

  it('refuses a layout newer than it knows, and a database another process holds', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const dir = join(t.home, 'db')
    const db = await openStore(dir, SESSION_LAYOUT)
    await expect(openStore(dir, SESSION_LAYOUT)).rejects.toBeInstanceOf(StoreLockedError)
    await db.put('meta!version', '99' as unknown as Uint8Array, { valueEncoding: 'utf8' })
    await db.close()
    await expect(openStore(dir, SESSION_LAYOUT)).rejects.toThrow(/newer than this claudemesh understands/)
  })

  it('reloads the outbox in send order, not in the order of its random ids, and keeps a receipt that races a held write', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const dir = join(t.home, 'db')
    let db = await openStore(dir, SESSION_LAYOUT)
    let box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    const ids = ['c', 'a', 'e', 'b', 'd'].map(x => x.repeat(32))
    const now = Date.now()
    for (const id of ids)
      await box.enqueue([{ id, to: 'peer', toName: 'bob', env: new Uint8Array([1]), createdAt: now, exp: now + 60_000 }])
    expect(box.pending('peer').map(i => i.id)).toEqual(ids)
    await db.close()
    db = await openStore(dir, SESSION_LAYOUT)
    box = new Outbox(sublevel(db, 'outbox'), new GroupCommit(db))
    await box.start()
    expect(box.pending('peer').map(i => i.id)).toEqual(ids)
    // a relay's delivery receipt that arrives while the held status is being written
    const held = box.acked('peer', [ids[0] as string], 'held')
    const delivered = await box.delivered([ids[0] as string])
    await held
    expect(delivered.map(s => s.id)).toEqual([ids[0]])
    expect((await box.status(ids[0] as string))?.status).toBe('delivered')
    expect(box.heldFor('peer')).toBe(0)
    await db.close()
  })

  // a relay's `d` receipt follows its `h` for every DM to an online member: the held status is
  // kept in memory, not read back from disk; after a restart it is read back, and both settle
  it('settles a relay receipt for a held DM without reading its status back, and from disk after a restart', async () => {
    const t = await tempHome()
    cleanups.push(t.cleanup)
    const dir = join(t.home, 'db')
    let db = await openStore(dir, SESSION_LAYOUT)
    let sub = sublevel(db, 'outbox')
    let box = new Outbox(sub, new GroupCommit(db))
    await box.start()
    const now = Date.now()
    const [a, b] = ['a'.repeat(32), 'b'.repeat(32)]
    await box.enqueue([a, b].map(id => ({ id, to: 'peer', toName: 'bob', env: new Uint8Array([1]), createdAt: now, exp: now + 60_000 })))
    await box.acked('peer', [a, b], 'held')
    let reads = 0
    const get = sub.get.bind(sub)
    sub.get = (async (...args: Parameters<typeof get>) => {
      reads++
      return get(...args)
    }) as typeof sub.get
    expect((await box.delivered([a])).map(s => s.status)).toEqual(['delivered'])
    expect(reads).toBe(0)
    expect(box.heldFor('peer')).toBe(1)
    await db.close()
    db = await openStore(dir, SESSION_LAYOUT)
    sub = sublevel(db, 'outbox')
    box = new Outbox(sub, new GroupCommit(db))
    await box.start()
    expect(box.heldFor('peer')).toBe(1)
    expect((await box.delivered([b])).map(s => s.status)).toEqual(['delivered'])
    expect((await box.status(a))?.status).toBe('delivered')
    expect(box.heldFor('peer')).toBe(0)
    await db.close()
  })
})
