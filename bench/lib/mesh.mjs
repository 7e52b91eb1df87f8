// N nodes in one process share a temp home: start them all at once and time until every
// node's presence lists every other node online. Driven by 'peer:join' events, no polling.
// Runs as its own child process (`node mesh.mjs '{"size":20,...}'`), so a crash or a leak
// in one mesh size cannot take down or skew the others; `meshInChild` is the parent side.
// BENCH_MESH_DIAG=1: a failed run prints, on stderr, the connection graph's components and each
// node's connections, gossipsub state and registry view (`diagnose`).
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { emit, guard, progress, removeDir, root, round, spawnTracked, stopChild, summary, tempDir } from './harness.mjs'

// the node package under test; CLAUDEMESH_BENCH_NODE_DIST swaps in another build of its dist/
const dist = process.env.CLAUDEMESH_BENCH_NODE_DIST ?? join(root, 'packages/node/dist')
const STOP_TIMEOUT_MS = 15_000
/** after all are online, how long the idle cost is measured (BENCH_MESH_IDLE_MS; BENCH_QUICK=1: 3 s) */
const IDLE_MS = Number(process.env.BENCH_MESH_IDLE_MS ?? (process.env.BENCH_QUICK === '1' ? 3_000 : 10_000))
/** BENCH_MESH_IDLE_AFTER_MS: wait this long after all are online before the idle window (a settled home: SPEC.md §5.1 SETTLE_MS) */
const IDLE_AFTER_MS = Number(process.env.BENCH_MESH_IDLE_AFTER_MS ?? 0)
const isMain = process.argv[1] === fileURLToPath(import.meta.url)
let createMesh, createMeshNode

/** Fraction of ordered pairs (a sees b online) over all N·(N-1) pairs. */
function coverage(nodes) {
  const ids = nodes.filter(n => n.key != null).map(n => n.peerId)
  let seen = 0
  for (const n of nodes) {
    if (n.presence == null) continue
    for (const id of ids) if (id !== n.peerId && n.presence.get(id)?.online === true) seen++
  }
  const total = nodes.length * (nodes.length - 1)
  return total === 0 ? 1 : seen / total
}

/**
 * BENCH_MESH_DIAG=1, on a failed run: on stderr, the components of the connection graph and,
 * for each connection, whether gossipsub lists the peer as subscribed to presence and in its
 * topic mesh at each end, and whether each end sees the other online.
 */
function diagnose(nodes) {
  const byId = new Map(nodes.map(n => [n.peerId, n]))
  const name = id => (byId.has(id) ? `n${nodes.indexOf(byId.get(id))}` : id.slice(-6))
  const comp = new Map()
  let k = 0
  for (const n of nodes) {
    if (comp.has(n.peerId)) continue
    const todo = [n.peerId]
    comp.set(n.peerId, k)
    while (todo.length > 0) {
      const id = todo.pop()
      for (const c of byId.get(id)?.libp2p.getConnections() ?? []) {
        const r = c.remotePeer.toString()
        if (byId.has(r) && !comp.has(r)) {
          comp.set(r, k)
          todo.push(r)
        }
      }
    }
    k++
  }
  progress(`diag: ${k} component(s) of the connection graph`)
  for (const n of nodes) {
    const ps = n.libp2p.services.pubsub
    const topic = ps.getTopics().find(t => t.includes('presence'))
    const subs = new Set(ps.getSubscribers(topic).map(p => p.toString()))
    const mesh = new Set(ps.getMeshPeers(topic))
    const missed = nodes.filter(m => m !== n && n.presence.get(m.peerId)?.online !== true)
    const missing = `${missed.length}${missed.length > 0 && missed.length <= 3 ? ` (${missed.map(m => `${name(m.peerId)}:${n.presence.get(m.peerId)?.state ?? 'unknown'}`).join(',')})` : ''}`
    const conns = n.libp2p
      .getConnections()
      .map(c => {
        const r = c.remotePeer.toString()
        const sees = n.presence.get(r)?.online === true ? '' : ' !online'
        return `${name(r)}${subs.has(r) ? '' : ' !sub'}${mesh.has(r) ? '' : ' !mesh'}${sees} [${c.status} ${c.streams.map(s => s.protocol?.split('/').at(-2)).join(',')}]`
      })
      .join('; ')
    progress(`diag ${name(n.peerId)} c${comp.get(n.peerId)} misses ${missing}: ${conns}`)
    if (missed.length > 0) {
      const st = n.presence.stats
      const scores = n.libp2p
        .getConnections()
        .map(c => `${name(c.remotePeer.toString())}=${ps.getScore?.(c.remotePeer.toString())?.toFixed?.(1)}`)
      progress(
        `diag   ${name(n.peerId)} presence accepted=${st.accepted} rejected=${st.rejected} stale=${st.stale} scores ${scores.join(' ')}`
      )
      for (const m of missed)
        progress(`diag   ${name(m.peerId)} is online at ${nodes.filter(o => o.presence.get(m.peerId)?.online === true).length} nodes`)
    }
    const d = n.dialer
    if (d != null)
      progress(
        `diag   ${name(n.peerId)} older=[${[...(d.older ?? [])].map(name).join(',')}] inflight=[${[...(d.inflight ?? [])].map(name).join(',')}] connectedPeers=${d.connectedPeers}`
      )
  }
}

