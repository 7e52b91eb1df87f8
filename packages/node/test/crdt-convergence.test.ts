/**
 * Convergence in the style of Yjs's own tests: replicas joined by a seeded random connector
 * that delivers, reorders, drops and partitions; random state and memory operations; random
 * restarts from the log. After healing and anti-entropy, every replica holds the same state
 * and memory. SEEDS=n runs more seeds; SEED=x replays one.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Ed25519PrivateKey } from '../src/index.js'
import { SharedMemory } from '../src/memory/index.js'
import { MemoryLog, Replica, SharedState } from '../src/state/index.js'
import { rng } from './helpers.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

interface Peer {
  key: Ed25519PrivateKey
  id: string
  log: MemoryLog
  replica: Replica
  state: SharedState
  memory: SharedMemory
  inc: number
  outbox: Uint8Array[]
}

async function boot(key: Ed25519PrivateKey, log: MemoryLog, inc: number): Promise<Peer> {
  const id = peerIdFromPrivateKey(key).toString()
  const replica = new Replica(MESH, key, SEAL, inc, log, id)
  await replica.load()
  const peer: Peer = { key, id, log, replica, inc, outbox: [], state: undefined as never, memory: undefined as never }
  peer.state = new SharedState(replica, env => {
    peer.outbox.push(env)
  })
  peer.memory = new SharedMemory(replica, env => {
    peer.outbox.push(env)
  })
  return peer
}

const view = (p: Peer): unknown => ({
  state: Object.fromEntries(p.state.list().map(e => [e.key, [e.value, e.updatedBy]])),
  memory: [...p.replica.doc.getMap('memory').entries()].map(([k, v]) => [k, JSON.stringify(v)]).sort()
})

async function run(seed: number, n: number, steps: number): Promise<void> {
  const r = rng(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T
  const peers: Peer[] = []
  for (let i = 0; i < n; i++) peers.push(await boot(await generateKeyPair('Ed25519'), new MemoryLog(), 1))
  let groups = peers.map(() => 0)
  const inflight: Array<{ from: number; to: number; bytes: Uint8Array }> = []
  const flushOutboxes = (): void => {
    peers.forEach((p, i) => {
      for (const env of p.outbox.splice(0)) for (let j = 0; j < n; j++) if (j !== i) inflight.push({ from: i, to: j, bytes: env })
    })
  }
  const antiEntropy = async (a: number, b: number): Promise<void> => {
    for (const env of await (peers[b] as Peer).replica.missing((peers[a] as Peer).replica.versionVector()))
      await (peers[a] as Peer).replica.ingest(env)
  }
  for (let step = 0; step < steps; step++) {
    const x = r()
    const i = Math.floor(r() * n)
    const p = peers[i] as Peer
    if (x < 0.3) await p.state.set(`k${Math.floor(r() * 8)}`, { n: step, from: i })
    else if (x < 0.4) await p.state.delete(`k${Math.floor(r() * 8)}`)
    else if (x < 0.5) await p.memory.remember(`note ${step} about topic ${Math.floor(r() * 5)}`, [`t${Math.floor(r() * 3)}`])
    else if (x < 0.55) {
      const ids = [...p.replica.doc.getMap('memory').keys()]
      if (ids.length > 0) await p.memory.forget(pick(ids))
    } else if (x < 0.6)
      groups = peers.map(() => Math.floor(r() * 2)) // a partition
    else if (x < 0.63)
      groups = peers.map(() => 0) // healed
    else if (x < 0.67)
      peers[i] = await boot(p.key, p.log, p.inc + 1) // restart from the log
    else if (x < 0.75) {
      const j = Math.floor(r() * n)
      if (j !== i && groups[i] === groups[j]) await antiEntropy(i, j)
    }
    flushOutboxes()
    // deliver a random part of what is in flight, in random order; drop 10%
    for (let k = inflight.length - 1; k >= 0; k--) {
      if (r() < 0.5) continue
      const [m] = inflight.splice(k, 1)
      if (m == null || r() < 0.1) continue
      if (groups[m.to] !== groups[m.from]) continue // partitioned: lost
      await (peers[m.to] as Peer).replica.ingest(m.bytes)
    }
  }
  // heal, lose whatever is still in flight, and let anti-entropy finish the job
  inflight.length = 0
  flushOutboxes()
  inflight.length = 0
  for (let round = 0; round < 2 * Math.ceil(Math.log2(n)) + 2; round++) {
    for (let i = 0; i < n; i++) await antiEntropy(i, (i + 1 + round) % n)
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) await antiEntropy(i, j)
  const first = JSON.stringify(view(peers[0] as Peer))
  for (const p of peers) expect(JSON.stringify(view(p))).toBe(first)
  // honest updates are never refused, whatever the order they came in; none is left waiting
  for (const p of peers) expect([p.replica.stats.rejected, p.replica.deferred]).toEqual([0, 0])
  // memory indexes agree with the documents
  const q = (await (peers[0] as Peer).memory.recall('topic', { limit: 100 })).map(h => h.id).sort()
  for (const p of peers) expect((await p.memory.recall('topic', { limit: 100 })).map(h => h.id).sort()).toEqual(q)
}

const seeds =
  process.env.SEED != null
    ? [Number(process.env.SEED)]
    : Array.from({ length: Number(process.env.SEEDS ?? 6) }, (_, i) => 7 + i * 104729 + (Date.now() % 1009))

describe('CRDT convergence under loss, reordering, partitions and restarts', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: all replicas converge`, async () => {
      try {
        await run(seed, 5 + (seed % 6), 120)
      } catch (err) {
        throw new Error(`SEED=${seed} failed: ${(err as Error).message}`)
      }
    }, 60_000)
  }
})
