/**
 * Members of a group keep connections to each other (SPEC.md §9.2): gossipsub relays a topic
 * only among its subscribers, so two members joined only through non-members never got each
 * other's group messages (a 20-node home: a 3-member group's message stayed "pending").
 */
import { afterAll, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { homeWithMesh, startNode, until, untilAllSee, untilSubscribed } from './helpers.js'

describe('group members connect to each other', () => {
  const nodes: MeshNode[] = []
  let cleanup: (() => Promise<void>) | undefined
  afterAll(async () => {
    for (const n of nodes.reverse()) await n.stop()
    await cleanup?.()
  })

  it('two members whose connection drops, left joined only through nodes not in the group, dial each other again and get its messages', async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    // a ring x1 x2 x3 x4 of non-members; m0 hangs on x1 and x2, m5 on x3 and x4: every node has
    // two peers or more, and there is no DHT, so once m0 and m5 lose a connection nothing but
    // the group dials it again
    const start = async (name: string, bootstrap: MeshNode[], group = false): Promise<MeshNode> => {
      const n = await startNode({
        home: h.home,
        name,
        registry: false,
        mdns: false,
        dht: false,
        bootstrap: bootstrap.map(b => b.multiaddrs().find(a => a.includes('/tcp/')) ?? ''),
        groups: group ? [{ name: 'g' }] : []
      })
      nodes.push(n)
      return n
    }
    const x1 = await start('x1', [])
    const x2 = await start('x2', [x1])
    const x3 = await start('x3', [x2])
    const x4 = await start('x4', [x3, x1])
    const m0 = await start('m0', [x1, x2], true)
    const m5 = await start('m5', [x3, x4], true)
    await untilAllSee(nodes)
    const joined = async (what: string): Promise<void> => {
      await until(m0.libp2p, ['connection:open'], () => m0.libp2p.getConnections(m5.libp2p.peerId).length > 0, 10_000, what)
    }
    await joined('m0 to connect to m5, the other member of g')
    await m0.libp2p.hangUp(m5.libp2p.peerId)
    await m5.libp2p.hangUp(m0.libp2p.peerId)
    await joined('m0 and m5 to connect again')
    const topic = m0.mail.groups.topicOf('g')
    await untilSubscribed(m0, m5, topic, 'm5 on the group topic at m0')
    const got = new Promise<string>(resolve => {
      m5.addEventListener('message:receive', evt => {
        if (evt.detail.group === 'g') resolve(evt.detail.body)
      })
    })
    const [sent] = await m0.mail.send('@g', 'members only')
    expect(sent).toMatchObject({ to: '@g', status: 'delivered' })
    expect(await got).toBe('members only')
  })
})
