/**
 * The victim of flood.test.ts's 20-node test, in its own process as every session's node is:
 * sharing an event loop with the other 19 nodes would measure the test harness, not the node.
 * Driven over IPC: → {ready, peerId}; then requests {t, rid, ...} answered {t: 'reply', rid, value}.
 */
import '../src/polyfill.js'
import { createMeshNode } from '../src/index.js'
import { groupTopic } from '../src/crypto/index.js'
import { ALL } from '../src/messaging/groups.js'

const { home, session } = JSON.parse(process.argv[2] as string) as { home: string; session: string }

const node = await createMeshNode({
  home,
  mesh: 'test',
  session,
  name: 'victim',
  presence: { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }
})
await node.start()
const topic = groupTopic(node.mesh.contentSecret as Uint8Array, node.mesh.id, ALL)

let flooder = ''
let blockedAt: number | undefined
/** when each of the flooder's messages was admitted */
const floodStored: number[] = []
const honest = new Set<string>()
node.addEventListener('message:receive', evt => {
  if (evt.detail.from === flooder) floodStored.push(evt.detail.receivedAt)
  else honest.add(evt.detail.id)
})
node.guard.addEventListener('flood:block', evt => {
  if (evt.detail.peer === flooder && blockedAt == null) blockedAt = Date.now()
})

type Request =
  | { t: 'watch'; flooder: string }
  | { t: 'sees'; ids: string[] }
  | { t: 'subscribers' }
  | { t: 'send'; to: string; body: string }
  | { t: 'got'; ids: string[] }
  | { t: 'report' }
  | { t: 'check'; limit: number }
  | { t: 'stop' }

async function answer(m: Request): Promise<unknown> {
  switch (m.t) {
    case 'watch':
      flooder = m.flooder
      return true
    case 'sees':
      return m.ids.every(id => id === node.peerId || node.presence.get(id)?.online === true)
    case 'subscribers':
      return { subs: node.libp2p.services.pubsub.getSubscribers(topic).length, peers: node.libp2p.getPeers().length }
    case 'send': {
      const s = Date.now()
      const [r] = await node.mail.send(m.to, m.body)
      return { id: (r as { id: string }).id, ms: Date.now() - s }
    }
    case 'got':
      return m.ids.filter(id => honest.has(id))
    case 'report':
      return { floodStored, blockedAt, refused: node.mail.dm.stats.refused, limits: node.guard.limits, control: node.registryControlPath() }
    case 'check':
      return node.mail.check({ limit: m.limit })
    case 'stop':
      await node.stop()
      process.exit(0)
  }
}

process.on('message', m => {
  const req = m as Request & { rid: number }
  void answer(req).then(
    value => {
      process.send?.({ t: 'reply', rid: req.rid, value })
    },
    (err: Error) => {
      process.send?.({ t: 'reply', rid: req.rid, error: err.message })
    }
  )
})
process.send?.({ t: 'ready', peerId: node.peerId })
