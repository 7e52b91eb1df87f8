/**
 * `ui.wait` on its own (SPEC.md §19.1): the change feed answers at once for a topic changed after
 * the caller's cursor, waits otherwise, times out with no topic, holds a bounded number of calls,
 * and lets go of a caller that hangs up; the reservation watch bumps `reservations` when the live
 * list changes (a write, a holder going offline, an end that no event announces) and only then.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { ControlClient, ControlServer } from '../src/control/index.js'
import { ChangeFeed, MAX_UI_WAITERS, registerUiWait, ReservationWatch, UI_TOPICS } from '../src/control/ui-methods.js'
import { type RepoRef, ReservationBoard } from '../src/reservations/index.js'
import { MemoryLog, Replica } from '../src/state/index.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** Whether a promise settled by the time already-queued I/O and timers of 0 ms ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false
  void p.then(
    () => {
      done = true
    },
    () => {
      done = true
    }
  )
  await new Promise(resolve => {
    setTimeout(resolve, 20)
  })
  return done
}

describe('the change feed behind ui.wait', () => {
  it('answers at once with the topics changed after the cursor, and a cursor from another incarnation with every topic', async () => {
    const feed = new ChangeFeed()
    expect(await feed.wait(0, 0)).toEqual({ seq: 0, topics: [] })
    feed.bump('state')
    feed.bump('inbox')
    feed.bump('state')
    const t0 = Date.now()
    expect(await feed.wait(0, 30_000)).toEqual({ seq: 3, topics: ['inbox', 'state'] })
    expect(await feed.wait(2, 30_000)).toEqual({ seq: 3, topics: ['state'] })
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(await feed.wait(99, 30_000)).toEqual({ seq: 3, topics: [...UI_TOPICS] })
    expect(feed.waiting).toBe(0)
  })

  it('waits while nothing changed after the cursor, answers on the next change, and times out with no topic', async () => {
    const feed = new ChangeFeed()
    feed.bump('peers')
    const waiting = feed.wait(1, 30_000)
    expect(await settled(waiting)).toBe(false)
    expect(feed.waiting).toBe(1)
    feed.bump('reservations')
    expect(await waiting).toEqual({ seq: 2, topics: ['reservations'] })
    expect(feed.waiting).toBe(0)
    const t0 = Date.now()
    expect(await feed.wait(2, 150)).toEqual({ seq: 2, topics: [] })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
    expect(feed.waiting).toBe(0)
  })

  it('holds at most its bound of calls: one more is refused with a clear error, an abort frees a place at once', async () => {
    const feed = new ChangeFeed(3)
    const aborts = [new AbortController(), new AbortController(), new AbortController()]
    const calls = aborts.map(async a => feed.wait(0, 30_000, a.signal))
    await expect(feed.wait(0, 30_000)).rejects.toThrow(/^too many ui\.wait calls waiting \(3\)/)
    await expect(feed.wait(0, 30_000)).rejects.toHaveProperty('name', 'RateLimitedError')
    // answering at once needs no place
    expect(await feed.wait(0, 0)).toEqual({ seq: 0, topics: [] })
    aborts[0]?.abort()
    expect(await calls[0]).toEqual({ seq: 0, topics: [] })
    expect(feed.waiting).toBe(2)
    const fourth = feed.wait(0, 30_000)
    feed.bump('tasks')
    expect(await Promise.all([calls[1], calls[2], fourth])).toEqual(Array(3).fill({ seq: 1, topics: ['tasks'] }))
    expect(feed.waiting).toBe(0)
    expect(MAX_UI_WAITERS).toBe(32)
  })

  it('over a real control socket: a call waits for a change, a client that hangs up stops waiting, the bound is an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-uiwait-'))
    cleanups.push(async () => rm(dir, { recursive: true, force: true }))
    const server = new ControlServer(join(dir, 'control.sock'))
    const feed = new ChangeFeed(2)
    registerUiWait(server, feed)
    await server.start()
    cleanups.push(async () => server.stop())
    const a = await ControlClient.connect(server.path)
    const b = await ControlClient.connect(server.path)
    cleanups.push(() => {
      a.close()
      b.close()
    })

    const first = a.call<{ seq: number; topics: string[] }>('ui.wait', { since: 0, timeoutMs: 30_000 })
    const second = b.call('ui.wait', { since: 0, timeoutMs: 30_000 })
    void second.catch(() => {})
    await expect.poll(() => feed.waiting, { timeout: 5_000, interval: 10 }).toBe(2)
    await expect(a.call('ui.wait', { since: 0, timeoutMs: 30_000 })).rejects.toThrow(/too many ui\.wait calls waiting/)
    await expect(a.call('ui.wait', { since: 0, timeoutMs: 60_001 })).rejects.toThrow(/invalid params for ui\.wait: timeoutMs/)
    // b hangs up: its call stops holding a place
    b.close()
    await expect.poll(() => feed.waiting, { timeout: 5_000, interval: 10 }).toBe(1)
    feed.bump('sent')
    expect(await first).toEqual({ seq: 1, topics: ['sent'] })
    expect(await a.call('ui.wait', { since: 1, timeoutMs: 100 })).toEqual({ seq: 1, topics: [] })
  })
})

const HERE: RepoRef = { repo: 'example.com/team/app', branch: 'main', root: '/work/a', git: true }

async function member(offline: Set<string>): Promise<{ board: ReservationBoard; replica: Replica }> {
  const key = await generateKeyPair('Ed25519')
  const replica = new Replica('00112233aabbccdd', key, new Uint8Array(32).fill(9), 1, new MemoryLog(), peerIdFromPrivateKey(key).toString())
  return { replica, board: new ReservationBoard(replica, () => {}, { offline: p => offline.has(p) }) }
}

describe('the reservation watch', () => {
  it('bumps on a change of the live list: a reservation made, its holder offline, one that ends (no event); a look that finds no change bumps nothing', async () => {
    const offline = new Set<string>()
    const { board: b, replica } = await member(offline)
    const feed = new ChangeFeed()
    const watch = new ReservationWatch(b, () => {
      feed.bump('reservations')
    })
    cleanups.push(() => {
      watch.stop()
    })
    b.addEventListener('reservation:change', () => {
      watch.check()
    })
    watch.check()
    expect(feed.seq).toBe(0)

    await b.reserve(HERE, { globs: ['src/auth/**'], reason: 'login rewrite', ttlMs: 60_000 }, 'alice')
    expect(await feed.wait(0, 5_000)).toEqual({ seq: 1, topics: ['reservations'] })
    watch.check()
    expect(feed.seq).toBe(1)

    // one that ends in 1 s: its end alone bumps, a little after it, and it is gone from the list
    const t0 = Date.now()
    await b.reserve(HERE, { globs: ['docs/**'], mode: 'shared', ttlMs: 1_000 }, 'alice')
    expect(feed.seq).toBe(2)
    expect(await feed.wait(2, 10_000)).toEqual({ seq: 3, topics: ['reservations'] })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990)
    expect(b.live().map(r => r.globs)).toEqual([['src/auth/**']])

    // a holder that goes offline (what peer:leave tells the watch) no longer counts
    const other = await member(offline)
    await other.board.reserve(HERE, { globs: ['lib/**'], ttlMs: 60_000 }, 'bob')
    for (const env of await other.replica.missing(replica.versionVector())) await replica.ingest(env)
    expect(feed.seq).toBe(4)
    offline.add(other.board.self)
    watch.check()
    expect(feed.seq).toBe(5)
    expect(b.live().map(r => r.name)).toEqual(['alice'])
  })
})
