import { randomUUID } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import type { MeshNode, MeshNodeInit } from '../src/index.js'
import { groupTopic } from '../src/crypto/index.js'
import { ALL } from '../src/messaging/groups.js'
import { type Flooder, forkFlooder, homeWithMesh, pollUntil, startNode, until } from './helpers.js'

const FLOOD = 3_000
const PER_SECOND = 1_000
/** the victim's budget for one author's group messages: small, so the test needs few */
const VICTIM = { group: { rate: 10, burst: 50, byteRate: 512 << 10, byteBurst: 4 << 20 } }
/** forwarders that store and pass on everything, as many honest peers together would */
const LENIENT: MeshNodeInit['limits'] = {
  group: { rate: 1e6, burst: 1e6, byteRate: 1 << 30, byteBurst: 1 << 30 },
  senderUnread: 1e6,
  senderUnreadBytes: 1 << 30,
  totalUnread: 1e6,
  totalUnreadBytes: 1 << 30
}
const CALM = { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }

/** The flooder child (test/group-flooder.ts), dialling only `peers`. */
function spawnFlooder(home: string, peers: string[]): Flooder<number> {
  return forkFlooder('group-flooder.ts', { home, peers, count: FLOOD, perSecond: PER_SECOND }, m => m.rate as number)
}

const withId = (n: MeshNode): string => {
  const a = n.multiaddrs()[0] as string
  return a.includes('/p2p/') ? a : `${a}/p2p/${n.peerId}`
}

