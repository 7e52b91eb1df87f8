// Task board benchmarks (issue 11), one JSON object on stdout, progress on stderr.
//  1. list10k: one pure replica (no network) holding 10k tasks (a third claimed, some with
//     dependencies); `board.list()` of all of them, `list({claimable, limit 50})`, and a full
//     list right after one change (the fold and order caches rebuilt). Target: list p50 < 5 ms.
//  2. claimRoundTrip: N nodes (default 20) in one process sharing a temp home, all online to
//     each other; per round a task is created on a random node and, once every node holds it,
//     claimed by another random node: the time from the claim call until every node names the
//     claimer as the holder (checked on each node's 'task:change'), and the claim call's own
//     duration (it pulls from its peers before answering, SPEC.md §14.4). Target p50 < 50 ms.
// Env: BENCH_TASKS_NODES (20), BENCH_TASKS_ROUNDS (60), BENCH_TASKS_N (10000),
// BENCH_TASKS_ONLY=list,claim (a subset), BENCH_TASKS_NO_SETTLE=1 (claims answer without pulling),
// BENCH_TASKS_PLAIN_SETTLE=1 (settle with a new pull stream per peer, not the settle streams),
// CLAUDEMESH_BENCH_NODE_DIST=<a copy of packages/node/dist> (a baseline build, for before/after in one
// machine state). claimRoundTrip also gives when the claim was gossiped and when the first other
// node named the holder, the pulls per claim and the open connections per peer pair.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { emit, guard, progress, removeDir, round, section, sleep, tempDir } from './lib/harness.mjs'
import { dist, loadNode, loadPure, MESH_ID, pct, SEAL_KEY } from './lib/state-common.mjs'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const N = Number(process.env.BENCH_TASKS_N ?? 10_000)
const NODES = Number(process.env.BENCH_TASKS_NODES ?? 20)
// BENCH_QUICK=1 (CI smoke): 30 claim rounds, not 60
const ROUNDS = Number(process.env.BENCH_TASKS_ROUNDS ?? (process.env.BENCH_QUICK === '1' ? 30 : 60))
const only = (process.env.BENCH_TASKS_ONLY ?? 'list,claim').split(',')
const result = { ok: true, opts: { tasks: N, nodes: NODES, rounds: ROUNDS } }
guard(420_000, () => result)

function time(fn, runs) {
  const xs = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    fn()
    xs.push(performance.now() - t)
  }
  return pct(xs)
}

result.list10k = !only.includes('list')
  ? undefined
  : await section('list10k', async () => {
      const lib = await loadPure()
      const { TaskBoard } = await import(pathToFileURL(join(dist, 'tasks/index.js')).href)
      const key = await lib.keyFromSeed(1)
      const id = lib.peerIdStringOfRaw(key.publicKey.raw)
      const replica = new lib.Replica(MESH_ID, key, SEAL_KEY, 1, new lib.MemoryLog(), id)
      const board = new TaskBoard(replica, () => {})
      const t0 = performance.now()
      const ids = []
      for (let i = 0; i < N; i++) {
        const deps = i % 10 === 9 ? [ids[i - 1]] : []
        ids.push(
          (
            await board.create({
              title: `task ${i}: refactor module ${i % 97}`,
              body: 'x'.repeat(i % 200),
              priority: ['high', 'normal', 'low'][i % 3],
              deps
            })
          ).id
        )
      }
      const createMs = performance.now() - t0
      for (let i = 0; i < N; i += 3) if (i % 10 !== 9) await board.claim(ids[i], 600_000)
      progress(`${N} tasks created in ${round(createMs)} ms; listing`)
      const all = time(() => board.list(), 200)
      const claimable = time(() => board.list({ claimable: true, limit: 50 }), 200)
      // after a claim (the common write: renewals) one view is rebuilt; after a field change
      // (possibly a status change, which moves dependents) every view is
      const after = async change => {
        const xs = []
        for (let i = 0; i < 50; i++) {
          await change(i)
          const t = performance.now()
          board.list()
          xs.push(performance.now() - t)
        }
        return pct(xs)
      }
      const afterClaim = await after(i => board.claim(ids[(i * 30 + 1) % N], 600_000))
      const afterField = await after(i => board.update(ids[(i * 7) % N], { priority: 'high' }))
      return {
        ok: true,
        tasks: board.size,
        createPerTaskMs: round(createMs / N, 3),
        listAllMs: all,
        listClaimable50Ms: claimable,
        listAllAfterClaimMs: afterClaim,
        listAllAfterFieldChangeMs: afterField,
        target: 'listAll p50 < 5',
        meets: all.p50 < 5
      }
    })

