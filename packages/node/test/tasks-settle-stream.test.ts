/**
 * Settle pulls between real nodes on loopback (SPEC.md §11.4 "Settle", §14.4): a claim asks each
 * peer on one long-lived stream, reused claim after claim, and learns from it of a rival claim that
 * gossip never carried; a peer that does not speak the settle protocol gets the plain pull.
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

describe('settle streams', () => {
  it('one stream per peer, reused; a rival claim that was never gossiped is in the answer; a peer without the protocol gets plain pulls', async () => {
    const [a, b, c] = (await startMesh({ nodes, cleanups }, ['alice', 'bob', 'carol'])).nodes as [MeshNode, MeshNode, MeshNode]
    const tasks = []
    for (let i = 0; i < 4; i++) tasks.push(await a.data.tasks.create({ title: `task ${i}` }))
    await until([b, c], ['task:change'], () => b.data.tasks.size === 4 && c.data.tasks.size === 4, 10_000, 'the tasks everywhere')
    const settle = b.shared?.sync.settle
    if (settle == null) throw new Error('no settle streams')
    const [t0, t1, t2, t3] = tasks.map(t => t.id) as [string, string, string, string]
    expect((await b.data.tasks.claim(t0, 60_000)).won).toBe(true)
    expect((await b.data.tasks.claim(t1, 60_000)).won).toBe(true)
    expect(settle.stats).toMatchObject({ opened: 2, asked: 4, fallbacks: 0 })

    // carol claims without gossip (her claim reaches nobody by itself): bob's settle brings it
    const sync = c.shared?.sync
    if (sync == null) throw new Error('no sync')
    const publish = sync.publish.bind(sync)
    sync.publish = () => {}
    expect((await c.data.tasks.claim(t2, 60_000)).won).toBe(true)
    sync.publish = publish
    const answer = await b.data.tasks.claim(t2, 60_000)
    expect(answer).toMatchObject({ won: false, task: { holder: c.peerId } })
    expect(settle.stats).toMatchObject({ opened: 2, asked: 6, fallbacks: 0 })

    // carol stops serving settle streams (an older version): bob falls back to the plain pull
    await c.shared?.sync.settle.stop()
    const pulls = b.shared?.sync.stats.pulls ?? 0
    expect((await b.data.tasks.claim(t3, 60_000)).won).toBe(true)
    expect(b.shared?.sync.stats.pulls).toBeGreaterThan(pulls)
    expect(settle.stats.fallbacks).toBe(1)
    // and from then on asks carol with plain pulls, without trying her again
    const opened = settle.stats.opened
    await b.data.tasks.update(t3, { release: true })
    expect((await b.data.tasks.claim(t3, 60_000)).won).toBe(true)
    expect(settle.stats.opened).toBe(opened)
  }, 60_000)
})
