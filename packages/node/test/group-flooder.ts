/**
 * A hostile member for flood-gossip.test.ts, in its own process: a real node that dials only
 * the peers it is given (it listens on nothing, so no one dials it) and publishes @all
 * envelopes it signed, at a fixed pace, to whoever gossips with it.
 * Driven over IPC: → {ready, peerId}; ← {go}; → {done, rate}; ← {stop}.
 */
import '../src/polyfill.js'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshNode } from '../src/index.js'
import { groupKey, groupTopic } from '../src/crypto/index.js'
import { newMessageId, sealGroup } from '../src/messaging/envelope.js'
import { ALL } from '../src/messaging/groups.js'

const { home, session, peers, count, perSecond } = JSON.parse(process.argv[2] as string) as {
  home: string
  session: string
  peers: string[]
  count: number
  perSecond: number
}
const send = (m: unknown): void => {
  process.send?.(m)
}

const node = await createMeshNode({
  home,
  mesh: 'test',
  session,
  name: 'flooder',
  listen: [],
  registry: false,
  dht: false,
  bootstrap: peers,
  presence: { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }
})
await node.start()
// the peers it was given and no others: its bootstrap dials are on their way, nothing it learns is dialled
node.dialer.stop()
const ids = peers.map(p => p.slice(p.lastIndexOf('/') + 1))
const topic = groupTopic(node.mesh.contentSecret as Uint8Array, node.mesh.id, ALL)
const pubsub = node.libp2p.services.pubsub
const ready = (): boolean =>
  ids.every(id => node.libp2p.getConnections().some(c => c.remotePeer.toString() === id)) &&
  ids.every(id => pubsub.getSubscribers(topic).some(p => p.toString() === id))
for (let tick = 0; !ready(); tick++) {
  // a bootstrap dial that failed is not retried by a stopped dialer: retry here, every second
  if (tick % 20 === 19)
    for (const [i, p] of peers.entries())
      if (node.libp2p.getConnections().every(c => c.remotePeer.toString() !== ids[i])) void node.libp2p.dial(multiaddr(p)).catch(() => {})
  await new Promise(resolve => setTimeout(resolve, 50))
}

const key = node.key.privateKey
const gk = groupKey(node.mesh.contentSecret as Uint8Array, node.mesh.id, ALL)
const now = Date.now()
const envelopes: Uint8Array[] = []
for (let i = 0; i < count; i++)
  envelopes.push(
    await sealGroup(
      node.mesh.id,
      gk,
      key,
      { from: key.publicKey.raw, topic, id: newMessageId(), ts: now },
      { body: `@all flood ${i}`, pri: 'now', group: ALL }
    )
  )

async function flood(): Promise<number> {
  const t0 = Date.now()
  for (let i = 0; i < count; ) {
    const due = Math.min(count, Math.max(i + 1, Math.floor(((Date.now() - t0) * perSecond) / 1000)))
    const batch = envelopes.slice(i, due)
    i = due
    await Promise.all(batch.map(async e => pubsub.publish(topic, e).catch(() => {})))
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return (count * 1000) / (Date.now() - t0)
}

process.on('message', m => {
  const t = (m as { t: string }).t
  if (t === 'go')
    void flood().then(rate => {
      send({ t: 'done', rate })
    })
  if (t === 'stop') void node.stop().finally(() => process.exit(0))
})
send({ t: 'ready', peerId: node.peerId })
