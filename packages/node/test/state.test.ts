import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { homeWithMesh, startNode, until, untilAllSee } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function pair(): Promise<{ home: string; a: MeshNode; b: MeshNode; sessions: string[] }> {
  const h = await homeWithMesh()
  cleanups.push(h.cleanup)
  const sessions = [randomUUID(), randomUUID()]
  const a = await startNode({ home: h.home, name: 'alice', session: sessions[0] })
  const b = await startNode({ home: h.home, name: 'bob', session: sessions[1] })
  nodes.push(a, b)
  await untilAllSee([a, b])
  return { home: h.home, a, b, sessions }
}

describe('shared state', () => {
  it('set on one node is visible on the other with its verified author; delete spreads too', async () => {
    const { a, b } = await pair()
    const e = await a.data.state.set('build/status', { ok: true, sha: 'abc' })
    expect(e).toMatchObject({ key: 'build/status', value: { ok: true, sha: 'abc' }, updatedBy: a.peerId })
    await until(b, ['state:change'], () => b.data.state.get('build/status') != null, 10_000, 'the value at bob')
    expect(b.data.state.get('build/status')).toMatchObject({ value: { ok: true, sha: 'abc' }, updatedBy: a.peerId })
    await b.data.state.set('build/owner', 'bob')
    await until(a, ['state:change'], () => a.data.state.get('build/owner') != null)
    expect(a.data.state.list('build/').map(x => x.key)).toEqual(['build/owner', 'build/status'])
    expect(await a.data.state.delete('build/status')).toBe(true)
    await until(b, ['state:change'], () => b.data.state.get('build/status') == null)
    expect(await a.data.state.delete('nope')).toBe(false)
  })

  it('refuses bad values with a clear error and writes nothing', async () => {
    const { a } = await pair()
    await expect(a.data.state.set('k', 'x'.repeat(70_000))).rejects.toThrow(/limit is 65536 bytes/)
    let deep: unknown = 1
    for (let i = 0; i < 20; i++) deep = { d: deep }
    await expect(a.data.state.set('k', deep)).rejects.toThrow(/nested deeper/)
    await expect(a.data.state.set('', 1)).rejects.toThrow(/key is 1 to 256/)
    await expect(a.data.state.set('k', undefined)).rejects.toThrow(/must be JSON/)
    expect(a.data.state.size).toBe(0)
  })

  it('survives restarts, and a late joiner receives everything', async () => {
    const { home, a, b, sessions } = await pair()
    await a.data.state.set('x', 1)
    const note = await a.data.memory.remember('the staging database lives on host db-2', ['infra'])
    await until(b, ['state:change'], () => b.data.state.get('x') != null)
    await b.stop()
    nodes.splice(nodes.indexOf(b), 1)
    const b2 = await startNode({ home, name: 'bob', session: sessions[1] })
    nodes.push(b2)
    expect(b2.data.state.get('x')?.value).toBe(1)
    const late = await startNode({ home, name: 'carol' })
    nodes.push(late)
    await until(
      late,
      ['state:change', 'memory:change', 'peer:join'],
      () => late.data.state.get('x') != null && late.data.memory.get(note.id) != null,
      10_000,
      'the late joiner to catch up'
    )
    expect((await late.data.memory.recall('staging database'))[0]?.id).toBe(note.id)
  })
})

describe('shared memory', () => {
  it('remember / recall with tags and author filters / forget syncs as a tombstone', async () => {
    const { a, b } = await pair()
    const n1 = await a.data.memory.remember('Deploys run from the release branch every Friday', ['deploy', 'process'])
    const n2 = await a.data.memory.remember('The flaky test is test_login_timeout; rerun it once', ['testing'])
    const n3 = await b.data.memory.remember('Deployment credentials are in the vault, not in env files', ['deploy', 'security'])
    await until([a, b], ['memory:change'], () => a.data.memory.size === 3 && b.data.memory.size === 3, 10_000, 'three notes everywhere')
    void n2
    const hits = await b.data.memory.recall('deploying')
    expect(hits.map(h => h.id).sort()).toEqual([n1.id, n3.id].sort())
    expect((await b.data.memory.recall('deploy', { author: a.peerId })).map(h => h.id)).toEqual([n1.id])
    expect((await b.data.memory.recall('deploy', { tags: ['security'] })).map(h => h.id)).toEqual([n3.id])
    expect((await b.data.memory.recall('flakey tset'))[0]?.id).toBe(n2.id)
    expect(await b.data.memory.forget(n1.id)).toBe(true)
    await until(a, ['memory:change'], () => a.data.memory.get(n1.id)?.forgotten === true, 10_000, 'the tombstone')
    expect(await a.data.memory.recall('release branch')).toEqual([])
    expect(a.data.memory.get(n1.id)?.forgotten).toBe(true)
  })
})
