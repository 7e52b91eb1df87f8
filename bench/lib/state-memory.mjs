// Shared memory at scale, on pure replicas (no network); a section of bench/state.mjs, run as
// `node state-memory.mjs '<json opts>'`, one JSON line on stdout, progress on stderr.
//  - recall latency at 10k and 100k notes: a Replica on a MemoryLog with SharedMemory, filled
//    through `remember` with seeded realistic notes, then the same 1,000 seeded queries of 1–3
//    words (some a prefix, some with a typo) at each size.
//  - remember throughput with the MemoryLog (the fill above) and with a LevelLog on a real
//    LevelDB behind a GroupCommit (as node.ts startShared wires it): one at a time, then with
//    many in flight; bytes on disk at 10k and 100k notes.
//  - start-up with 100k notes: a fresh process opens that LevelDB, loads the replica and
//    builds the SharedMemory index (state-startup.mjs).
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { emit, guard, progress, round, tempDir } from './harness.mjs'
import { loadPure, noteGenerator, pct, pureReplica, queryGenerator, runSection, vocabulary } from './state-common.mjs'

const opts = {
  sizes: [10_000, 100_000],
  queries: 1000,
  warmupQueries: 100,
  levelSequential: 2000,
  levelTotal: 100_000,
  window: 256,
  startupRuns: 3,
  seed: 42,
  ...JSON.parse(process.argv[2] ?? '{}')
}
const result = { ok: true, opts }
guard(opts.boundMs ?? 400_000, () => result)

const lib = await loadPure()
const words = vocabulary(1)
const mb = b => round(b / 2 ** 20)

/** Disk usage of a directory tree: allocated blocks (what du reports) and apparent bytes. */
function du(dir) {
  let blocks = 0
  let bytes = 0
  let files = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const st = statSync(join(e.parentPath ?? e.path, e.name))
    blocks += st.blocks * 512
    bytes += st.size
    files++
  }
  return { duBytes: blocks, apparentBytes: bytes, files }
}

/** Remember `n` notes one at a time (each awaited); returns per-note ms. */
async function rememberSequential(memory, gen, n) {
  const ms = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const { content, tags } = gen()
    const t = performance.now()
    await memory.remember(content, tags)
    ms[i] = performance.now() - t
  }
  return ms
}

/** Remember `n` notes with at most `window` in flight. */
async function rememberWindowed(memory, gen, n, window) {
  let issued = 0
  let done = 0
  let failed = null
  await new Promise((resolve, reject) => {
    const top = () => {
      if (failed != null) return
      while (issued < n && issued - done < window) {
        issued++
        const { content, tags } = gen()
        memory.remember(content, tags).then(
          () => {
            done++
            if (done === n) resolve()
            else top()
          },
          err => {
            failed = err
            reject(err)
          }
        )
      }
    }
    if (n === 0) resolve()
    else top()
  })
}

/**
 * With BENCH_CPU_PROF=<dir>, a CPU profile of just the measured queries at each size, as
 * <dir>/recall-<size>.cpuprofile (the section's own --cpu-prof profile is mostly the fill).
 */
async function profiled(name, fn) {
  const dir = process.env.BENCH_CPU_PROF
  if (!dir) return fn()
  const s = new Session()
  s.connect()
  await s.post('Profiler.enable')
  await s.post('Profiler.setSamplingInterval', { interval: 200 })
  await s.post('Profiler.start')
  try {
    return await fn()
  } finally {
    const { profile } = await s.post('Profiler.stop')
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
    s.disconnect()
  }
}

async function recallRun(memory, size) {
  await memory.ready
  const warm = queryGenerator(opts.seed + 1000, words)
  for (let i = 0; i < opts.warmupQueries; i++) await memory.recall(warm().query)
  return profiled(`recall-${size}`, () => recallQueries(memory, size))
}

async function recallQueries(memory, size) {
  const gen = queryGenerator(opts.seed + 1, words)
  const all = []
  const byKind = { exact: [], prefix: [], typo: [] }
  let hits = 0
  let empty = 0
  for (let i = 0; i < opts.queries; i++) {
    const { query, kind } = gen()
    const t = performance.now()
    const r = await memory.recall(query)
    const d = performance.now() - t
    all.push(d)
    byKind[kind].push(d)
    hits += r.length
    if (r.length === 0) empty++
  }
  const s = pct(all)
  progress(`recall at ${size}: p50 ${s.p50} ms, p99 ${s.p99} ms`)
  return {
    notes: memory.size,
    ms: s,
    byKind: Object.fromEntries(Object.entries(byKind).map(([k, xs]) => [k, pct(xs)])),
    meanResults: round(hits / opts.queries, 2),
    emptyResults: empty
  }
}

// ---- 1. MemoryLog: fill, recall at each size ------------------------------------------------

