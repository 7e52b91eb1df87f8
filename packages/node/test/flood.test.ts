/**
 * Flood control (SPEC.md §8.8). The N-node test (N = 8 here, 20 in `npm run test:flood`): N
 * honest nodes, the victim in a process of its own and the rest in this one, and one hostile
 * member in its own (test/flooder.ts), on loopback. The flooder writes DMs straight onto a DM
 * stream to the victim and publishes @all envelopes, each at >= 1,000 a second, ignoring every
 * refusal. The victim must block it within 5 s; no node may store more of it than its budgets
 * allow, nor anything after it blocked it; honest DMs and group messages must arrive
 * (>= 99.9 %); the victim's control socket must keep answering; and an honest message sent
 * after the flood must be among the first the victim's model reads.
 */
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { publicKeyOfPeer } from '../src/identity/keys.js'
import type { MeshNode } from '../src/index.js'
import { dmProtocol, MAX_DM_FRAME_BYTES } from '../src/messaging/constants.js'
import { groupTopic, PairKeys } from '../src/crypto/index.js'
import { newMessageId, sealDm } from '../src/messaging/envelope.js'
import { encodeDmFrame } from '../src/messaging/frames.js'
import { lpOptions } from '../src/messaging/lp.js'
import { ALL } from '../src/messaging/groups.js'
import { type Flooder, forkFlooder, homeWithMesh, pollUntil, startNode, until } from './helpers.js'

/** default presence timings: 21 nodes heartbeating every 500 ms would be a flood of their own */
const CALM = { heartbeatMs: 10_000, ttlMs: 30_000, graceMs: 12_000 }
/**
 * Honest nodes, the victim among them. The default suite runs 8 next to the other test files;
 * `npm run test:flood` runs the 20 on a machine of its own (two cores shared by 22
 * nodes and the suite's other heavy files measure the machine, not the node).
 */
const HONEST = Number(process.env.FLOOD_NODES ?? 8)
const FLOOD = 10_000
/** the flooder's pace, DMs and group messages each */
const PER_SECOND = 1_500

const T = Date.now()
const step = (what: string): void => {
  process.stderr.write(`[flood test +${Date.now() - T} ms] ${what}\n`)
}

/** The flooder child (test/flooder.ts), driven over IPC. */
function spawnFlooder(home: string, victim: string): Flooder<Record<string, number>> {
  return forkFlooder('flooder.ts', { home, victim, count: FLOOD, perSecond: PER_SECOND }, m => m.stats as Record<string, number>)
}

/** `n` DM frames from `f` to `victim`, sealed with f's own keys: valid, so only their number hurts. */
function dmFrames(f: MeshNode, victim: string, n: number): Uint8Array[] {
  const key = f.key.privateKey
  const pair = new PairKeys(key.publicKey.raw, key.raw.subarray(0, 32), f.mesh.contentSecret as Uint8Array, f.mesh.id)
  const to = publicKeyOfPeer(victim) as Uint8Array
  const now = Date.now()
  return Array.from({ length: n }, (_, i) =>
    encodeDmFrame({
      t: 'm',
      e: sealDm(
        f.mesh.id,
        pair.key(to),
        { from: key.publicKey.raw, to, id: newMessageId(), ts: now, exp: now + 3_600_000 },
        { body: `flood ${i}`, pri: 'now' }
      )
    })
  )
}

/** A node the test sends from: in this process, or the victim in its own. */
interface Sender {
  peerId: string
  send: (to: string, body: string) => Promise<{ id: string; ms: number }>
}

const local = (n: MeshNode): Sender => ({
  peerId: n.peerId,
  send: async (to, body) => {
    const s = Date.now()
    const [r] = await n.mail.send(to, body)
    return { id: (r as { id: string }).id, ms: Date.now() - s }
  }
})

