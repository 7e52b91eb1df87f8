/**
 * Flood control (SPEC.md §8.7): 20 honest nodes and one hostile member on loopback, in this
 * process. The flooder writes DMs straight onto a DM stream to one victim and publishes @all
 * envelopes, each at >= 1,000 a second, ignoring every refusal. It must be cut off (nothing of
 * it stored anywhere later than 5 s after it started, and blocked by the victim), honest DMs
 * and group messages must all arrive, the victim's control socket must keep answering, and
 * an honest message sent after the flood must be among the first the victim's model reads.
 */
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { ControlClient } from '../src/control/client.js'
import { publicKeyOfPeer } from '../src/identity/keys.js'
import type { MeshNode } from '../src/index.js'
import { dmProtocol, MAX_DM_FRAME_BYTES } from '../src/messaging/constants.js'
import { groupKey, groupTopic, PairKeys } from '../src/messaging/crypto.js'
import { newMessageId, sealDm, sealGroup } from '../src/messaging/envelope.js'
import { encodeDmFrame } from '../src/messaging/frames.js'
import { ALL } from '../src/messaging/groups.js'
import { lpOptions } from '../src/messaging/lp.js'
import { homeWithMesh, startNode, until } from './helpers.js'

/** default presence timings: 21 nodes heartbeating every 500 ms would be a flood of their own */
const CALM = { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }
const HONEST = Number(process.env.FLOOD_NODES ?? 20)
const FLOOD = 10_000
/** the pace the flooder keeps (catching up after a slow tick): DMs and group messages, each */
const PER_SECOND = 1_500

/** Envelopes a hostile member built with its own keys: valid, so only their number hurts. */
async function floodEnvelopes (f: MeshNode, victim: string): Promise<{ dms: Uint8Array[], groups: Uint8Array[], topic: string }> {
  const key = f.key.privateKey
  const mesh = f.mesh
  const secret = mesh.contentSecret as Uint8Array
  const pair = new PairKeys(key.publicKey.raw, key.raw.subarray(0, 32), secret, mesh.id)
  const to = publicKeyOfPeer(victim) as Uint8Array
  const now = Date.now()
  const dms = Array.from({ length: FLOOD }, (_, i) => encodeDmFrame({
    t: 'm',
    e: sealDm(mesh.id, pair.key(to), { from: key.publicKey.raw, to, id: newMessageId(), ts: now, exp: now + 3_600_000 }, { body: `flood ${i}`, pri: 'now' })
  }))
  const topic = groupTopic(secret, mesh.id, ALL)
  const gk = groupKey(secret, mesh.id, ALL)
  const groups: Uint8Array[] = []
  for (let i = 0; i < FLOOD; i++) groups.push(await sealGroup(mesh.id, gk, key, { from: key.publicKey.raw, topic, id: newMessageId(), ts: now }, { body: `@all flood ${i}`, pri: 'now', group: ALL }))
  return { dms, groups, topic }
}

