/** Task board rules on in-memory replicas with a virtual clock, and hostile task entries refused at the door (SPEC.md §14). */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import type { Ed25519PrivateKey } from '../src/index.js'
import { clientIdOf, MemoryLog, Replica, signUpdate } from '../src/state/index.js'
import { TaskBoard } from '../src/tasks/index.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

async function member(
  clock: { now: number },
  groups: string[] = []
): Promise<{ id: string; replica: Replica; board: TaskBoard; key: Ed25519PrivateKey; lost: string[] }> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const replica = new Replica(MESH, key, SEAL, 1, new MemoryLog(), id)
  const board = new TaskBoard(replica, () => {}, { now: () => clock.now, groups: () => groups })
  const lost: string[] = []
  board.addEventListener('task:lost', evt => {
    lost.push(evt.detail.winner)
  })
  return { id, replica, board, key, lost }
}

/** Hand `to` everything `from` holds that it lacks. */
async function sync(from: Replica, to: Replica): Promise<void> {
  for (const env of await from.missing(to.versionVector())) await to.ingest(env)
}

describe('task board rules', () => {
  it('the newest claim decides: an expired holder cannot come back by renewing, and learns it lost', async () => {
    const clock = { now: 1_000_000 }
    const a = await member(clock)
    const b = await member(clock)
    const t = await a.board.create({ title: 'migrate the db' })
    expect((await a.board.claim(t.id, 5_000)).won).toBe(true)
    await sync(a.replica, b.replica)
    await expect(b.board.claim(t.id, 5_000)).rejects.toThrow(/is held by/)
    clock.now += 6_000 // a was cut off and did not renew in time
    expect(b.board.get(t.id)).toMatchObject({ holder: null, lease: { claimant: a.id, state: 'expired' } })
    expect((await b.board.claim(t.id, 5_000)).won).toBe(true)
    await a.board.renew() // too late: an expired lease is not renewed
    expect(a.board.get(t.id).lease?.expiresAt).toBe(1_000_000 + 5_000)
    await sync(b.replica, a.replica)
    expect(a.lost).toEqual([b.id])
    await sync(a.replica, b.replica)
    expect(a.board.get(t.id).holder).toBe(b.id)
    expect(b.board.get(t.id).holder).toBe(b.id)
  })

  it('concurrent claims (equal clocks): the earlier claim wins on every replica, then the smaller id', async () => {
    const clock = { now: 2_000_000 }
    const a = await member(clock)
    const b = await member(clock)
    const t = await a.board.create({ title: 'race' })
    await sync(a.replica, b.replica)
    expect((await b.board.claim(t.id, 60_000)).won).toBe(true)
    clock.now += 5
    expect((await a.board.claim(t.id, 60_000)).won).toBe(true) // a has not seen b's claim yet
    await sync(a.replica, b.replica)
    await sync(b.replica, a.replica)
    expect([a.board.get(t.id).holder, b.board.get(t.id).holder]).toEqual([b.id, b.id])
    expect(a.lost).toEqual([b.id])
    // same clock and same time: the smaller PeerId
    const u = await a.board.create({ title: 'tie' })
    await sync(a.replica, b.replica)
    await a.board.claim(u.id, 60_000)
    await b.board.claim(u.id, 60_000)
    await sync(a.replica, b.replica)
    await sync(b.replica, a.replica)
    const [small] = [a.id, b.id].sort()
    expect([a.board.get(u.id).holder, b.board.get(u.id).holder]).toEqual([small, small])
  })

  it('completion voids claims, a reopen starts afresh, dependencies block, assignees restrict', async () => {
    const clock = { now: 5_000_000 }
    const a = await member(clock, ['backend'])
    const dep = await a.board.create({ title: 'schema' })
    const t = await a.board.create({ title: 'api', deps: [dep.id], assignee: '@backend' })
    await expect(a.board.claim(t.id)).rejects.toThrow(/blocked by/)
    await a.board.claim(dep.id)
    await a.board.complete(dep.id, 'v2 schema')
    expect(a.board.get(dep.id)).toMatchObject({ status: 'done', holder: null, lease: null, result: 'v2 schema' })
    await a.board.update(dep.id, { status: 'open' })
    expect(a.board.get(dep.id)).toMatchObject({ status: 'open', holder: null })
    await a.board.complete(dep.id)
    expect((await a.board.claim(t.id)).won).toBe(true)
    const other = await a.board.create({ title: 'frontend', assignee: '@web' })
    await expect(a.board.claim(other.id)).rejects.toThrow(/assigned to @web/)
    const released = await a.board.update(t.id, { release: true })
    expect(released.holder).toBeNull()
    expect(a.board.list({ claimable: true }).map(x => x.id)).toEqual([t.id])
  })

  it('concurrent field edits both survive, each field by its own clock', async () => {
    const clock = { now: 1 }
    const a = await member(clock)
    const b = await member(clock)
    const t = await a.board.create({ title: 'x' })
    await sync(a.replica, b.replica)
    await a.board.update(t.id, { title: 'renamed by a' })
    await b.board.update(t.id, { priority: 'high' })
    await sync(a.replica, b.replica)
    await sync(b.replica, a.replica)
    expect(a.board.get(t.id)).toMatchObject({ title: 'renamed by a', priority: 'high' })
    expect(JSON.stringify(a.board.list())).toBe(JSON.stringify(b.board.list()))
  })
})

