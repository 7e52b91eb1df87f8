/**
 * The task board under a seeded random connector (the style of crdt-convergence.test.ts):
 * 5–20 replicas create, claim (often several at once), renew, release, complete, reopen and
 * cancel tasks while updates are lost, reordered and cut by partitions and replicas crash and
 * restart from their logs, on a virtual clock with skew. After healing and anti-entropy every
 * replica shows the same board, each task has at most one holder and everyone agrees on it, and
 * every replica that believed it held a task it lost was told (`task:lost`), as was the winner
 * of a contest that the loser still claims (`task:conflict`). SEEDS=n runs more; SEED=x replays one.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Ed25519PrivateKey } from '../src/index.js'
import { MemoryLog, Replica } from '../src/state/index.js'
import { TaskBoard } from '../src/tasks/index.js'
import { rng } from './helpers.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

interface Peer {
  key: Ed25519PrivateKey
  id: string
  log: MemoryLog
  inc: number
  board: TaskBoard
  replica: Replica
  outbox: Uint8Array[]
  lost: string[]
  conflicts: string[]
  up: boolean
}

async function run(seed: number, n: number, steps: number): Promise<{ contests: number; holders: number }> {
  const r = rng(seed)
  let clock = 1_000_000
  const skew = Array.from({ length: n }, () => Math.floor(r() * 200))
  let groups = Array.from({ length: n }, () => 0)
  const peers: Peer[] = []
  // presence as each replica would see it: a crashed peer, or one across the partition, is offline
  const offlineFor =
    (i: number) =>
    (peer: string): boolean => {
      const j = peers.findIndex(p => p.id === peer)
      return j >= 0 && (!(peers[j] as Peer).up || groups[j] !== groups[i])
    }
  const boot = async (i: number, key: Ed25519PrivateKey, log: MemoryLog, inc: number): Promise<Peer> => {
    const id = peerIdFromPrivateKey(key).toString()
    const replica = new Replica(MESH, key, SEAL, inc, log, id)
    await replica.load()
    const outbox: Uint8Array[] = []
    const board = new TaskBoard(
      replica,
      env => {
        outbox.push(env)
      },
      { now: () => clock + (skew[i] ?? 0), offline: offlineFor(i) }
    )
    const p: Peer = { key, id, log, inc, board, replica, outbox, lost: [], conflicts: [], up: true }
    board.addEventListener('task:lost', evt => {
      p.lost.push(evt.detail.id)
    })
    board.addEventListener('task:conflict', evt => {
      p.conflicts.push(`${evt.detail.id}!${evt.detail.other}`)
    })
    return p
  }
  for (let i = 0; i < n; i++) peers.push(await boot(i, await generateKeyPair('Ed25519'), new MemoryLog(), 1))
  const inflight: Array<{ from: number; to: number; bytes: Uint8Array }> = []
  const flush = (): void => {
    peers.forEach((p, i) => {
      for (const env of p.outbox.splice(0)) for (let j = 0; j < n; j++) if (j !== i) inflight.push({ from: i, to: j, bytes: env })
    })
  }
  const antiEntropy = async (a: number, b: number): Promise<void> => {
    for (const env of await (peers[b] as Peer).replica.missing((peers[a] as Peer).replica.versionVector()))
      await (peers[a] as Peer).replica.ingest(env)
  }
  // a refusal the board gives a caller (held, blocked, unknown here yet…) is part of the game
  const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      if (!['TaskStateError', 'UnknownTaskError'].includes((err as Error).name)) throw err
    }
  }
  const taskIds = (): string[] => [...new Set(peers.flatMap(p => p.board.index.ids()))]
  const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(r() * xs.length)]
  let seen = ''
  for (let step = 0; step < steps; step++) {
    clock += Math.floor(r() * 1500)
    const i = Math.floor(r() * n)
    const p = peers[i] as Peer
    const x = r()
    const id = pick(taskIds())
    if (!p.up) {
      if (x < 0.3) peers[i] = await boot(i, p.key, p.log, p.inc + 1) // restart from the log
    } else if (x < 0.15) {
      await attempt(async () =>
        p.board.create({ title: `task ${step}`, priority: pick(['high', 'normal', 'low']), deps: id != null && r() < 0.3 ? [id] : [] })
      )
    } else if (x < 0.4 && id != null) {
      // a contest: several replicas claim the same task before anything is delivered
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
        const q = peers[Math.floor(r() * n)] as Peer
        if (q.up) await attempt(async () => q.board.claim(id, 3_000 + Math.floor(r() * 15_000)))
      }
    } else if (x < 0.47 && id != null) await attempt(async () => p.board.complete(id, `done at ${step}`))
    else if (x < 0.5 && id != null) await attempt(async () => p.board.update(id, { status: r() < 0.5 ? 'open' : 'cancelled' }))
    else if (x < 0.54 && id != null) await attempt(async () => p.board.update(id, { release: true }))
    else if (x < 0.58 && id != null) await attempt(async () => p.board.update(id, { title: `renamed ${step}`, priority: 'high' }))
    else if (x < 0.63)
      groups = peers.map(() => Math.floor(r() * 2)) // a partition
    else if (x < 0.66)
      groups = peers.map(() => 0) // healed
    else if (x < 0.69)
      p.up = false // crash: no renewals, nothing received
    else if (x < 0.8) {
      const j = Math.floor(r() * n)
      if (j !== i && groups[i] === groups[j] && (peers[j] as Peer).up) await antiEntropy(i, j)
    }
    // what presence events tell a node (peer:join / peer:leave): views of offline claimants change
    const view = JSON.stringify([groups, peers.map(q => q.up)])
    if (view !== seen) for (const q of peers) q.board.presenceChanged()
    seen = view
    for (const q of peers) if (q.up) await q.board.renew()
    flush()
    for (let k = inflight.length - 1; k >= 0; k--) {
      if (r() < 0.5) continue
      const [m] = inflight.splice(k, 1)
      if (m == null || r() < 0.1 || groups[m.to] !== groups[m.from] || !(peers[m.to] as Peer).up || !(peers[m.from] as Peer).up) continue
      await (peers[m.to] as Peer).replica.ingest(m.bytes)
    }
  }
  // heal: crashed replicas restart, clocks agree, each replica notes what it believes it holds
  for (let i = 0; i < n; i++)
    if (!(peers[i] as Peer).up) peers[i] = await boot(i, (peers[i] as Peer).key, (peers[i] as Peer).log, (peers[i] as Peer).inc + 1)
  skew.fill(0)
  const believed = peers.map(
    p =>
      new Set(
        p.board
          .list()
          .filter(t => t.holder === p.id)
          .map(t => t.id)
      )
  )
  const contests = taskIds().filter(id => believed.filter(b => b.has(id)).length > 1)
  groups = peers.map(() => 0)
  for (const p of peers) p.board.presenceChanged()
  inflight.length = 0
  flush()
  inflight.length = 0
  const sync = async (): Promise<void> => {
    for (let round = 0; round < 2 * Math.ceil(Math.log2(n)) + 2; round++)
      for (let i = 0; i < n; i++) await antiEntropy(i, (i + 1 + round) % n)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) await antiEntropy(i, j)
  }
  await sync()
  for (const p of peers) await p.board.renew()
  for (const p of peers) p.outbox.length = 0
  await sync()
  const board = JSON.stringify(peers[0]?.board.list())
  for (const p of peers) expect(JSON.stringify(p.board.list())).toBe(board)
  for (const p of peers) expect([p.replica.stats.rejected, p.replica.deferred]).toEqual([0, 0])
  let holders = 0
  for (const t of peers[0]?.board.list() ?? []) {
    const self = peers.filter(p => p.board.get(t.id).holder === p.id).map(p => p.id)
    expect(self.length).toBeLessThanOrEqual(1)
    expect(self[0] ?? null).toBe(t.holder)
    if (t.holder != null) holders++
    for (const [i, p] of peers.entries()) {
      if (!(believed[i] as Set<string>).has(t.id) || t.status !== 'open' || t.lease == null || t.lease.claimant === p.id) continue
      expect(p.lost, `replica ${i} lost ${t.id} to ${t.lease.claimant} and was told`).toContain(t.id)
    }
    // the winner of a contest whose loser still holds a live claim was told about each such loser
    const winner = peers.find(p => p.id === t.holder)
    if (winner == null || !contests.includes(t.id)) continue
    for (const loser of peers) {
      const c = loser.board.index.entries(t.id)?.claims.get(loser.id)
      const live = c?.held === true && c.exp > clock && c.l > (loser.board.index.get(t.id)?.status.l ?? 0)
      if (loser !== winner && live && believed[peers.indexOf(loser)]?.has(t.id) === true)
        expect(winner.conflicts).toContain(`${t.id}!${loser.id}`)
    }
  }
  if (process.env.TASKS_FUZZ_DEBUG != null)
    process.stderr.write(
      `seed ${seed} n ${n}: tasks ${peers[0]?.board.size} contests ${contests.length} holders ${holders} lost ${peers.reduce((a, p) => a + p.lost.length, 0)} conflicts ${peers.reduce((a, p) => a + p.conflicts.length, 0)}\n`
    )
  return { contests: contests.length, holders }
}

/**
 * The default run is fixed, so CI never fails by luck: four spread seeds and two that caught a
 * holder restarted from its log and never told it lost (its remembered holdings started empty).
 * SEEDS=n draws n fresh ones to hunt with.
 */
const seeds =
  process.env.SEED != null
    ? [Number(process.env.SEED)]
    : process.env.SEEDS != null
      ? Array.from({ length: Number(process.env.SEEDS) }, (_, i) => 11 + i * 7919 + (Date.now() % 997))
      : [11, 7930, 15849, 23768, 16042, 24624]

describe('task board convergence under loss, partitions, restarts and concurrent claims', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: one holder per task after healing, agreed by every replica`, async () => {
      try {
        await run(seed, 5 + (seed % 16), 160)
      } catch (err) {
        throw new Error(`SEED=${seed} failed: ${(err as Error).message}`)
      }
    }, 60_000)
  }

  it('a contest across a partition is seen by both sides after healing, resolved the same way, and both are told', async () => {
    // fixed seed hunting for at least one contest keeps this case honest whatever the random seeds do
    let contests = 0
    for (let seed = 1; contests === 0 && seed < 40; seed++) contests += (await run(seed, 6, 120)).contests
    expect(contests).toBeGreaterThan(0)
  }, 60_000)
})
