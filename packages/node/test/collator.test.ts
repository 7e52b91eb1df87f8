import { afterEach, describe, expect, it, vi } from 'vitest'
import { byName } from '../src/presence/presence.js'
import { type World, startMesh } from './helpers.js'

const world: World = { nodes: [], cleanups: [] }
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(world.nodes.splice(0).map(async n => n.stop()))
  for (const c of world.cleanups.splice(0)) await c()
})

describe("ICU's collator", () => {
  it('orders names case folded first, then by code units', () => {
    const names = ['bob', 'Alice', 'alice', 'Émile', 'carol', 'Bob']
    expect([...names].sort(byName)).toEqual(['Alice', 'alice', 'Bob', 'bob', 'carol', 'Émile'])
    expect(byName('x', 'x')).toBe(0)
  })

  // localeCompare's first call loads the collator: ~7 ms of CPU and ~3 MB of RSS in every node
  // (libp2p's peer store sorted with it at start, patched; our peer list did with two peers)
  it('is never loaded by a start, the exchange or a peer list', async () => {
    const compare = vi.spyOn(String.prototype, 'localeCompare')
    const { nodes } = await startMesh(world, ['carol', 'Alice', 'bob'])
    for (const n of nodes) {
      const names = n.peers().map(p => p.name)
      expect(names).toEqual(['Alice', 'bob', 'carol'].filter(x => x !== n.self().name))
    }
    expect(compare).not.toHaveBeenCalled()
  })
})