result.claimRoundTrip = !only.includes('claim')
  ? undefined
  : await section('claimRoundTrip', async () => {
      const { createMesh, createMeshNode } = await loadNode()
      const home = tempDir('claudemesh-bench-tasks-')
      const nodes = []
      try {
        await createMesh(home, 'bench')
        for (let i = 0; i < NODES; i++)
          nodes.push(await createMeshNode({ home, mesh: 'bench', session: randomUUID(), name: `t${i}`, cwd: home }))
        await Promise.all(nodes.map(n => n.start()))
        const allOnline = () => nodes.every(n => nodes.every(m => m === n || n.presence.get(m.peerId)?.online === true))
        const deadline = Date.now() + 60_000
        while (!allOnline()) {
          if (Date.now() > deadline) throw new Error('not every node saw every other online within 60 s')
          await sleep(100)
        }
        await sleep(1_000) // gossipsub grafts its mesh on the 1 s heartbeat
        // diagnosis: BENCH_TASKS_NO_SETTLE=1 answers claims without the settle pulls (§14.4), to see what they cost
        if (process.env.BENCH_TASKS_NO_SETTLE === '1') for (const n of nodes) n.shared.tasks.opts.settle = undefined
        // diagnosis: BENCH_TASKS_PLAIN_SETTLE=1 settles with a new pull stream per peer, not the long-lived settle streams (§11.4)
        if (process.env.BENCH_TASKS_PLAIN_SETTLE === '1')
          for (const n of nodes) if (n.shared.sync.settle != null) n.shared.sync.settle.pull = async conn => n.shared.sync.pull(conn)
        const waitAll = pred =>
          new Promise((resolve, reject) => {
            const done = () => {
              for (const n of nodes) n.removeEventListener('task:change', check)
              clearTimeout(timer)
            }
            const check = () => {
              if (nodes.every(pred)) {
                done()
                resolve(performance.now())
              }
            }
            const timer = setTimeout(() => {
              done()
              reject(new Error('not every node agreed within 30 s'))
            }, 30_000)
            for (const n of nodes) n.addEventListener('task:change', check)
            check()
          })
        const waitAny = pred =>
          new Promise(resolve => {
            const check = () => {
              if (nodes.some(pred)) {
                for (const n of nodes) n.removeEventListener('task:change', check)
                resolve(performance.now())
              }
            }
            for (const n of nodes) n.addEventListener('task:change', check)
          })
        const agree = []
        const call = []
        // phases: the claim's write is durable and gossiped (publish), the first other node names the holder
        const published = []
        const durable = []
        const first = []
        const pullsBefore = nodes.reduce((a, n) => a + n.shared.sync.stats.pulls + (n.shared.sync.settle?.stats.asked ?? 0), 0)
        const conns = nodes.reduce((a, n) => a + n.libp2p.getConnections().filter(c => c.status === 'open').length, 0)
        for (let r = 0; r < ROUNDS; r++) {
          const maker = nodes[r % NODES]
          const claimer = nodes[(r * 7 + 3) % NODES]
          const t = await maker.data.tasks.create({ title: `round ${r}` })
          await waitAll(n => n.shared.tasks.index.get(t.id) != null)
          const t0 = performance.now()
          const seen = waitAll(n => n.data.tasks.get(t.id).holder === claimer.peerId)
          const firstOther = waitAny(n => n !== claimer && n.data.tasks.get(t.id).holder === claimer.peerId)
          const pub = claimer.shared.sync.publish
          claimer.shared.sync.publish = env => {
            published.push(performance.now() - t0)
            claimer.shared.sync.publish = pub
            pub.call(claimer.shared.sync, env)
          }
          const log = claimer.shared.replica.store
          const append = log.append
          log.append = async (...args) => {
            log.append = append
            await append.apply(log, args)
            durable.push(performance.now() - t0)
          }
          const res = await claimer.data.tasks.claim(t.id, 60_000)
          call.push(performance.now() - t0)
          if (!res.won) throw new Error('an uncontested claim lost')
          agree.push((await seen) - t0)
          first.push((await firstOther) - t0)
        }
        const pulls = nodes.reduce((a, n) => a + n.shared.sync.stats.pulls + (n.shared.sync.settle?.stats.asked ?? 0), 0) - pullsBefore
        // the same mesh, the same moment: a shared-state write until every node has it, for reference
        const ref = []
        for (let r = 0; r < Math.min(ROUNDS, 30); r++) {
          const writer = nodes[(r * 7 + 3) % NODES]
          const t0 = performance.now()
          const seen = new Promise((resolve, reject) => {
            const check = () => {
              if (nodes.every(n => n.data.state.get(`ref${r}`) != null)) {
                for (const n of nodes) n.removeEventListener('state:change', check)
                clearTimeout(timer)
                resolve(performance.now())
              }
            }
            const timer = setTimeout(() => reject(new Error('a state write did not reach every node within 30 s')), 30_000)
            for (const n of nodes) n.addEventListener('state:change', check)
          })
          await writer.data.state.set(`ref${r}`, r)
          ref.push((await seen) - t0)
        }
        const a = pct(agree)
        return {
          ok: true,
          nodes: NODES,
          rounds: ROUNDS,
          untilAllAgreeMs: a,
          claimCallMs: pct(call),
          claimWrittenMs: pct(published),
          claimDurableMs: pct(durable),
          firstOtherAgreesMs: pct(first),
          stateSetUntilAllHaveItMs: pct(ref),
          // pull streams per claim, all nodes (the settle pulls, plus the periodic ones), and open connections per peer pair
          pullsPerClaim: round(pulls / ROUNDS, 1),
          connectionsPerPeer: round(conns / (NODES * (NODES - 1)), 2),
          target: 'p50 < 50',
          meets: a.p50 < 50
        }
      } finally {
        await Promise.all(nodes.map(n => n.stop({ flushMs: 0 }).catch(() => {})))
        removeDir(home)
      }
    })

result.ok = [result.list10k, result.claimRoundTrip].every(r => r?.ok !== false)
emit(result)
process.exit(0)
