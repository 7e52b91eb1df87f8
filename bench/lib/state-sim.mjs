// Convergence of N pure replicas (default 50) over a simulated network, lossless and with 10%
// of updates lost; a section of bench/state.mjs (`node state-sim.mjs '<json opts>'`, one
// JSON line on stdout). Time is simulated: a seeded event queue, so runs are deterministic
// and convergence is measured in simulated ms (real signing, verifying and Yjs work happen
// between events; their wall time is reported separately).
//  - each local change's envelope is sent to every other replica with a latency drawn from
//    [latMin, latMax) ms, and dropped with probability `loss` (gossip is a hint);
//  - anti-entropy: every replica pulls from one random other every `syncEveryMs` (first at a
//    random phase), and at once when its Replica reports a gap (`onGap`; one gap pull in
//    flight per replica). A pull is a request (carrying the puller's version vector at send
//    time) that reaches the other after one latency, and an answer (`other.replica.missing(vv)`)
//    that comes back after another; pulls are not lost (a stream, not gossip);
//  - `ops` random operations (state set 45%, delete 10%, remember 35%, forget 10%) at seeded
//    random times in [0, opsSpanMs), each on a random replica;
//  - converged: the first event at or after the last operation after which every replica's
//    state map and memory map are equal.
// Both runs of one seed use the same keys and operation schedule; only the loss differs.
import { performance } from 'node:perf_hooks'
import { emit, guard, progress, round } from './harness.mjs'
import { loadPure, noteGenerator, pct, pureReplica, rng } from './state-common.mjs'

const opts = {
  replicas: 50,
  ops: 200,
  opsSpanMs: 1000,
  latMinMs: 1,
  latMaxMs: 5,
  loss: 0.1,
  syncEveryMs: 100,
  maxSimMs: 60_000,
  seeds: [1, 2, 3, 4, 5],
  ...JSON.parse(process.argv[2] ?? '{}')
}
const result = { ok: true, opts }
guard(opts.boundMs ?? 240_000, () => result)
const lib = await loadPure()

/** A binary min-heap of events ordered by (t, insertion order). */
class Queue {
  constructor() {
    this.h = []
    this.n = 0
  }
  get size() {
    return this.h.length
  }
  push(t, ev) {
    const h = this.h
    const x = { t, k: this.n++, ev }
    h.push(x)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (less(h[p], x)) break
      h[i] = h[p]
      i = p
    }
    h[i] = x
  }

  pop() {
    const h = this.h
    const top = h[0]
    const last = h.pop()
    if (h.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= h.length) break
        const r = l + 1
        const c = r < h.length && less(h[r], h[l]) ? r : l
        if (less(last, h[c])) break
        h[i] = h[c]
        i = c
      }
      h[i] = last
    }
    return top
  }
}
const less = (a, b) => a.t < b.t || (a.t === b.t && a.k < b.k)

const keysCache = new Map()
async function keysFor(seed, n) {
  if (!keysCache.has(seed)) keysCache.set(seed, await Promise.all(Array.from({ length: n }, (_, i) => lib.keyFromSeed(seed * 10_000 + i))))
  return keysCache.get(seed)
}

function schedule(seed) {
  const r = rng(seed * 7919 + 1)
  const gen = noteGenerator(seed)
  const ops = []
  for (let i = 0; i < opts.ops; i++) {
    const t = r() * opts.opsSpanMs
    const at = Math.floor(r() * opts.replicas)
    const x = r()
    const op =
      x < 0.45
        ? { kind: 'set', key: `k${Math.floor(r() * 30)}`, value: { step: i, at, phase: r() < 0.5 ? 'plan' : 'build' } }
        : x < 0.55
          ? { kind: 'delete', key: `k${Math.floor(r() * 30)}` }
          : x < 0.9
            ? { kind: 'remember', ...gen() }
            : { kind: 'forget', pick: r() }
    ops.push({ t, at, ...op })
  }
  return ops.sort((a, b) => a.t - b.t)
}

