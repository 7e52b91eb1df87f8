/**
 * Task claims across a real partition (libp2p on loopback, SPEC.md §14.4): two nodes cut off
 * from each other (their connection gated and hung up) each claim the same task and each holds
 * it on its own side; a task held before the cut is taken by the other side once its holder is
 * seen offline. After healing, both replicas name one holder per task, the loser is told
 * (`task:lost`, naming the winner) and the winner hears of the contest (`task:conflict`).
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { startMesh, until } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 })))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

/** Gate `x` and `y` from each other through the nodes' own connection gater (the flood guard's). */
function partition(x: MeshNode, y: MeshNode): { cut: () => Promise<void>; heal: () => Promise<void> } {
  let split = false
  for (const [n, other] of [
    [x, y],
    [y, x]
  ] as const) {
    const own = n.guard.blocked.bind(n.guard)
    n.guard.blocked = (peer, now) => (split && peer === other.peerId) || own(peer, now)
  }
  return {
    cut: async () => {
      split = true
      await Promise.all([x.libp2p.hangUp(y.libp2p.peerId), y.libp2p.hangUp(x.libp2p.peerId)])
    },
    heal: async () => {
      split = false
      await x.libp2p.dial(y.libp2p.peerId).catch(() => {}) // the dialer redials too, within 5 s
    }
  }
}

const online = (n: MeshNode, m: MeshNode): boolean => n.presence.get(m.peerId)?.online === true

describe('task claims across a partition', () => {
  it('both sides claim; after healing one holder everywhere, the loser gets task:lost and the winner task:conflict', async () => {
    const [a, b] = (await startMesh({ nodes, cleanups }, ['alice', 'bob'])).nodes as [MeshNode, MeshNode]
    const events: string[] = []
    for (const n of [a, b]) {
      const me = n.self().name
      n.addEventListener('task:lost', evt => {
        events.push(`${me} lost ${evt.detail.title} to ${evt.detail.winner === a.peerId ? 'alice' : 'bob'}`)
      })
      n.addEventListener('task:conflict', evt => {
        events.push(`${me} kept ${evt.detail.title} against ${evt.detail.other === a.peerId ? 'alice' : 'bob'}`)
      })
    }
    const race = await a.data.tasks.create({ title: 'race' })
    const held = await a.data.tasks.create({ title: 'held' })
    expect((await a.data.tasks.claim(held.id, 120_000)).won).toBe(true)
    await until(
      [b],
      ['task:change'],
      () => b.data.tasks.size === 2 && b.data.tasks.get(held.id).holder === a.peerId,
      20_000,
      'both tasks and alice holding at bob'
    )

    const p = partition(a, b)
    await p.cut()
    await until([a, b], ['peer:leave', 'peer:update'], () => !online(a, b) && !online(b, a), 30_000, 'each side to see the other offline')
    expect(a.libp2p.getConnections(b.libp2p.peerId)).toEqual([])
    // each side claims the free task and wins on its own side
    expect((await a.data.tasks.claim(race.id, 120_000)).won).toBe(true)
    expect((await b.data.tasks.claim(race.id, 120_000)).won).toBe(true)
    // alice is offline at bob: her lease on `held` no longer counts there, and bob takes it
    expect(b.data.tasks.get(held.id)).toMatchObject({ holder: null, lease: { claimant: a.peerId, state: 'offline' } })
    expect((await b.data.tasks.claim(held.id, 120_000)).won).toBe(true)
    const holders = (id: string): Array<string | null> => [a.data.tasks.get(id).holder, b.data.tasks.get(id).holder]
    expect([holders(race.id), holders(held.id)]).toEqual([
      [a.peerId, b.peerId],
      [a.peerId, b.peerId]
    ])
    expect(events).toEqual([])

    await p.heal()
    await until(
      [a, b],
      ['task:change', 'task:lost', 'peer:join', 'peer:update'],
      () => online(a, b) && online(b, a) && [race.id, held.id].every(id => new Set(holders(id)).size === 1 && holders(id)[0] != null),
      40_000,
      'one holder per task on both sides'
    )
    // concurrent claims (equal clocks): the earlier claim; the claim made after seeing the
    // other lapse (a higher clock) beats the older one
    expect([holders(race.id), holders(held.id)]).toEqual([
      [a.peerId, a.peerId],
      [b.peerId, b.peerId]
    ])
    await until([a, b], ['task:lost', 'task:conflict', 'task:change'], () => events.length >= 4, 20_000, 'all four notices').catch(err => {
      throw new Error(`${(err as Error).message}: ${events.join('; ')}`)
    })
    expect(events.sort()).toEqual([
      'alice kept race against bob',
      'alice lost held to bob',
      'bob kept held against alice',
      'bob lost race to alice'
    ])
    // the losers stopped renewing: their claims stay behind the winners' everywhere
    expect(a.data.tasks.list({ holder: a.peerId }).map(t => t.title)).toEqual(['race'])
    expect(b.data.tasks.list({ holder: b.peerId }).map(t => t.title)).toEqual(['held'])
  }, 120_000)
})
