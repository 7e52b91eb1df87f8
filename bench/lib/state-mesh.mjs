// `set_state` → visible on all of N nodes (default 20) in one process sharing a temp home;
// a section of bench/state.mjs, run as `node state-mesh.mjs '<json opts>'`, one JSON line on
// stdout. createMesh, createMeshNode ×N, start all, wait (on 'peer:join' events) until every
// node lists every other online, then S sets (default 200) from random nodes, one at a time:
// per set, the time from the `state.set` call until each other node emitted 'state:change'
// for that key. Percentiles are over all (set, node) pairs. A set whose change has not reached
// every node within `perSetTimeoutMs` does not hold up the next; late arrivals are still
// timed, and at the end we wait up to `finalWaitMs` for stragglers (gossip lost → a gap pull
// or the 30 s anti-entropy round repairs it).
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { emit, guard, progress, removeDir, round, sleep, tempDir } from './harness.mjs'
import { loadNode, pct, rng } from './state-common.mjs'

const opts = {
  size: 20,
  sets: 200,
  perSetTimeoutMs: 5_000,
  finalWaitMs: 35_000,
  joinTimeoutMs: 30_000,
  settleMs: 1_000,
  seed: 7,
  ...JSON.parse(process.argv[2] ?? '{}')
}
const STOP_TIMEOUT_MS = 15_000
const result = { ok: true, opts }
guard(opts.boundMs ?? 240_000, () => result)
const { createMesh, createMeshNode } = await loadNode()

const home = tempDir('claudemesh-bench-state-mesh-')
const nodes = []
try {
  await createMesh(home, 'bench')
  for (let i = 0; i < opts.size; i++)
    nodes.push(await createMeshNode({ home, mesh: 'bench', session: randomUUID(), name: `s${i}`, cwd: home }))
  // every node lists every other online, driven by 'peer:join'
  const t0 = performance.now()
  let started = false
  let finish
  const joined = new Promise(resolve => {
    finish = resolve
  })
  const complete = new Set()
  const check = n => {
    if (!started || complete.has(n)) return
    for (const m of nodes) if (m !== n && n.presence.get(m.peerId)?.online !== true) return
    complete.add(n)
    if (complete.size === nodes.length) finish(true)
  }
  for (const n of nodes)
    n.addEventListener('peer:join', () => {
      check(n)
    })
  const joinTimer = setTimeout(() => finish(false), opts.joinTimeoutMs)
  await Promise.all(nodes.map(n => n.start()))
  started = true
  for (const n of nodes) check(n)
  if (!(await joined))
    throw new Error(`not every node saw every other online within ${opts.joinTimeoutMs} ms (${complete.size} of ${nodes.length} complete)`)
  clearTimeout(joinTimer)
  result.allOnlineMs = round(performance.now() - t0)
  progress(`${opts.size} nodes all online after ${result.allOnlineMs} ms; settling ${opts.settleMs} ms`)
  await sleep(opts.settleMs) // let gossipsub graft its mesh for the crdt topic (1 s heartbeat)

  // per key: when it was set, by which node, and when each other node saw it
  const sets = new Map()
  let waiter = null
  nodes.forEach((n, idx) => {
    n.addEventListener('state:change', e => {
      const t = performance.now()
      const d = e.detail
      if (d.local) return
      const s = sets.get(d.key)
      if (s == null || s.from === idx || s.seen.has(idx)) return
      s.seen.set(idx, t - s.t0)
      if (waiter != null && waiter.key === d.key && s.seen.size === nodes.length - 1) waiter.done()
    })
  })
  const r = rng(opts.seed)
  let late = 0
  const perSet = []
  const tRun = performance.now()
  for (let i = 0; i < opts.sets; i++) {
    const from = Math.floor(r() * nodes.length)
    const key = `bench/task-${i}`
    const value = { status: r() < 0.5 ? 'in-progress' : 'done', owner: `s${from}`, note: `step ${i} of the rollout`, n: i }
    const s = { from, t0: 0, seen: new Map() }
    sets.set(key, s)
    const complete = new Promise(resolve => {
      const timer = setTimeout(() => {
        waiter = null
        resolve(false)
      }, opts.perSetTimeoutMs)
      waiter = {
        key,
        done: () => {
          clearTimeout(timer)
          waiter = null
          resolve(true)
        }
      }
    })
    s.t0 = performance.now()
    await nodes[from].data.state.set(key, value)
    const setMs = performance.now() - s.t0
    const ok = await complete
    if (!ok) late++
    perSet.push({ setMs, allMs: ok ? Math.max(...s.seen.values()) : null })
    if ((i + 1) % 50 === 0) progress(`${i + 1}/${opts.sets} sets`)
  }
  result.setsWallMs = round(performance.now() - tRun)
  // stragglers: keys some node has not seen yet
  const missing = () => {
    let m = 0
    for (const s of sets.values()) m += nodes.length - 1 - s.seen.size
    return m
  }
  if (missing() > 0) {
    progress(`${missing()} (set, node) pairs still missing; waiting up to ${opts.finalWaitMs} ms`)
    const deadline = performance.now() + opts.finalWaitMs
    while (missing() > 0 && performance.now() < deadline) await sleep(100)
  }
  const lat = []
  for (const s of sets.values()) for (const ms of s.seen.values()) lat.push(ms)
  const pairs = opts.sets * (nodes.length - 1)
  const summary = pct(lat)
  result.visibleOnAll = {
    target: 'p99 ≤ 200 ms',
    pairs,
    received: lat.length,
    neverReceived: pairs - lat.length,
    setsNotOnAllWithinTimeout: late,
    ms: summary,
    /** per set: until the last of the other nodes saw it */
    lastNodeMs: pct(perSet.map(p => p.allMs).filter(x => x != null)),
    /** the `state.set` call itself (sign, log append with a synced batch) */
    setCallMs: pct(perSet.map(p => p.setMs)),
    meetsTarget: pairs === lat.length && summary.p99 <= 200
  }
  progress(`visible on all: p50 ${summary.p50} ms, p99 ${summary.p99} ms, ${pairs - lat.length} pairs never received`)
  result.sync = nodes
    .map(n => ({ ...n.shared.sync.stats, ...n.shared.replica.stats }))
    .reduce((a, b) => {
      for (const k of Object.keys(b)) a[k] = (a[k] ?? 0) + b[k]
      return a
    }, {})
  result.connectionsPerNode = pct(
    nodes.map(n => n.libp2p.getConnections().length),
    1
  )
  result.rssMB = round(process.memoryUsage().rss / 2 ** 20)
} catch (err) {
  result.ok = false
  result.error = err.message
  progress(`state mesh failed: ${err.stack ?? err}`)
} finally {
  let timer
  const stopped = Promise.allSettled(nodes.map(n => n.stop())).then(() => true)
  const bounded = await Promise.race([
    stopped,
    new Promise(resolve => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS, false)
    })
  ])
  clearTimeout(timer)
  if (!bounded) progress(`some nodes did not stop within ${STOP_TIMEOUT_MS} ms`)
  removeDir(home)
}
emit(result)
process.exit(0)