describe('task watchers (§14.8)', () => {
  it("the creator watches unless it said not to; watchers are told of others' changes, never of their own; a lease that runs out is told on the tick", async () => {
    const clock = { now: 9_000_000 }
    const a = await member(clock)
    const b = await member(clock)
    const notices: string[] = []
    a.board.addEventListener('task:notice', evt => {
      notices.push(
        `${evt.detail.kind}:${evt.detail.by === b.id ? 'b' : 'a'}${evt.detail.lease != null ? `:${evt.detail.lease}` : ''}${evt.detail.result != null ? `:${evt.detail.result}` : ''}`
      )
    })
    const t = await a.board.create({ title: 'watched' })
    const quiet = await a.board.create({ title: 'not watched' })
    await a.board.update(quiet.id, { watch: false })
    const silent = await a.board.create({ title: 'never watched', watch: false })
    expect([t, a.board.get(quiet.id), silent].map(x => x.watchers)).toEqual([[a.id], [], []])
    await sync(a.replica, b.replica)
    for (const id of [t.id, quiet.id, silent.id]) await b.board.claim(id, 5_000)
    await sync(b.replica, a.replica)
    clock.now += 6_000 // b stopped renewing: its leases ran out
    await a.board.tick()
    await a.board.claim(t.id, 5_000) // a's own claim: no notice
    await a.board.update(t.id, { release: true })
    await b.board.update(t.id, { watch: true })
    await sync(a.replica, b.replica)
    const bNotices: string[] = []
    b.board.addEventListener('task:notice', evt => {
      bNotices.push(`${evt.detail.kind}:${evt.detail.result ?? ''}`)
    })
    await a.board.complete(t.id, 'shipped')
    await a.board.update(t.id, { status: 'open' })
    await sync(a.replica, b.replica)
    expect(bNotices).toEqual(['completed:shipped', 'reopened:'])
    await b.board.update(t.id, { status: 'cancelled' })
    await sync(b.replica, a.replica)
    expect(notices).toEqual(['claimed:b', 'lease-lost:b:expired', 'cancelled:b'])
    expect(a.board.get(t.id).watchers).toEqual([a.id, b.id].sort())
  })
})

