import { afterAll, beforeAll, describe, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { presenceProtocol } from '../src/presence/constants.js'
import { homeWithMesh, startNode, until, untilAllSee } from './helpers.js'

describe('presence exchange streams (SPEC.md §6.2)', () => {
  let a: MeshNode
  let b: MeshNode
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    a = await startNode({ home: h.home, name: 'alice' })
    b = await startNode({ home: h.home, name: 'bob' })
    await untilAllSee([a, b])
  })
  afterAll(async () => {
    await a.stop()
    await b.stop()
    await cleanup()
  })

  it('close on both ends once the records are across: none stays half-open against the inbound limit', async () => {
    const protocol = presenceProtocol(a.mesh.id)
    const open = () =>
      [a, b].flatMap(n => n.libp2p.getConnections().flatMap(c => c.streams.filter(s => s.protocol === protocol && s.status !== 'closed')))
    // each end's exchange to the other ran on connect; wait on those streams' close events
    await until(open(), ['close'], () => open().length === 0, 10_000, 'every presence exchange stream to close')
  })
})