/** One run: returns { ok, ms } or { ok: false, seen }. Always stops the nodes and removes the home. */
export async function meshOnce(size, timeoutMs) {
  const home = tempDir('claudemesh-bench-mesh-')
  const nodes = []
  try {
    await createMesh(home, 'bench')
    for (let i = 0; i < size; i++) {
      nodes.push(await createMeshNode({ home, mesh: 'bench', session: randomUUID(), name: `n${i}`, cwd: home }))
    }
    const rssBefore = process.memoryUsage().rss
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    let started = false
    let finish
    const done = new Promise(resolve => {
      finish = resolve
    })
    // nodes that list every other node online; a node is re-checked only when it gets a join
    const complete = new Set()
    const check = n => {
      if (!started || complete.has(n)) return
      for (const m of nodes) if (m !== n && n.presence.get(m.peerId)?.online !== true) return
      complete.add(n)
      if (complete.size === nodes.length) finish(performance.now())
    }
    for (const n of nodes)
      n.addEventListener('peer:join', () => {
        check(n)
      })
    const timer = setTimeout(() => {
      finish(null)
    }, timeoutMs)
    const startErr = await Promise.all(nodes.map(n => n.start())).then(
      () => null,
      err => err
    )
    const startedAt = performance.now()
    started = true
    if (startErr != null) finish(null)
    for (const n of nodes) check(n)
    const end = await done
    // all N nodes share this one process: its CPU is what the mesh cost, whatever else loads the machine
    const cpu = process.cpuUsage(cpu0)
    const cpuMs = round((cpu.user + cpu.system) / 1000, 0)
    // records checked by then, summed over nodes: accepted / (N × (N − 1)) is how many versions
    // of each record a node took (signature checks); stale copies cost a decode, not a check
    const presence = { accepted: 0, stale: 0, rejected: 0 }
    for (const n of nodes) for (const k of Object.keys(presence)) presence[k] += n.presence.stats?.[k] ?? 0
    presence.versionsPerRecord = round(presence.accepted / (size * (size - 1)), 2)
    clearTimeout(timer)
    const rssGrowthPerNodeMB = round((process.memoryUsage().rss - rssBefore) / size / 2 ** 20)
    if (end == null) {
      if (process.env.BENCH_MESH_DIAG === '1') diagnose(nodes)
      const seen = round(coverage(nodes), 3)
      return { ok: false, seen, timeoutMs, cpuMs, ...(startErr != null ? { error: startErr.message } : {}) }
    }
    // what the mesh costs once everyone is online and nothing is sent: heartbeats, gossip upkeep, timers
    if (IDLE_AFTER_MS > 0) await new Promise(resolve => setTimeout(resolve, IDLE_AFTER_MS))
    const idle0 = process.cpuUsage()
    await new Promise(resolve => setTimeout(resolve, IDLE_MS))
    const idle = process.cpuUsage(idle0)
    const idleCpuMsPerS = round((idle.user + idle.system) / IDLE_MS, 0)
    const conns = nodes.map(n => n.libp2p.getConnections().length)
    return {
      ok: true,
      ms: round(end - t0),
      allStartedMs: round(startedAt - t0),
      cpuMs,
      cpuMsPerNode: round(cpuMs / size),
      presence,
      rssGrowthPerNodeMB,
      idle: {
        afterMs: IDLE_AFTER_MS,
        windowMs: IDLE_MS,
        cpuMsPerS: idleCpuMsPerS,
        cpuMsPerNodePerS: round(idleCpuMsPerS / size, 2),
        connectionsPerNode: round(conns.reduce((a, b) => a + b, 0) / size, 2)
      }
    }
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
    if (!bounded) progress(`mesh of ${size}: some nodes did not stop within ${STOP_TIMEOUT_MS} ms`)
    removeDir(home)
  }
}

export async function meshBench({ size, runs, timeoutMs, targetMs }, results = []) {
  if (createMesh == null) {
    await import(pathToFileURL(join(dist, 'polyfill.js')).href)
    ;({ createMesh, createMeshNode } = await import(pathToFileURL(join(dist, 'index.js')).href))
  }
  for (let i = 0; i < runs; i++) {
    const r = await meshOnce(size, timeoutMs)
    progress(`mesh of ${size}, run ${i + 1}/${runs}: ${r.ok ? `${r.ms} ms` : `FAILED, ${r.seen} of pairs online`}`)
    results.push(r)
  }
  const ok = results.every(r => r.ok)
  const median = ok ? summary(results.map(r => r.ms)).median : null
  return {
    ok,
    target: targetMs != null ? `< ${targetMs} ms (all ${size} list each other online)` : 'none (reported)',
    runs: results,
    ...(ok ? { medianMs: median } : { seen: Math.min(...results.map(r => r.seen ?? 1)) }),
    ...(targetMs != null ? { meetsTarget: ok && median < targetMs } : {})
  }
}

/** Parent side: run `meshBench(opts)` in a child process, bounded; its stderr is passed on. */
export async function meshInChild(opts) {
  const bound = opts.runs * (opts.timeoutMs + STOP_TIMEOUT_MS) + 30_000
  const p = spawnTracked([fileURLToPath(import.meta.url), JSON.stringify(opts)])
  p.child.stderr.on('data', d => {
    process.stderr.write(d)
  })
  const timer = setTimeout(() => {
    void stopChild(p)
  }, bound)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  const last = p.stdout.seen.at(-1)?.line
  try {
    return JSON.parse(last)
  } catch {
    return { ok: false, error: `mesh child exited with ${code ?? signal} and no JSON` }
  }
}

if (isMain) {
  const opts = JSON.parse(process.argv[2])
  const results = []
  guard(opts.runs * (opts.timeoutMs + STOP_TIMEOUT_MS + IDLE_AFTER_MS + IDLE_MS) + 20_000, () => ({ runs: results }))
  try {
    emit(await meshBench(opts, results))
  } catch (err) {
    emit({ ok: false, error: err.message, runs: results })
  }
  process.exit(0)
}
