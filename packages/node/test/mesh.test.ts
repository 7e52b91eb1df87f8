import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { homeWithMesh, startNode, untilAllSee } from './helpers.js'

describe('a mesh in one process', () => {
  const nodes: MeshNode[] = []
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop()))
    await Promise.all(cleanups.splice(0).map(async c => c()))
  })

  it('three nodes sharing a home find each other with no flags', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    for (const name of ['alice', 'bob', 'carol']) nodes.push(await startNode({ home, name }))
    await untilAllSee(nodes)
    const names = nodes[0]?.peers().filter(p => p.online).map(p => p.name).sort()
    expect(names).toEqual(['bob', 'carol'])
  })
})
