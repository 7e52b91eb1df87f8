// Shared state and memory benchmarks (issue targets), one JSON object on stdout, progress on
// stderr. Each section runs in its own bounded child process (bench/lib/state-*.mjs), so one
// section's heap, handles or crash cannot skew or take down another; the whole file stays
// inside the 450 s bound of scripts/bench.mjs by giving each section what time is left.
//  1. setStateVisible (lib/state-mesh.mjs): 20 nodes in one process sharing a temp home,
//     all online to each other ('peer:join'); 200 `state.set` from random nodes, one at a
//     time; per (set, other node), the time from the call to that node's 'state:change'.
//     Target p99 ≤ 200 ms.
//  2. memory (lib/state-memory.mjs): pure replicas (no network). Recall latency over 10k and
//     100k seeded realistic notes, 1,000 queries of 1–3 words (some prefixes, some typos):
//     targets p50 ≤ 1 ms, p99 ≤ 10 ms at 100k. `remember` throughput on a MemoryLog and on a
//     LevelLog over LevelDB (GroupCommit, as node.ts wires it), LevelDB bytes on disk per 10k
//     notes, and start-up with 100k notes from that LevelDB in a fresh process (open store,
//     `replica.load()`, SharedMemory index build): target ≤ 1 s.
//  3. convergence (lib/state-sim.mjs): 50 pure replicas on a simulated network (seeded
//     event queue, 1–5 ms latency), 200 random state/memory operations over the first
//     simulated second, anti-entropy pulls every 100 ms and on gaps; convergence time with
//     no loss and with 10% of updates lost. Target ratio ≤ 2.
// Env: BENCH_STATE_ONLY=mesh,memory,sim (a subset); BENCH_CPU_PROF=<dir> runs every section
// under --cpu-prof (summarise with `node bench/lib/cpuprof.mjs <dir>`); BENCH_STATE_FAST=1
// (smaller sizes, for trying the harness: 2k/10k notes, 50 sets, 2 seeds); BENCH_QUICK=1 runs the
// same smaller sizes with one seed (bench/recall.mjs measures recall at 100k in quick mode too).
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { emit, guard, progress } from './lib/harness.mjs'
import { runSection } from './lib/state-common.mjs'

const BUDGET_MS = 435_000 // scripts/bench.mjs kills a file after 450 s
const lib = join(fileURLToPath(new URL('.', import.meta.url)), 'lib')
const only = (process.env.BENCH_STATE_ONLY ?? 'mesh,memory,sim').split(',').map(s => s.trim())
const fast = process.env.BENCH_STATE_FAST === '1' || process.env.BENCH_QUICK === '1'
const t0 = performance.now()
const left = () => BUDGET_MS - (performance.now() - t0)

const result = {}
guard(BUDGET_MS + 5_000, () => result)

/** Run a section with at most `capMs`, never past the file's budget (keeps 5 s to report). */
async function section(name, file, opts, capMs) {
  if (!only.includes(name)) return undefined
  const bound = Math.min(capMs, left() - 5_000)
  if (bound < 10_000) return { ok: false, error: 'skipped: out of time budget' }
  progress(`${name}… (bounded at ${Math.round(bound / 1000)} s)`)
  const t = performance.now()
  const r = await runSection(join(lib, file), { ...opts, boundMs: bound - 3_000 }, bound, { label: `state-${name}` })
  progress(`${name} done in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  return r
}

// fastest first, so a slow machine still reports the cheap sections
result.convergence = await section('sim', 'state-sim.mjs', fast ? { seeds: process.env.BENCH_QUICK === '1' ? [1] : [1, 2] } : {}, 120_000)
result.setStateVisible = await section('mesh', 'state-mesh.mjs', fast ? { sets: 50 } : {}, 150_000)
result.memory = await section(
  'memory',
  'state-memory.mjs',
  fast ? { sizes: [2_000, 10_000], levelTotal: 10_000, levelSequential: 500, startupRuns: 1 } : {},
  400_000
)

// the headline numbers against their targets
const m = result.memory
const mesh = result.setStateVisible
const sim = result.convergence
result.summary = {
  setStateVisibleMs:
    mesh?.visibleOnAll != null
      ? { p50: mesh.visibleOnAll.ms.p50, p99: mesh.visibleOnAll.ms.p99, target: 'p99 ≤ 200', meets: mesh.visibleOnAll.meetsTarget }
      : null,
  recall10kMs: m?.recall?.at10k != null ? { p50: m.recall.at10k.ms.p50, p99: m.recall.at10k.ms.p99 } : null,
  recall100kMs:
    m?.recall?.at100k != null
      ? {
          p50: m.recall.at100k.ms.p50,
          p99: m.recall.at100k.ms.p99,
          target: 'p50 ≤ 1, p99 ≤ 10',
          meets: m.recall.at100k.ms.p50 <= 1 && m.recall.at100k.ms.p99 <= 10
        }
      : null,
  rememberNotesPerS:
    m?.rememberMemoryLog != null
      ? {
          memoryLog: m.rememberMemoryLog.notesPerS,
          levelLogOneAtATime: m.rememberLevelLog?.sequential?.notesPerS ?? null,
          levelLogWindowedTo10k: m.rememberLevelLog?.windowed?.notesPerS ?? null,
          levelLogWindowed10kTo100k: m.rememberLevelLog?.windowedTo100k?.notesPerS ?? null
        }
      : null,
  levelDbBytesPer10k:
    m?.rememberLevelLog != null
      ? { at10k: m.rememberLevelLog.bytesPer10k ?? null, averagedAt100k: m.rememberLevelLog.bytesPer10kAt100k ?? null }
      : null,
  startup100kMs:
    m?.startup100k != null
      ? {
          median: m.startup100k.medianMs,
          // BENCH_QUICK / BENCH_STATE_FAST start from 10k notes, not 100k
          notes: fast ? 10_000 : 100_000,
          phases: m.startup100k.phasesMedianMs,
          target: '≤ 1000',
          meets: m.startup100k.medianMs != null && m.startup100k.medianMs <= 1000
        }
      : null,
  convergenceSimMs:
    sim?.losslessMs != null
      ? {
          lossless: sim.losslessMs,
          loss10pct: sim.lossyMs,
          ratio: sim.ratio,
          ratioOverSeeds: sim.overSeeds?.ratio,
          settleAfterLastOpMs: { lossless: sim.overSeeds?.settleLosslessMs?.p50, loss10pct: sim.overSeeds?.settleLossyMs?.p50 },
          target: 'ratio ≤ 2',
          meets: sim.meetsTarget
        }
      : null
}
result.ok = [mesh, m, sim].every(r => r == null || r.ok !== false)
emit(result)
process.exit(0)