async function run(seed, loss) {
  const n = opts.replicas
  const keys = await keysFor(seed, n)
  const net = rng(seed * 31 + 3)
  const drop = rng(seed * 131 + 5)
  const ae = rng(seed * 17 + 11)
  const lat = () => opts.latMinMs + net() * (opts.latMaxMs - opts.latMinMs)
  const q = new Queue()
  const stats = { updates: 0, sends: 0, dropped: 0, delivered: 0, periodicPulls: 0, gapPulls: 0, pulledEnvelopes: 0, events: 0 }
  let now = 0
  const reps = []
  const gapPending = new Array(n).fill(false)
  const dirty = new Array(n).fill(true)
  const prints = new Array(n).fill('')
  const otherThan = a => {
    const b = Math.floor(ae() * (n - 1))
    return b >= a ? b + 1 : b
  }
  const pull = (a, why) => {
    const b = otherThan(a)
    if (why === 'gap') stats.gapPulls++
    else stats.periodicPulls++
    q.push(now + lat(), { type: 'pullReq', a, b, vv: reps[a].replica.versionVector(), why })
  }
  for (let i = 0; i < n; i++) {
    const publish = env => {
      stats.updates++
      for (let j = 0; j < n; j++) {
        if (j === i) continue
        stats.sends++
        const d = lat()
        if (loss > 0 && drop() < loss) {
          stats.dropped++
          continue
        }
        q.push(now + d, { type: 'deliver', to: j, env })
      }
    }
    const p = await pureReplica(lib, { key: keys[i], log: new lib.MemoryLog(), publish })
    p.replica.onGap = () => {
      if (gapPending[i]) return
      gapPending[i] = true
      pull(i, 'gap')
    }
    p.replica.doc.on('update', () => {
      dirty[i] = true
    })
    reps.push(p)
  }
  const ops = schedule(seed)
  for (const op of ops) q.push(op.t, { type: 'op', op })
  for (let i = 0; i < n; i++) q.push(ae() * opts.syncEveryMs, { type: 'tick', a: i })
  const tLastOp = ops.at(-1).t
  let opsLeft = ops.length

  const fingerprint = i => {
    if (!dirty[i]) return prints[i]
    const doc = reps[i].replica.doc
    const st = [...doc.getMap('state').entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1))
    const mem = [...doc.getMap('memory').entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1))
    prints[i] = JSON.stringify([st, mem])
    dirty[i] = false
    return prints[i]
  }
  const converged = () => {
    const f = fingerprint(0)
    for (let i = 1; i < n; i++) if (fingerprint(i) !== f) return false
    return true
  }

  const wall0 = performance.now()
  let convergedAt = null
  while (q.size > 0) {
    const { t, ev } = q.pop()
    if (t > opts.maxSimMs) break
    now = t
    stats.events++
    switch (ev.type) {
      case 'op': {
        const { op } = ev
        const p = reps[op.at]
        opsLeft--
        if (op.kind === 'set') await p.state.set(op.key, op.value)
        else if (op.kind === 'delete') await p.state.delete(op.key)
        else if (op.kind === 'remember') await p.memory.remember(op.content, op.tags)
        else {
          const ids = [...p.replica.doc.getMap('memory').keys()]
          if (ids.length > 0) await p.memory.forget(ids[Math.floor(op.pick * ids.length)])
        }
        break
      }
      case 'deliver':
        stats.delivered++
        await reps[ev.to].replica.ingest(ev.env)
        break
      case 'tick':
        pull(ev.a, 'periodic')
        q.push(now + opts.syncEveryMs, { type: 'tick', a: ev.a })
        break
      case 'pullReq': {
        const envs = await reps[ev.b].replica.missing(ev.vv)
        q.push(now + lat(), { type: 'pullResp', a: ev.a, envs, why: ev.why })
        break
      }
      case 'pullResp':
        stats.pulledEnvelopes += ev.envs.length
        if (ev.why === 'gap') gapPending[ev.a] = false
        for (const env of ev.envs) await reps[ev.a].replica.ingest(env)
        break
    }
    if (opsLeft === 0 && now >= tLastOp && converged()) {
      convergedAt = now
      break
    }
  }
  const wallMs = performance.now() - wall0
  const applied = reps.reduce((a, p) => a + p.replica.stats.applied, 0)
  const duplicates = reps.reduce((a, p) => a + p.replica.stats.duplicates, 0)
  const sizes = { stateKeys: reps[0].state.size, notes: reps[0].memory.size }
  return {
    converged: convergedAt != null,
    convergedMs: convergedAt != null ? round(convergedAt, 2) : null,
    lastOpMs: round(tLastOp, 2),
    /** from the last operation to convergence */
    settleMs: convergedAt != null ? round(convergedAt - tLastOp, 2) : null,
    wallMs: round(wallMs),
    ...stats,
    applied,
    duplicates,
    ...sizes
  }
}

const runs = []
for (const seed of opts.seeds) {
  const lossless = await run(seed, 0)
  const lossy = await run(seed, opts.loss)
  const ratio = lossless.converged && lossy.converged ? round(lossy.convergedMs / lossless.convergedMs, 3) : null
  const settleRatio = lossless.converged && lossy.converged ? round(lossy.settleMs / lossless.settleMs, 1) : null
  runs.push({ seed, lossless, lossy, ratio, settleRatio })
  progress(
    `sim seed ${seed}: lossless ${lossless.convergedMs} ms, ${opts.loss * 100}% loss ${lossy.convergedMs} ms (ratio ${ratio}; after the last op ${lossless.settleMs} vs ${lossy.settleMs} ms); wall ${lossless.wallMs} + ${lossy.wallMs} ms`
  )
}
const all = runs.every(r => r.lossless.converged && r.lossy.converged)
const first = runs[0]
result.ok = all
result.target = `ratio of convergence times (${opts.loss * 100}% loss / lossless) ≤ 2`
result.losslessMs = first.lossless.convergedMs
result.lossyMs = first.lossy.convergedMs
result.ratio = first.ratio
result.overSeeds = {
  seeds: opts.seeds.length,
  losslessMs: pct(
    runs.map(r => r.lossless.convergedMs ?? Infinity),
    2
  ),
  lossyMs: pct(
    runs.map(r => r.lossy.convergedMs ?? Infinity),
    2
  ),
  ratio: pct(
    runs.map(r => r.ratio ?? Infinity),
    3
  ),
  settleLosslessMs: pct(
    runs.map(r => r.lossless.settleMs ?? Infinity),
    2
  ),
  settleLossyMs: pct(
    runs.map(r => r.lossy.settleMs ?? Infinity),
    2
  ),
  wallMsPerRun: pct(
    runs.flatMap(r => [r.lossless.wallMs, r.lossy.wallMs]),
    1
  )
}
result.meetsTarget = all && runs.every(r => r.ratio <= 2)
result.runs = runs
emit(result)
process.exit(0)