describe('lease-back (§14.8)', () => {
  it('a holder whose lease lapsed (seen offline, or expired and claimed again) and who holds the task again is told as lease-back, not claimed', async () => {
    const clock = { now: 11_000_000 }
    const gone = new Set<string>()
    const key = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key).toString()
    const replica = new Replica(MESH, key, SEAL, 1, new MemoryLog(), id)
    const a = { id, replica, board: new TaskBoard(replica, () => {}, { now: () => clock.now, offline: p => gone.has(p) }) }
    const b = await member(clock)
    const c = await member(clock)
    const notices: string[] = []
    const who = new Map([
      [b.id, 'b'],
      [c.id, 'c']
    ])
    a.board.addEventListener('task:notice', evt => {
      notices.push(`${evt.detail.kind}:${who.get(evt.detail.by)}${evt.detail.lease != null ? `:${evt.detail.lease}` : ''}`)
    })
    const t = await a.board.create({ title: 'watched' })
    await sync(a.replica, b.replica)
    await b.board.claim(t.id, 60_000)
    await sync(b.replica, a.replica)
    gone.add(b.id) // a partition: a sees b offline
    a.board.presenceChanged()
    gone.delete(b.id) // healed: b's lease never ended at b, and it is live again
    a.board.presenceChanged()
    expect(notices).toEqual(['claimed:b', 'lease-lost:b:offline', 'lease-back:b'])
    // b stalled past its lease's end, then claimed again: still b's lease back
    clock.now += 61_000
    await a.board.tick()
    await b.board.claim(t.id, 60_000)
    await sync(b.replica, a.replica)
    expect(notices.slice(3)).toEqual(['lease-lost:b:expired', 'lease-back:b'])
    // a release is not a lapse; another member's claim after a lapse is a claim
    await b.board.update(t.id, { release: true })
    await sync(b.replica, a.replica)
    await b.board.claim(t.id, 60_000)
    await sync(b.replica, a.replica)
    clock.now += 61_000
    await a.board.tick()
    await sync(a.replica, c.replica)
    await c.board.claim(t.id, 60_000)
    await sync(c.replica, a.replica)
    expect(notices.slice(5)).toEqual(['lease-lost:b:released', 'claimed:b', 'lease-lost:b:expired', 'claimed:c'])
  })
})

describe('hostile task entries', () => {
  it('are refused and counted, never applied; the honest board carries on', async () => {
    const clock = { now: 1_000 }
    const a = await member(clock)
    const m = await member(clock)
    const t = await a.board.create({ title: 'honest' })
    await sync(a.replica, m.replica)
    const craft = (inc: number, fn: (map: Y.Map<unknown>) => void): Uint8Array => {
      const d = new Y.Doc()
      d.clientID = clientIdOf(m.key.publicKey.raw, inc)
      let u: Uint8Array = new Uint8Array()
      d.on('update', (x: Uint8Array) => {
        u = x
      })
      d.transact(() => {
        fn(d.getMap('tasks'))
      })
      return u
    }
    const claim = { l: 9, since: 1, exp: 9e12, ttl: 60_000, held: true, by: m.id, at: 1 }
    const cases: Array<[string, (map: Y.Map<unknown>) => void]> = [
      [
        "a claim in another member's name",
        map => {
          map.set(`c!${t.id}!${a.id}`, claim)
        }
      ],
      [
        'a claim with an extra field',
        map => {
          map.set(`c!${t.id}!${m.id}`, { ...claim, boss: true })
        }
      ],
      [
        'a lease past the longest',
        map => {
          map.set(`c!${t.id}!${m.id}`, { ...claim, ttl: 1e12 })
        }
      ],
      [
        'a task with a bad priority',
        map => {
          map.set('t!00000000000000aa', { title: 'x', body: '', assignee: '', priority: 'urgent', deps: [], by: m.id, at: 1 })
        }
      ],
      [
        'a patch of an unknown field',
        map => {
          map.set(`u!${t.id}!${m.id}`, { f: { owner: { l: 1, v: 'm' } }, by: m.id, at: 1 })
        }
      ],
      [
        'a bad key',
        map => {
          map.set('z!whatever', { by: m.id, at: 1 })
        }
      ],
      [
        "a watch in another member's name",
        map => {
          map.set(`w!${t.id}!${a.id}`, { on: false, by: a.id, at: 1 })
        }
      ],
      [
        'a watch that is not a boolean',
        map => {
          map.set(`w!${t.id}!${m.id}`, { on: 'yes', by: m.id, at: 1 })
        }
      ]
    ]
    const before = JSON.stringify(a.board.list())
    const reasons: string[] = []
    a.replica.addEventListener('crdt:reject', evt => {
      reasons.push(evt.detail.reason)
    })
    let inc = 10
    for (const [what, fn] of cases)
      expect(await a.replica.ingest(await signUpdate(MESH, m.key, SEAL, inc, 1, craft(inc++, fn))), what).toBe('rejected')
    expect(a.replica.stats.rejected).toBe(cases.length)
    expect(reasons.join('\n')).toMatch(/another member than its writer/)
    expect(JSON.stringify(a.board.list())).toBe(before)
    expect((await a.board.claim(t.id)).won).toBe(true)
  })
})