/** Honest traffic while the flood runs: each node 5 DMs to each of 3 others (the victim among them) and 2 @all. */
async function honestTraffic(
  nodes: Sender[],
  victim: Sender,
  expected: Array<{ to: string; id: string; group?: boolean }>,
  victimSendMs: number[]
): Promise<void> {
  await Promise.all(
    nodes.map(async (n, i) => {
      const peers = [
        ...new Set([nodes[(i + 1) % nodes.length], nodes[(i + 2) % nodes.length], i === 0 ? nodes[3 % nodes.length] : victim] as Sender[])
      ]
      for (let k = 0; k < 5; k++) {
        for (const p of peers) {
          const r = await n.send(p.peerId, `dm ${k} from h${i}`)
          if (n === victim) victimSendMs.push(r.ms)
          expected.push({ to: p.peerId, id: r.id })
        }
        if (k < 2) {
          const r = await n.send('@all', `all ${k} from h${i}`)
          if (n === victim) victimSendMs.push(r.ms)
          for (const m of nodes) if (m !== n) expected.push({ to: m.peerId, id: r.id, group: true })
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })
  )
}

/** The victim child (test/flood-victim.ts), driven over IPC. */
function spawnVictim(home: string): {
  ready: Promise<string>
  call: <T>(t: string, args?: Record<string, unknown>) => Promise<T>
  stop: () => Promise<void>
} {
  const child = fork(join(import.meta.dirname, 'flood-victim.ts'), [JSON.stringify({ home, session: randomUUID() })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = new Promise<void>(resolve => {
    child.once('exit', () => {
      resolve()
    })
  })
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let rid = 0
  const ready = new Promise<string>((resolve, reject) => {
    child.on('message', m => {
      const msg = m as { t: string; peerId?: string; rid?: number; value?: unknown; error?: string }
      if (msg.t === 'ready') resolve(msg.peerId as string)
      const w = msg.t === 'reply' ? waiting.get(msg.rid as number) : undefined
      if (w == null) return
      waiting.delete(msg.rid as number)
      if (msg.error != null) w.reject(new Error(msg.error))
      else w.resolve(msg.value)
    })
    void exited.then(() => {
      reject(new Error('the victim exited'))
      for (const w of waiting.values()) w.reject(new Error('the victim exited'))
    })
  })
  return {
    ready,
    call: async <T>(t: string, args: Record<string, unknown> = {}): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const id = ++rid
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
        child.send({ t, rid: id, ...args })
      }),
    stop: async () => {
      if (child.exitCode == null && child.connected) child.send({ t: 'stop', rid: 0 })
      const killer = setTimeout(() => {
        child.kill('SIGKILL')
      }, 10_000)
      await exited
      clearTimeout(killer)
    }
  }
}

/** Control round trips to `path` for `ms`, measured from a process of its own (test/control-probe.ts). */
async function probeControl(path: string, ms: number): Promise<number[]> {
  const child = fork(join(import.meta.dirname, 'control-probe.ts'), [JSON.stringify({ path, ms })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  return new Promise((resolve, reject) => {
    child.once('message', m => {
      resolve((m as { latencies: number[] }).latencies)
    })
    child.once('exit', code => {
      reject(new Error(`the control probe exited (${code}) before reporting`))
    })
  })
}

async function pollUntilAsync(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('flood control', () => {
  it("refuses DMs past a sender's budget with a retry-after: an honest sender backs off and gets through, a flooder is blocked", async () => {
    const { home, cleanup } = await homeWithMesh()
    const nodes: MeshNode[] = []
    try {
      // a small DM budget at the victim, so the test needs few messages
      const limits = { dm: { rate: 10, burst: 50, byteRate: 1 << 20, byteBurst: 8 << 20 } }
      for (const name of ['victim', 'alice', 'mallory'])
        nodes.push(await startNode({ home, name, session: randomUUID(), ...(name === 'victim' ? { limits } : {}) }))
      const [victim, alice, mallory] = nodes as [MeshNode, MeshNode, MeshNode]
      await until(
        nodes,
        ['peer:join', 'peer:update'],
        () => nodes.every(n => nodes.every(m => m === n || n.presence.get(m.peerId)?.online === true)),
        20_000,
        'every node to see every other'
      )
      const got = new Map<string, number>()
      victim.addEventListener('message:receive', evt => {
        got.set(evt.detail.from, (got.get(evt.detail.from) ?? 0) + 1)
      })
      let blocked: { peer: string; at: number } | undefined
      victim.guard.addEventListener('flood:block', evt => {
        blocked ??= { peer: evt.detail.peer, at: Date.now() }
      })

      const acked = new Set<string>()
      alice.addEventListener('message:status', evt => {
        if (evt.detail.status === 'delivered') acked.add(evt.detail.id)
      })
      // alice sends twice the burst at once: the rest is refused for now, then retried
      const burst = victim.guard.limits.dm.burst
      const sent = (await Promise.all(Array.from({ length: burst * 2 }, async (_, i) => alice.mail.send(victim.peerId, `m ${i}`)))).flat()
      await pollUntil(() => alice.mail.dm.deferred.has(victim.peerId), 20_000, 'a refusal')
      const last = sent[sent.length - 1] as { id: string }
      const s = await alice.mail.status(last.id)
      if (s?.status === 'pending') expect(s.error).toMatch(/the recipient refused it for now \(rate\); retrying after/)
      await pollUntil(() => (got.get(alice.peerId) ?? 0) === burst * 2, 30_000, "all of alice's DMs")
      expect(victim.mail.dm.stats.refused.rate ?? 0).toBeGreaterThan(0)
      expect(victim.guard.blocked(alice.peerId)).toBe(false)
      await until(alice, ['message:status'], () => sent.every(r => acked.has(r.id)), 20_000, 'every ack')

      // mallory writes DMs onto a stream at 2,000 a second and ignores every refusal
      const frames = dmFrames(mallory, victim.peerId, 10_000)
      const t0 = Date.now()
      const stream = await mallory.libp2p.dialProtocol(peerIdFromString(victim.peerId), dmProtocol(mallory.mesh.id))
      const lp = lpStream(stream, lpOptions(MAX_DM_FRAME_BYTES))
      void (async () => {
        while (true) await lp.read()
      })().catch(() => {})
      for (let i = 0; i < frames.length && blocked == null; i += 100) {
        await lp.writeV(frames.slice(i, i + 100)).catch(() => {})
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      await until(victim.guard, ['flood:block'], () => blocked != null, 20_000, 'the block')
      expect(blocked?.peer).toBe(mallory.peerId)
      const stored = got.get(mallory.peerId) ?? 0
      const l = victim.guard.limits.dm
      expect(stored).toBeLessThanOrEqual(l.burst + (l.rate * ((blocked as { at: number }).at - t0)) / 1000 + 1)
      // hung up, and no new connection either way while the block lasts
      await pollUntil(() => victim.libp2p.getConnections(peerIdFromString(mallory.peerId)).length === 0, 10_000, 'the hang-up')
      await expect(
        mallory.libp2p.dialProtocol(peerIdFromString(victim.peerId), dmProtocol(mallory.mesh.id), { signal: AbortSignal.timeout(5_000) })
      ).rejects.toThrow()
      expect(got.get(mallory.peerId) ?? 0).toBe(stored)
      // the model is told
      const r = await victim.mail.check({ limit: 5 })
      expect(r.refused?.find(f => f.from === mallory.peerId)?.blocked).toBe(true)
      // and the others still talk to the victim
      const [after] = await alice.mail.send(victim.peerId, 'still here')
      await pollUntil(() => (got.get(alice.peerId) ?? 0) === burst * 2 + 1, 20_000, 'a DM after the block')
      expect(after?.id).toBeDefined()
    } finally {
      await Promise.allSettled(nodes.map(async n => n.stop()))
      await cleanup()
    }
  }, 90_000)

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
        await Promise.all(
          Array.from({ length: 500 }, async (_, j) =>
            victim.mail.inbox.add({
              id: (i + j).toString(16).padStart(32, '0'),
              from: flooder,
              fromName: 'flooder',
              to: victim.peerId,
              priority: 'now',
              body: `flood ${i + j}`,
              sentAt: at,
              receivedAt: at
            })
          )
        )
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

  it(`cuts a flooder off within 5 s while honest DMs and group messages among ${HONEST} nodes all arrive`, async () => {
    const { home, cleanup } = await homeWithMesh()
    const nodes: MeshNode[] = []
    let flooderProc: ReturnType<typeof spawnFlooder> | undefined
    const victimProc = spawnVictim(home)
    try {
      const victimId = await victimProc.ready
      // the other 19 in this process, in batches: each start dials every node already registered
      for (let b = 1; b < HONEST; b += 5) {
        nodes.push(
          ...(await Promise.all(
            Array.from({ length: Math.min(5, HONEST - b) }, async (_, j) =>
              startNode({ home, name: `h${b + j}`, session: randomUUID(), presence: CALM })
            )
          ))
        )
      }
      flooderProc = spawnFlooder(home, victimId)
      const flooder = await flooderProc.ready
      await victimProc.call('watch', { flooder })
      step(`${nodes.length + 1} nodes and the flooder started`)
      const everyone = [victimId, ...nodes.map(m => m.peerId), flooder]
      await until(
        nodes,
        ['peer:join', 'peer:update'],
        () => nodes.every(n => everyone.every(m => m === n.peerId || n.presence.get(m)?.online === true)),
        60_000,
        'every node to see every other'
      )
      await pollUntilAsync(async () => victimProc.call<boolean>('sees', { ids: everyone }), 60_000, 'the victim to see every other')
      // gossipsub meshes form after the connections: wait until each node has @all peers (3, or
      // every peer it has: a node dials 2, SPEC.md §5.1, and gossip reaches the rest)
      const topic = groupTopic(nodes[0]?.mesh.contentSecret as Uint8Array, nodes[0]?.mesh.id as string, ALL)
      for (const n of nodes)
        await pollUntil(
          () => {
            const subs = n.libp2p.services.pubsub.getSubscribers(topic).length
            return subs >= 1 && subs >= Math.min(3, n.libp2p.getPeers().length)
          },
          30_000,
          'gossipsub subscribers'
        )
      // the same rule for the victim: it may have only the 2 peers it dialled
      await pollUntilAsync(
        async () => {
          const { subs, peers } = await victimProc.call<{ subs: number; peers: number }>('subscribers')
          return subs >= 1 && subs >= Math.min(3, peers)
        },
        30_000,
        "the victim's gossipsub subscribers"
      )
      step('meshes formed')

      // what every honest node stores from the flooder (when), and from honest peers (ids)
      const floodStored = new Map<MeshNode, number[]>(nodes.map(n => [n, []]))
      const honestGot = new Map<string, Set<string>>(nodes.map(n => [n.peerId, new Set()]))
      for (const n of nodes) {
        n.addEventListener('message:receive', evt => {
          if (evt.detail.from === flooder)
            floodStored.get(n)?.push(evt.detail.receivedAt) // when it was admitted
          else honestGot.get(n.peerId)?.add(evt.detail.id)
        })
      }
      const blockedAtBy = new Map<MeshNode, number>()
      for (const n of nodes)
        n.guard.addEventListener('flood:block', evt => {
          if (evt.detail.peer === flooder && !blockedAtBy.has(n)) blockedAtBy.set(n, Date.now())
        })
      const report0 = await victimProc.call<{ control: string }>('report')

      const t0 = Date.now()
      const latencies: number[] = []
      const probe = probeControl(report0.control, 11_000).then(l => {
        latencies.push(...l)
      })
      flooderProc.go()
      const expected: Array<{ to: string; id: string; group?: boolean }> = []
      const victimSendMs: number[] = []
      const victim: Sender = { peerId: victimId, send: async (to, body) => victimProc.call('send', { to, body }) }
      await honestTraffic([victim, ...nodes.map(local)], victim, expected, victimSendMs)
      step('honest sends done')
      const sent = await flooderProc.done
      await probe
      step('flood done')

      const toVictim = (): string[] => expected.filter(e => e.to === victimId).map(e => e.id)
      let victimGot = new Set<string>()
      const delivered = (): number => expected.filter(e => (e.to === victimId ? victimGot : honestGot.get(e.to))?.has(e.id) === true).length
      await pollUntilAsync(
        async () => {
          victimGot = new Set(await victimProc.call<string[]>('got', { ids: toVictim() }))
          return delivered() === expected.length
        },
        45_000,
        'honest messages'
      ).catch(() => {})
      const report = await victimProc.call<{
        floodStored: number[]
        blockedAt?: number
        refused: Record<string, number>
        limits: { dm: { burst: number; rate: number }; group: { burst: number; rate: number }; blockMs: number }
      }>('report')
      const lastFlood = Math.max(...[...floodStored.values(), report.floodStored].flat(), t0)
      const measured = {
        sent,
        blockedAfterMs: report.blockedAt != null ? report.blockedAt - t0 : null,
        blockedBy: blockedAtBy.size + (report.blockedAt != null ? 1 : 0),
        lastStoredAfterMs: lastFlood - t0,
        storedAtVictim: report.floodStored.length,
        storedMax: Math.max(report.floodStored.length, ...[...floodStored.values()].map(v => v.length)),
        honest: {
          expected: expected.length,
          delivered: delivered(),
          missingGroup: expected.filter(e => e.group === true && !(e.to === victimId ? victimGot : honestGot.get(e.to))?.has(e.id)).length,
          missingToVictim: toVictim().filter(id => !victimGot.has(id)).length
        },
        controlMaxMs: Math.max(...latencies),
        victimSendMaxMs: Math.max(...victimSendMs),
        refused: report.refused,
        perNode: nodes.map(n => [
          floodStored.get(n)?.length,
          Math.max(t0, ...(floodStored.get(n) ?? [])) - t0,
          n.mail.groups.stats.overBudget
        ])
      }
      step(`measured ${JSON.stringify(measured)}`)

      // it was a flood: >= 1,000 DMs a second while its stream was open, and @all likewise (the
      // flooder paces 1,500; next to the suite's other heavy files its process may not get the
      // CPU for more than half of that: 500 there)
      const floor = HONEST >= 20 ? 1000 : 500
      expect(sent.dmRateWhileOpen).toBeGreaterThanOrEqual(floor)
      expect(sent.groupRate).toBeGreaterThanOrEqual(floor)
      expect(measured.blockedAfterMs).not.toBeNull()
      expect(measured.blockedAfterMs).toBeLessThanOrEqual(5_000)
      // every node: nothing of the flooder's admitted after it blocked it, and never more than
      // its budgets allow (bursts plus rates over the time the flood was admitted)
      const l = report.limits
      const within = (times: number[], blockedAt: number | undefined): void => {
        const span = (Math.max(t0, ...times) - t0) / 1000
        expect(times.length).toBeLessThanOrEqual(l.dm.burst + l.group.burst + (l.dm.rate + l.group.rate) * span + 1)
        // a block lasts blockMs (then the flooder is on its budget again): on a loaded machine
        // the flood can outlast it
        if (blockedAt != null) expect(times.filter(t => t > blockedAt && t < blockedAt + l.blockMs).length).toBe(0)
      }
      within(report.floodStored, report.blockedAt)
      for (const n of nodes) within(floodStored.get(n) ?? [], blockedAtBy.get(n))
      expect(delivered() / expected.length).toBeGreaterThanOrEqual(0.999)
      // the victim stays usable during the flood (a starved one waits out the whole flood, ~8 s);
      // the bounds leave room for a loaded machine (quiet: ~0.1 s and tens of ms)
      expect(measured.controlMaxMs).toBeLessThan(2_500)
      expect(measured.victimSendMaxMs).toBeLessThan(4_000)

      // what the model gets: it has read what honest peers sent (as a session does, pushed one
      // by one), the flooder's unread are still piled up; an honest message sent now is among the
      // first it reads
      type Check = {
        messages: Array<{ id: string; from: string }>
        held?: Array<{ from: string; count: number }>
        refused?: Array<{ from: string; blocked: boolean }>
      }
      let read: Check
      do read = await victimProc.call<Check>('check', { limit: 50 })
      while (read.messages.some(m => m.from !== flooder))
      const [late] = await (nodes[6 % nodes.length] as MeshNode).mail.send(victimId, 'the build is green, please merge')
      const lateId = (late as { id: string }).id
      await pollUntilAsync(
        async () => (await victimProc.call<string[]>('got', { ids: [lateId] })).length === 1,
        20_000,
        'the late honest DM'
      )
      const first = await victimProc.call<Check>('check', { limit: 20 })
      expect(first.messages.map(m => m.id)).toContain(lateId)
      expect(first.held?.find(h => h.from === flooder)?.count ?? 0).toBeGreaterThan(0)
      expect(first.refused?.find(r => r.from === flooder)?.blocked).toBe(true)
    } finally {
      await flooderProc?.stop()
      await victimProc.stop()
      await Promise.allSettled(nodes.map(async n => n.stop()))
      await cleanup()
    }
  }, 240_000)
})