/** Write every DM frame and publish every group envelope as fast as the flooder can; never stop for a refusal. */
async function flood (f: MeshNode, victim: string, env: { dms: Uint8Array[], groups: Uint8Array[], topic: string }): Promise<{ dmWritten: number, groupPublished: number, ms: number, dmRateWhileOpen: number }> {
  const t0 = Date.now()
  let dmWritten = 0
  let dmRateWhileOpen = 0
  let groupPublished = 0
  let lp: ReturnType<typeof lpStream> | undefined
  let redialAt = 0
  for (let i = 0; i < FLOOD;) {
    const n = Math.min(FLOOD, Math.max(i + 1, Math.floor((Date.now() - t0) * PER_SECOND / 1000))) - i
    try {
      if (lp == null) {
        if (Date.now() < redialAt) throw new Error('not yet')
        redialAt = Date.now() + 500
        const stream = await f.libp2p.dialProtocol(peerIdFromString(victim), dmProtocol(f.mesh.id), { signal: AbortSignal.timeout(500) })
        lp = lpStream(stream, lpOptions(MAX_DM_FRAME_BYTES))
        const reader = lp
        void (async () => { while (true) await reader.read() })().catch(() => {}) // refusals: read, ignored
      }
      await lp.writeV(env.dms.slice(i, i + n))
      dmWritten += n
    } catch (err) {
      if (process.env.FLOOD_DEBUG != null) step(`flooder: ${(err as Error).message}`)
      // hung up or gated: try again next tick, as a flooder would
      if (dmRateWhileOpen === 0) dmRateWhileOpen = dmWritten * 1000 / (Date.now() - t0)
      lp = undefined
    }
    for (const g of env.groups.slice(i, i + n)) {
      await f.libp2p.services.pubsub.publish(env.topic, g).catch(() => {})
      groupPublished++
    }
    i += n
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return { dmWritten, groupPublished, ms: Date.now() - t0, dmRateWhileOpen }
}

describe('flood control', () => {
  it('an honest message that arrives after 10,000 unread from one sender is among the first the model reads', async () => {
    const { home, cleanup } = await homeWithMesh()
    const nodes: MeshNode[] = []
    try {
      const victim = await startNode({ home, name: 'victim', session: randomUUID() })
      nodes.push(victim)
      const alice = await startNode({ home, name: 'alice', session: randomUUID() })
      nodes.push(alice)
      // a flood already stored (before the caps, or from many senders): 10,000 unread from one
      const flooder = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const at = Date.now()
      for (let i = 0; i < 10_000; i += 500) {
        await Promise.all(Array.from({ length: 500 }, async (_, j) => victim.mail.inbox.add({
          id: (i + j).toString(16).padStart(32, '0'), from: flooder, fromName: 'flooder', to: victim.peerId, priority: 'now', body: `flood ${i + j}`, sentAt: at, receivedAt: at
        })))
      }
      const [r] = await alice.mail.send(victim.peerId, 'honest: the build is green')
      await until(victim, ['message:receive'], () => victim.mail.inbox.unread === 10_001, 20_000, 'the honest DM')
      const first = await victim.mail.check({ limit: 20 })
      expect(first.messages.slice(0, 2).map(m => m.id)).toContain((r as { id: string }).id)
      expect(first.messages).toHaveLength(20)
      expect(first.held).toEqual([{ from: flooder, name: 'flooder', count: 10_000 - 19 }])
      expect(first.remaining).toBe(10_001 - 20)
      // the rest is still there, one sender's oldest first
      const next = await victim.mail.check({ limit: 5 })
      expect(next.messages.map(m => m.body)).toEqual(['flood 19', 'flood 20', 'flood 21', 'flood 22', 'flood 23'])
    } finally {
      await Promise.allSettled(nodes.map(async n => n.stop()))
      await cleanup()
    }
  }, 60_000)

  it('cuts a flooder off within 5 s while honest DMs and group messages among 20 nodes all arrive', async () => {
    const { home, cleanup } = await homeWithMesh()
    const nodes: MeshNode[] = []
    const flooderNode: MeshNode[] = []
    let control: ControlClient | undefined
    try {
      // in batches: each start dials every node already registered
      for (let b = 0; b < HONEST; b += 5) {
        nodes.push(...await Promise.all(Array.from({ length: 5 }, async (_, j) => startNode({ home, name: `h${b + j}`, session: randomUUID(), presence: CALM }))))
        step(`${nodes.length} nodes`)
      }
      const flooder = await startNode({ home, name: 'flooder', session: randomUUID(), presence: CALM })
      flooderNode.push(flooder)
      const all = [...nodes, flooder]
      const victim = nodes[0] as MeshNode
      step('started')
      await until(all, ['peer:join', 'peer:update'], () => all.every(n => all.every(m => m === n || n.presence.get(m.peerId)?.online === true)), 60_000, 'every node to see every other')
      // gossipsub meshes form after the connections: wait until each node has @all peers
      const topic = groupTopic(victim.mesh.contentSecret as Uint8Array, victim.mesh.id, ALL)
      for (const n of all) await pollUntil(() => n.libp2p.services.pubsub.getSubscribers(topic).length >= 3, 30_000, 'gossipsub subscribers')

      step('meshes formed')
      const env = await floodEnvelopes(flooder, victim.peerId)
      // what every honest node stores from the flooder, and when
      const floodStored = new Map<MeshNode, number[]>(nodes.map(n => [n, []]))
      const honestGot = new Map<string, Set<string>>() // recipient → ids
      for (const n of nodes) {
        honestGot.set(n.peerId, new Set())
        n.addEventListener('message:receive', evt => {
          if (evt.detail.from === flooder.peerId) floodStored.get(n)?.push(Date.now())
          else honestGot.get(n.peerId)?.add(evt.detail.id)
        })
      }
      let blockedAt: number | undefined
      victim.guard.addEventListener('flood:block', evt => { if (evt.detail.peer === flooder.peerId) blockedAt ??= Date.now() })

      step('envelopes built')
      control = await ControlClient.connect(victim.registryControlPath())
      const t0 = Date.now()
      const flooding = flood(flooder, victim.peerId, env)
      // honest traffic while the flood runs: each node 5 DMs to each of 3 others (the victim
      // among them) and 2 @all messages; the victim also sends, timed
      const expected: Array<{ to: string, id: string }> = []
      const latencies: number[] = []
      const probe = (async () => {
        while (Date.now() - t0 < 8_000) {
          const s = Date.now()
          await control?.call('info')
          latencies.push(Date.now() - s)
          await new Promise(resolve => setTimeout(resolve, 200))
        }
      })()
      const sendTimes: number[] = []
      await Promise.all(nodes.map(async (n, i) => {
        const peers = [...new Set([nodes[(i + 1) % HONEST], nodes[(i + 2) % HONEST], i === 0 ? nodes[3] : victim] as MeshNode[])]
        for (let k = 0; k < 5; k++) {
          for (const p of peers) {
            const s = Date.now()
            const [r] = await n.mail.send(p.peerId, `dm ${k} from h${i}`)
            if (n === victim) sendTimes.push(Date.now() - s)
            expected.push({ to: p.peerId, id: (r as { id: string }).id })
          }
          if (k < 2) {
            const s = Date.now()
            const rs = await n.mail.send('@all', `all ${k} from h${i}`)
            if (n === victim) sendTimes.push(Date.now() - s)
            for (const m of nodes) if (m !== n) expected.push({ to: m.peerId, id: (rs[0] as { id: string }).id })
          }
          await new Promise(resolve => setTimeout(resolve, 100))
        }
      }))
      step('honest sends done')
      const sent = await flooding
      await probe
      step('flood done')
      const rate = { dm: sent.dmWritten * 1000 / sent.ms, group: sent.groupPublished * 1000 / sent.ms }

      const delivered = (): number => expected.filter(e => honestGot.get(e.to)?.has(e.id) === true).length
      await pollUntil(() => delivered() === expected.length, 45_000, 'honest messages').catch(() => {})
      const ratio = delivered() / expected.length
      const lastFlood = Math.max(...[...floodStored.values()].flat(), t0)
      const storedAtVictim = floodStored.get(victim)?.length ?? 0
      // measured numbers, for the report
      process.stderr.write(`flood: ${JSON.stringify({ rate, sent, blockedAfterMs: blockedAt != null ? blockedAt - t0 : null, lastStoredAfterMs: lastFlood - t0, storedAtVictim, storedMax: Math.max(...[...floodStored.values()].map(v => v.length)), honest: { expected: expected.length, delivered: delivered() }, controlMaxMs: Math.max(...latencies), victimSendMaxMs: Math.max(...sendTimes), refused: victim.mail.dm.stats.refused }) }\n`)

      // the flood really was one: >= 1,000 DMs and group messages a second while it lasted
      expect(sent.dmRateWhileOpen).toBeGreaterThanOrEqual(1000)
      expect(rate.group).toBeGreaterThanOrEqual(1000)
      expect(blockedAt).toBeDefined()
      expect((blockedAt as number) - t0).toBeLessThanOrEqual(5_000)
      // nothing of the flooder's is stored anywhere later than 5 s after it began
      expect(lastFlood - t0).toBeLessThanOrEqual(5_000)
      expect(ratio).toBeGreaterThanOrEqual(0.999)
      expect(Math.max(...latencies)).toBeLessThan(1_500)
      expect(Math.max(...sendTimes)).toBeLessThan(2_000)

      // what the model gets: after the flood, an honest message is among the first it reads
      const honest = nodes[7] as MeshNode
      const [late] = await honest.mail.send(victim.peerId, 'the build is green, please merge')
      await pollUntil(() => honestGot.get(victim.peerId)?.has((late as { id: string }).id) === true, 20_000, 'the late honest DM')
      const first = await victim.mail.check({ limit: 20 })
      expect(first.messages.map(m => m.id)).toContain((late as { id: string }).id)
      expect(first.held?.find(h => h.from === flooder.peerId)?.count ?? 0).toBeGreaterThan(0)
      expect(first.refused?.find(r => r.from === flooder.peerId)?.blocked).toBe(true)
    } finally {
      control?.close()
      await Promise.allSettled([...nodes, ...flooderNode].map(async n => n.stop()))
      await cleanup()
    }
  }, 240_000)
})

const T = Date.now()
const step = (what: string): void => { process.stderr.write(`[flood test +${Date.now() - T} ms] ${what}\n`) }

async function pollUntil (pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
