/**
 * A hostile member for flood.test.ts, in its own process (a flooder is another program): a
 * real node of the mesh that writes DMs straight onto a DM stream to a victim and publishes
 * @all envelopes, both at a fixed pace, ignoring every refusal and redialling when hung up.
 * Driven over IPC: → {ready, peerId}; ← {go}; → {done, stats}; ← {stop}.
 */
import '../src/polyfill.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { publicKeyOfPeer } from '../src/identity/keys.js'
import { createMeshNode, type MeshNode } from '../src/index.js'
import { dmProtocol, MAX_DM_FRAME_BYTES } from '../src/messaging/constants.js'
import { groupKey, groupTopic, PairKeys } from '../src/crypto/index.js'
import { newMessageId, sealDm, sealGroup } from '../src/messaging/envelope.js'
import { encodeDmFrame } from '../src/messaging/frames.js'
import { ALL } from '../src/messaging/groups.js'
import { lpOptions } from '../src/messaging/lp.js'

const { home, session, victim, count, perSecond } = JSON.parse(process.argv[2] as string) as {
  home: string
  session: string
  victim: string
  count: number
  perSecond: number
}
const send = (m: unknown): void => {
  process.send?.(m)
}

async function envelopes(f: MeshNode): Promise<{ dms: Uint8Array[]; groups: Uint8Array[]; topic: string }> {
  const key = f.key.privateKey
  const secret = f.mesh.contentSecret as Uint8Array
  const meshId = f.mesh.id
  const pair = new PairKeys(key.publicKey.raw, key.raw.subarray(0, 32), secret, meshId)
  const to = publicKeyOfPeer(victim) as Uint8Array
  const now = Date.now()
  const dms = Array.from({ length: count }, (_, i) =>
    encodeDmFrame({
      t: 'm',
      e: sealDm(
        meshId,
        pair.key(to),
        { from: key.publicKey.raw, to, id: newMessageId(), ts: now, exp: now + 3_600_000 },
        { body: `flood ${i}`, pri: 'now' }
      )
    })
  )
  const topic = groupTopic(secret, meshId, ALL)
  const gk = groupKey(secret, meshId, ALL)
  const groups: Uint8Array[] = []
  for (let i = 0; i < count; i++)
    groups.push(
      await sealGroup(
        meshId,
        gk,
        key,
        { from: key.publicKey.raw, topic, id: newMessageId(), ts: now },
        { body: `@all flood ${i}`, pri: 'now', group: ALL }
      )
    )
  return { dms, groups, topic }
}

/** `n` items at `perSecond`, catching up after a slow turn; `each` may throw (counted as not sent). */
async function paced(n: number, each: (from: number, to: number) => Promise<boolean>): Promise<{ sent: number; ms: number }> {
  const t0 = Date.now()
  let sent = 0
  for (let i = 0; i < n; ) {
    const k = Math.min(n, Math.max(i + 1, Math.floor(((Date.now() - t0) * perSecond) / 1000))) - i
    if (await each(i, i + k)) sent += k
    i += k
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return { sent, ms: Date.now() - t0 }
}

/** DMs on a raw stream and @all publishes, in two loops, neither waiting for the other. */
async function flood(f: MeshNode, env: { dms: Uint8Array[]; groups: Uint8Array[]; topic: string }): Promise<Record<string, number>> {
  let lp: ReturnType<typeof lpStream> | undefined
  let redialAt = 0
  let openMs = 0
  let openSent = 0
  const t0 = Date.now()
  const dm = paced(count, async (a, b) => {
    try {
      if (lp == null) {
        if (Date.now() < redialAt) return false
        redialAt = Date.now() + 500
        // the victim's announced addresses (a node keeps only a few peers' in its peer store, SPEC.md §5.4)
        await f.dialer.learn(victim, f.presence.get(victim)?.addrs ?? [])
        const stream = await f.libp2p.dialProtocol(peerIdFromString(victim), dmProtocol(f.mesh.id), { signal: AbortSignal.timeout(5_000) })
        const reader = lpStream(stream, lpOptions(MAX_DM_FRAME_BYTES))
        lp = reader
        void (async () => {
          while (true) await reader.read()
        })().catch(() => {}) // refusals: read and ignored
      }
      await lp.writeV(env.dms.slice(a, b))
      openSent += b - a
      openMs = Date.now() - t0
      return true
    } catch {
      lp = undefined // hung up or gated: redial, as a flooder would
      return false
    }
  })
  const group = paced(count, async (a, b) => {
    for (const g of env.groups.slice(a, b)) await f.libp2p.services.pubsub.publish(env.topic, g).catch(() => {})
    return true
  })
  const [d, g] = await Promise.all([dm, group])
  return {
    dmWritten: d.sent,
    groupPublished: g.sent,
    groupRate: (g.sent * 1000) / g.ms,
    dmRateWhileOpen: openMs > 0 ? (openSent * 1000) / openMs : 0
  }
}

const node = await createMeshNode({
  home,
  mesh: 'test',
  session,
  name: 'flooder',
  presence: { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }
})
await node.start()
const topic = groupTopic(node.mesh.contentSecret as Uint8Array, node.mesh.id, ALL)
// its group flood needs gossip to carry it: peers subscribed to @all, at least 3 or every peer
// it has (a newest node dials 2, SPEC.md §5.1; the rest connect to it later or not at all)
const subscribed = (): boolean => {
  const subs = node.libp2p.services.pubsub.getSubscribers(topic).length
  return subs >= 1 && subs >= Math.min(3, node.libp2p.getPeers().length)
}
while (node.presence.get(victim)?.online !== true || !subscribed()) await new Promise(resolve => setTimeout(resolve, 50))
const env = await envelopes(node)
process.on('message', m => {
  const t = (m as { t: string }).t
  if (t === 'go')
    void flood(node, env).then(stats => {
      send({ t: 'done', stats })
    })
  if (t === 'stop') void node.stop().finally(() => process.exit(0))
})
send({ t: 'ready', peerId: node.peerId })
