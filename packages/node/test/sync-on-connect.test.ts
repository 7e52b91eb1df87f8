import { randomUUID } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { createMeshNode, encodeSummary, type MeshNode } from '../src/index.js'
import { presenceProtocol } from '../src/presence/constants.js'
import { FAST, homeWithMesh, startNode, until, untilAllSee } from './helpers.js'

type SyncConnect = { peer: string; crdt: boolean; topics: string[] }

/** Every 'sync:connect' a node dispatches, by the peer it synced with. */
function syncLog(node: MeshNode): Map<string, SyncConnect[]> {
  const seen = new Map<string, SyncConnect[]>()
  node.addEventListener('sync:connect', evt => {
    seen.set(evt.detail.peer, [...(seen.get(evt.detail.peer) ?? []), evt.detail])
  })
  return seen
}

/** Start a node of `home` with its sync log listening before it connects to anyone. */
async function startLogged(home: string, name: string): Promise<{ node: MeshNode; log: Map<string, SyncConnect[]> }> {
  const node = await createMeshNode({ home, mesh: 'test', session: randomUUID(), presence: FAST, name })
  const log = syncLog(node)
  await node.start()
  return { node, log }
}

describe('sync on connect (SPEC.md §6.2, §9.4, §11.4)', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop()
  })

  async function home(): Promise<string> {
    const h = await homeWithMesh()
    stops.push(h.cleanup)
    return h.home
  }

  function started<T extends { node: MeshNode }>(x: T): T {
    stops.push(async () => x.node.stop())
    return x
  }

  const oneFor = async (node: MeshNode, log: Map<string, SyncConnect[]>, peer: MeshNode, n = 1): Promise<SyncConnect | undefined> => {
    await until(node, ['sync:connect'], () => (log.get(peer.peerId)?.length ?? 0) >= n, 10_000, `${n} sync on connect with ${peer.peerId}`)
    return log.get(peer.peerId)?.[n - 1]
  }

  it('two nodes that hold the same ask each other for nothing; a newcomer pulls what it lacks and is asked for nothing', async () => {
    const h = await home()
    const a = started(await startLogged(h, 'alice'))
    const b = started(await startLogged(h, 'bob'))
    await untilAllSee([a.node, b.node])
    // fresh nodes: empty replicas, no group history
    expect(await oneFor(a.node, a.log, b.node)).toEqual({ peer: b.node.peerId, crdt: false, topics: [] })
    expect(await oneFor(b.node, b.log, a.node)).toEqual({ peer: a.node.peerId, crdt: false, topics: [] })

    await a.node.data.state.set('deploy', 'frozen')
    await a.node.mail.send('*', 'standup in 5')
    const all = a.node.mail.groups.topicOf('*')
    const c = started(await startLogged(h, 'carol'))
    // carol lacks alice's update and her @all history: she asks alice for both
    expect(await oneFor(c.node, c.log, a.node)).toEqual({ peer: a.node.peerId, crdt: true, topics: [all] })
    // carol holds nothing alice lacks
    expect(await oneFor(a.node, a.log, c.node)).toEqual({ peer: c.node.peerId, crdt: false, topics: [] })
    await until(c.node, ['state:change'], () => c.node.data.state.get('deploy')?.value === 'frozen', 10_000, "alice's state at carol")
    await until(c.node, ['message:receive'], () => c.node.mail.inbox.unread > 0, 10_000, "alice's @all message at carol")
  })

  it('a peer whose summary is missing, malformed or oversized is synced with in full; nothing else changes', async () => {
    const h = await home()
    const a = started(await startLogged(h, 'alice'))
    const b = started(await startLogged(h, 'bob'))
    await untilAllSee([a.node, b.node])
    await oneFor(b.node, b.log, a.node)
    const all = a.node.mail.groups.topicOf('*')
    const rejected = b.node.presence.stats.rejected
    const summaries: Array<() => Promise<Uint8Array | undefined>> = [
      async () => undefined,
      async () => new Uint8Array([0xa1, 0x61, 0x78, 0x01]),
      async () => encodeSummary({ vv: { x: Number.MAX_SAFE_INTEGER }, groups: { [all]: new Uint8Array(15) } }),
      async () => encodeSummary({ vv: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`stream-${i}`.padEnd(60, '.'), i])) })
    ]
    for (const [i, summarize] of summaries.entries()) {
      a.node.presence.summarize = summarize
      await b.node.libp2p.hangUp(a.node.libp2p.peerId)
      await b.node.libp2p.dial(a.node.libp2p.peerId)
      // a full sync: the CRDT pull and every topic bob is in
      expect(await oneFor(b.node, b.log, a.node, i + 2)).toEqual({ peer: a.node.peerId, crdt: true, topics: [all] })
    }
    expect(b.node.presence.stats.rejected).toBe(rejected)
    expect(b.node.presence.get(a.node.peerId)?.online).toBe(true)
  })

  it('a summary frame anywhere but first on connect is no record and no summary', async () => {
    const h = await home()
    const { node: a } = started({ node: await startNode({ home: h, name: 'alice' }) })
    const { node: b, log } = started(await startLogged(h, 'bob'))
    await untilAllSee([a, b])
    await oneFor(b, log, a)
    const rejected = b.presence.stats.rejected
    const conn = a.libp2p.getConnections(b.libp2p.peerId)[0]
    if (conn == null) throw new Error('not connected')
    // a later exchange opening with a summary: skipped, not refused, and not a second sync
    const stream = await conn.newStream(presenceProtocol(a.mesh.id))
    const lp = lpStream(stream)
    const summary = new Uint8Array([0x00, ...encodeSummary({ vv: { x: 1 } })])
    await lp.writeV([summary, summary])
    await stream.close()
    // the second summary frame is taken for a record, and refused as one
    await until(b, ['presence:reject'], () => b.presence.stats.rejected === rejected + 1, 10_000, 'the refusal')
    expect(log.get(a.peerId)?.length).toBe(1)
  })
})