result.recall = {}
result.rememberMemoryLog = { segments: [] }
{
  const p = await pureReplica(lib, { key: await lib.keyFromSeed(1), log: new lib.MemoryLog() })
  const gen = noteGenerator(opts.seed, words)
  let have = 0
  const tFill = performance.now()
  const perNote = []
  for (const size of opts.sizes) {
    const t = performance.now()
    const ms = await rememberSequential(p.memory, gen, size - have)
    const dt = performance.now() - t
    perNote.push(...ms)
    result.rememberMemoryLog.segments.push({ from: have, to: size, notesPerS: round((size - have) / (dt / 1000)), perNoteMs: pct(ms) })
    progress(`MemoryLog: ${size} notes (${round((size - have) / (dt / 1000))} notes/s since ${have})`)
    have = size
    result.recall[`at${size / 1000}k`] = await recallRun(p.memory, size)
  }
  const fillS = (performance.now() - tFill) / 1000
  // the total excludes the recall runs between segments
  const fillMs = perNote.reduce((a, b) => a + b, 0)
  result.rememberMemoryLog.notes = have
  result.rememberMemoryLog.notesPerS = round(have / (fillMs / 1000))
  result.rememberMemoryLog.perNoteMs = pct(perNote)
  result.rememberMemoryLog.wallS = round(fillS)
  const mu = process.memoryUsage()
  result.rememberMemoryLog.memoryAt100k = { rssMB: mb(mu.rss), heapUsedMB: mb(mu.heapUsed) }
  result.rememberMemoryLog.replicaStats = { ...p.replica.stats, snapshotBytes: (await p.log.snapshot())?.update.byteLength ?? null }
}
globalThis.gc?.()

// ---- 2. LevelLog on LevelDB: throughput, bytes on disk ------------------------------------

// the store in a temp dir of its own, its snapshots directory beside it
const dir = join(tempDir('claudemesh-bench-state-level-'), 'db')
{
  const db = await lib.openStore(dir)
  const commit = new lib.GroupCommit(db)
  const log = new lib.LevelLog(lib.sublevel(db, 'crdt'), commit, lib.snapshotsBeside(dir))
  await log.open()
  const p = await pureReplica(lib, { key: await lib.keyFromSeed(2), log })
  const gen = noteGenerator(opts.seed + 7, words)
  const out = { store: dir }
  result.rememberLevelLog = out
  try {
    // one at a time: every note waits for its own synced batch
    let t = performance.now()
    const seq = await rememberSequential(p.memory, gen, opts.levelSequential)
    let dt = performance.now() - t
    out.sequential = { notes: opts.levelSequential, notesPerS: round(opts.levelSequential / (dt / 1000)), perNoteMs: pct(seq) }
    progress(`LevelLog, one at a time: ${out.sequential.notesPerS} notes/s`)
    // many in flight: writes of one turn share a synced batch
    const b0 = { ...commit.stats }
    t = performance.now()
    const to10k = Math.max(0, 10_000 - opts.levelSequential)
    await rememberWindowed(p.memory, gen, to10k, opts.window)
    dt = performance.now() - t
    out.windowed = { window: opts.window, notes: to10k, notesPerS: round(to10k / (dt / 1000)) }
    out.at10k = { notes: p.memory.size, ...du(dir) }
    out.bytesPer10k = out.at10k.duBytes
    progress(`LevelLog, ${opts.window} in flight: ${out.windowed.notesPerS} notes/s; ${mb(out.at10k.duBytes)} MB on disk at 10k`)
    t = performance.now()
    const rest = opts.levelTotal - p.memory.size
    const segments = []
    for (let left = rest; left > 0; ) {
      const n = Math.min(10_000, left)
      const ts = performance.now()
      await rememberWindowed(p.memory, gen, n, opts.window)
      segments.push(round(n / ((performance.now() - ts) / 1000)))
      left -= n
    }
    dt = performance.now() - t
    out.windowedTo100k = { notes: rest, notesPerS: rest > 0 ? round(rest / (dt / 1000)) : null, notesPerSPer10k: segments }
    out.batches = { batches: commit.stats.batches - b0.batches, writes: commit.stats.writes - b0.writes }
    out.snapshotBytes = (await log.snapshot())?.update.byteLength ?? null
    out.at100k = { notes: p.memory.size, ...du(dir) }
    out.bytesPer10kAt100k = Math.round(out.at100k.duBytes / (p.memory.size / 10_000))
    progress(`LevelLog to ${p.memory.size}: ${out.windowedTo100k.notesPerS} notes/s; ${mb(out.at100k.duBytes)} MB on disk`)
  } finally {
    await db.close()
  }
  out.afterClose = du(dir)
}
globalThis.gc?.()

// ---- 3. start-up from that LevelDB in a fresh process ------------------------------------

{
  const file = join(fileURLToPath(new URL('.', import.meta.url)), 'state-startup.mjs')
  const runs = []
  for (let i = 0; i < opts.startupRuns; i++) {
    const r = await runSection(file, { dir, expect: opts.levelTotal }, 120_000, { label: `state-startup-${i}` })
    runs.push(r)
    progress(`start-up ${i + 1}/${opts.startupRuns}: ${r.totalMs} ms (open ${r.openMs}, load ${r.loadMs}, index ${r.indexMs})`)
  }
  const ok = runs.every(r => r.ok)
  const med = k =>
    pct(
      runs.map(r => r[k]).filter(x => x != null),
      1
    ).p50
  result.startup100k = {
    ok,
    medianMs: ok ? med('totalMs') : null,
    phasesMedianMs: ok
      ? {
          open: med('openMs'),
          logOpen: med('logOpenMs'),
          load: med('loadMs'),
          state: med('stateMs'),
          index: med('indexMs'),
          importModules: med('importMs')
        }
      : null,
    runs
  }
  if (!ok) result.ok = false
}

emit(result)
process.exit(0)