describe('group flood control by author', () => {
  it('a flooder that reaches the victim only through two forwarders is cut off at its own budget there', async () => {
    const { home, cleanup } = await homeWithMesh()
    const nodes: MeshNode[] = []
    // the edges drawn above: no registry, no DHT, no mDNS; w listens on nothing (no one can
    // dial it) and, once connected to the victim, dials no one else; the flooder likewise
    const start = async (name: string, bootstrap: MeshNode[], limits?: MeshNodeInit['limits']): Promise<MeshNode> => {
      const leaf = name === 'w'
      const n = await startNode({
        home,
        name,
        session: randomUUID(),
        registry: false,
        dht: false,
        presence: CALM,
        listen: leaf ? [] : ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: bootstrap.map(b => withId(b)),
        ...(limits != null ? { limits } : {})
      })
      nodes.push(n)
      if (leaf) {
        n.dialer.stop() // its bootstrap dials are on their way; nothing it learns later is dialled
        const end = Date.now() + 30_000
        while (!bootstrap.every(b => n.libp2p.getConnections(b.libp2p.peerId).length > 0)) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${name} to connect`)
          // a bootstrap dial that failed is not retried by a stopped dialer
          await Promise.all(
            bootstrap
              .filter(b => n.libp2p.getConnections(b.libp2p.peerId).length === 0)
              .map(async b => n.libp2p.dial(multiaddr(withId(b)), { signal: AbortSignal.timeout(5_000) }).catch(() => {}))
          )
          await new Promise(resolve => setTimeout(resolve, 200))
        }
      }
      return n
    }
    let flooderProc: ReturnType<typeof spawnFlooder> | undefined
    try {
      const victim = await start('victim', [], VICTIM)
      // every peer the victim ever holds a connection to
      const met = new Set<string>()
      victim.libp2p.addEventListener('connection:open', e => {
        met.add(e.detail.remotePeer.toString())
      })
      const a = await start('a', [victim], LENIENT)
      const b = await start('b', [victim], LENIENT)
      const w = await start('w', [victim])
      const honest = await start('honest', [victim, a])
      flooderProc = spawnFlooder(home, [withId(a), withId(b)])
      const flooder = {
        peerId: await Promise.race([
          flooderProc.ready,
          new Promise<never>((_resolve, reject) => {
            setTimeout(() => {
              reject(new Error('the flooder did not get ready'))
            }, 60_000).unref()
          })
        ])
      }
      const peerOf = (n: { peerId: string }): string => n.peerId
      const topic = groupTopic(victim.mesh.contentSecret as Uint8Array, victim.mesh.id, ALL)
      const subs = (n: MeshNode): string[] => n.libp2p.services.pubsub.getSubscribers(topic).map(p => p.toString())
      const meshed = (n: MeshNode, of: Array<{ peerId: string }>): boolean => of.every(m => subs(n).includes(peerOf(m)))
      await until(
        [victim, w, a, b].map(n => n.libp2p.services.pubsub),
        ['subscription-change'],
        () => meshed(victim, [a, b, w, honest]) && meshed(w, [victim]) && meshed(a, [flooder, victim]) && meshed(b, [flooder, victim]),
        30_000,
        'the @all subscriptions'
      )
      expect(victim.libp2p.getConnections().map(c => c.remotePeer.toString())).not.toContain(flooder.peerId)

      // what each node stores, by author
      const stored = new Map<MeshNode, { flood: number[]; honest: Set<string> }>(nodes.map(n => [n, { flood: [], honest: new Set() }]))
      for (const n of nodes) {
        n.addEventListener('message:receive', e => {
          const s = stored.get(n) as { flood: number[]; honest: Set<string> }
          if (e.detail.from === flooder.peerId) s.flood.push(e.detail.receivedAt)
          else s.honest.add(e.detail.id)
        })
      }
      // the flood: @all envelopes the flooder signed, published at PER_SECOND
      const t0 = Date.now()
      flooderProc.go()
      // honest traffic meanwhile: 20 @all from `honest`, 10 from `a`
      const expected: Array<{ id: string; from: MeshNode }> = []
      for (let k = 0; k < 20; k++) {
        for (const n of k < 10 ? [honest, a] : [honest]) {
          const [r] = await n.mail.send('@all', `honest ${k} from ${n.self().name}`)
          expected.push({ id: (r as { id: string }).id, from: n })
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      const rate = await flooderProc.done
      const floodEnd = Date.now()
      // every node got every honest message (but its own)
      const missing = (): number =>
        nodes.reduce((k, n) => k + expected.filter(e => e.from !== n && !(stored.get(n)?.honest.has(e.id) ?? false)).length, 0)
      await until(nodes, ['message:receive'], () => missing() === 0, 30_000, 'every honest group message').catch(() => {})
      // the forwarders carried the whole flood (their budgets are out of the way)
      await until(
        [a, b],
        ['message:receive'],
        () => (stored.get(a)?.flood.length ?? 0) >= FLOOD * 0.99 && (stored.get(b)?.flood.length ?? 0) >= FLOOD * 0.99,
        30_000,
        'the forwarders to take the flood'
      ).catch(() => {})
      // anti-entropy: the victim syncs its groups with a forwarder that stored the whole flood
      // (as on every new connection): those answers count against the author's budget too
      const gs = victim.mail.groups.stats
      const seen = (): number => gs.synced + gs.overBudget + gs.dropped
      const before = seen()
      await victim.libp2p.hangUp(a.libp2p.peerId)
      await until(
        victim.libp2p,
        ['connection:open'],
        () => victim.libp2p.getConnections(a.libp2p.peerId).length > 0,
        30_000,
        'a to reconnect'
      )
      // the group stats change with no event
      await pollUntil(() => seen() - before >= FLOOD / 4, 30_000, 'the group sync with a')
      const at = (n: MeshNode): number[] => stored.get(n)?.flood ?? []
      const measured = {
        rate: Math.round(rate),
        forwarded: [at(a).length, at(b).length],
        victimStored: at(victim).length,
        victimSpanMs: Math.max(t0, ...at(victim)) - t0,
        wStored: at(w).length,
        victimOverBudget: victim.mail.groups.stats.overBudget,
        // gossipsub's score of each peer at the victim (getScore is not on the exported type)
        scores: [a, b, w, honest].map(n =>
          Math.round((victim.libp2p.services.pubsub as unknown as { getScore: (p: string) => number }).getScore(n.peerId))
        ),
        missingHonest: missing(),
        sync: { synced: gs.synced, overBudget: gs.overBudget, dropped: gs.dropped },
        floodMs: floodEnd - t0
      }
      process.stderr.write(`[flood-gossip] ${JSON.stringify(measured)}\n`)

      // a flood: far past the victim's budget for one author (it paces PER_SECOND; next to the
      // five nodes in this process taking all of it, it gets a fraction of that)
      expect(rate).toBeGreaterThanOrEqual(20 * VICTIM.group.rate)
      // the victim never held a connection to the flooder, not even for a moment
      expect(met.has(flooder.peerId)).toBe(false)
      // the flood did reach the victim, twice over: from a and from b
      expect(Math.min(...measured.forwarded)).toBeGreaterThanOrEqual(FLOOD * 0.99)
      // charged to its author: one budget (burst + rate over the time it was admitted), not one per forwarder
      const l = victim.guard.limits.group
      expect(measured.victimStored).toBeLessThanOrEqual(l.burst + (l.rate * measured.victimSpanMs) / 1000 + 1)
      expect(measured.victimStored).toBeLessThan(FLOOD / 10)
      expect(measured.victimOverBudget).toBeGreaterThan(FLOOD / 2)
      expect(victim.guard.report().find(r => r.peer === flooder.peerId)?.dropped ?? 0).toBeGreaterThan(FLOOD / 2)
      // nothing past the budget went on: w hears the flooder only through the victim
      expect(measured.wStored).toBeLessThanOrEqual(measured.victimStored)
      // forwarding it cost the honest peers nothing: not scored down, not blocked, still connected
      expect(Math.min(...measured.scores)).toBeGreaterThanOrEqual(0)
      for (const n of [a, b]) {
        expect(victim.guard.blocked(n.peerId)).toBe(false)
        expect(victim.libp2p.getConnections().map(c => c.remotePeer.toString())).toContain(n.peerId)
      }
      expect(measured.missingHonest).toBe(0)
    } finally {
      await flooderProc?.stop()
      await Promise.allSettled(nodes.map(async n => n.stop()))
      await cleanup()
    }
  }, 180_000)
})
