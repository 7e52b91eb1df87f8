/**
 * Task watchers between real nodes on loopback (libp2p, LevelDB, SPEC.md §14.8): the creator
 * and members who chose to watch are told when another member claims, completes, reopens or
 * cancels a task or its lease ends; the assignee is told too; nobody is told of their own
 * changes, and a member who stopped watching hears nothing more.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode, TaskNotice } from '../src/index.js'
import { startMesh, until } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 })))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

/** Every notice a node emits, as `kind by-name [lease|result] why`. */
function record(n: MeshNode, names: Map<string, string>): string[] {
  const seen: string[] = []
  n.addEventListener('task:notice', evt => {
    const d: TaskNotice = evt.detail
    seen.push([d.kind, names.get(d.by) ?? d.by, d.lease ?? d.result, d.why].filter(x => x != null).join(' '))
  })
  return seen
}

const sees = async (n: MeshNode, what: string, pred: () => boolean): Promise<void> =>
  until([n], ['task:change', 'task:notice', 'peer:leave'], pred, 20_000, `${what} at ${n.self().name}`)

describe('task watchers across nodes', () => {
  it('watchers and the assignee are told of claims, completions, reopens, cancels and lease ends by others, never of their own', async () => {
    const [a, b, c] = (await startMesh({ nodes, cleanups }, ['alice', 'bob', 'carol'])).nodes as [MeshNode, MeshNode, MeshNode]
    const names = new Map([a, b, c].map(n => [n.peerId, n.self().name]))
    const [atA, atB, atC] = [a, b, c].map(n => record(n, names)) as [string[], string[], string[]]
    const t = await a.data.tasks.create({ title: 'write the migration' })
    expect(t.watchers).toEqual([a.peerId])
    await sees(c, 'the task', () => c.data.tasks.size === 1)
    await c.data.tasks.update(t.id, { watch: true })
    await sees(b, 'carol watching', () => b.data.tasks.size === 1 && b.data.tasks.get(t.id).watchers.length === 2)

    expect((await b.data.tasks.claim(t.id, 60_000)).won).toBe(true)
    await sees(a, 'the claim', () => atA.length === 1)
    await sees(c, 'the claim', () => atC.length === 1)
    await b.data.tasks.complete(t.id, 'added 0042_users.sql')
    await sees(c, 'the completion', () => atC.length === 2)
    await sees(a, 'the completion', () => atA.length === 2) // alice reopens what she has seen done
    await a.data.tasks.update(t.id, { status: 'open' }) // alice's own change: carol is told, alice is not
    await sees(c, 'the reopen', () => atC.length === 3)
    await c.data.tasks.update(t.id, { watch: false })
    await c.data.tasks.update(t.id, { status: 'cancelled' })
    await sees(a, 'the cancel', () => atA.length === 3)
    expect(atA).toEqual(['claimed bob watcher', 'completed bob added 0042_users.sql watcher', 'cancelled carol watcher'])
    expect(atC).toEqual(['claimed bob watcher', 'completed bob added 0042_users.sql watcher', 'reopened alice watcher'])
    expect(atB).toEqual([])

    // the assignee is told without watching; a creator that said not to watch is not
    const u = await a.data.tasks.create({ title: 'review it', assignee: c.peerId, watch: false })
    await sees(c, 'the second task', () => c.data.tasks.size === 2)
    await c.data.tasks.update(u.id, { title: 'review the migration' }) // a field change is not news
    await sees(a, 'the new title', () => a.data.tasks.get(u.id).title === 'review the migration')
    await a.data.tasks.complete(u.id, 'lgtm')
    await sees(c, 'the review done', () => atC.length === 4)
    expect(atC[3]).toBe('completed alice lgtm assignee')

    // a lease ends by release and by its holder leaving
    const v = await c.data.tasks.create({ title: 'deploy', assignee: b.peerId })
    await sees(b, 'the third task', () => b.data.tasks.size === 3)
    expect((await b.data.tasks.claim(v.id, 60_000)).won).toBe(true)
    await sees(c, 'bob holding deploy', () => atC.length === 5)
    await b.data.tasks.update(v.id, { release: true })
    await sees(c, 'the release', () => atC.length === 6)
    expect((await b.data.tasks.claim(v.id, 60_000)).won).toBe(true)
    await sees(c, 'bob holding deploy again', () => atC.length === 7)
    await b.stop({ flushMs: 0 }) // the goodbye: bob is offline at once, his lease with him
    await sees(c, 'the lease lost to the goodbye', () => atC.length === 8)
    expect(atC.slice(4)).toEqual([
      'claimed bob watcher',
      'lease-lost bob released watcher',
      'claimed bob watcher',
      'lease-lost bob offline watcher'
    ])
    expect(atA).toHaveLength(3) // nothing about tasks alice does not follow
    expect(atB).toEqual([])
  }, 90_000)
})
