// Alternating A/B of the "shared" recall engine's cold start at 100k notes (probing, not run by
// scripts/bench.mjs): `node bench/lib/recall-ab.mjs <before-dist> [pairs=5] [queries=1000]`, where
// <before-dist> is another build's packages/node/dist with a node_modules beside it (e.g.
// `mkdir x && cp -r packages/node/dist x/dist && ln -s $PWD/packages/node/node_modules x/node_modules`).
// Each run is recall-engine.mjs in a fresh process over a prepared store; the two builds take
// turns, the first one alternating. STORE=<dir> (default: a temp dir, prepared by this build)
// and STORE_BEFORE=<dir> (default: STORE; give one when the builds store snapshots differently,
// prepared by the other build: `CLAUDEMESH_BENCH_NODE_DIST=<before-dist> BENCH_RECALL_DIR=<dir>
// node --expose-gc bench/lib/recall-engine.mjs '{"size":100000,"queries":20,"warmup":2}'`).
// A store's snapshot files, for a build that keeps them out of LevelDB, are in `<dir>.snapshots`.
// One JSON object on stdout: per figure, the medians of each build and their ratio (after/before).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { progress, removeDir, round, tempDir } from './harness.mjs'

const [before, pairsArg, queriesArg] = process.argv.slice(2)
if (before == null) {
  process.stderr.write('usage: node bench/lib/recall-ab.mjs <before-dist> [pairs] [queries]\n')
  process.exit(2)
}
const pairs = Number(pairsArg ?? 5)
const queries = Number(queriesArg ?? 1000)
const engine = join(fileURLToPath(new URL('.', import.meta.url)), 'recall-engine.mjs')
const size = 100_000
const store = process.env.STORE ?? join(tempDir('recall-ab-'), 'db')
const storeBefore = process.env.STORE_BEFORE ?? store

function run(args, env) {
  const out = execFileSync(process.execPath, ['--expose-gc', engine, JSON.stringify(args)], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const r = JSON.parse(out.trim().split('\n').pop())
  if (r.ok === false) throw new Error(r.error)
  return r
}

try {
  if (!existsSync(join(store, 'CURRENT'))) {
    progress(`recall-ab: preparing ${size / 1000}k notes in ${store}…`)
    run({ engine: 'shared', size, queries: 20, warmup: 2 }, { BENCH_RECALL_DIR: store })
  }
  const figures = r => ({
    toServeMs: r.coldStart.toServeMs,
    toRecallMs: r.coldStart.toRecallMs,
    replicaLoadMs: r.coldStart.replicaLoadMs,
    indexReadyMs: r.coldStart.indexReadyMs,
    cpuToServeMs: r.coldStart.cpu.toServeMs,
    cpuToRecallMs: r.coldStart.cpu.toRecallMs,
    rssMB: r.memory.rssMB,
    rssAnonMB: r.memory.rssAnonMB,
    rssFileMB: r.memory.rssFileMB,
    heapMB: r.memory.heapMB,
    p50: r.ms.p50,
    p99: r.ms.p99,
    meanResults: r.meanResults,
    emptyResults: r.emptyResults
  })
  const rows = { before: [], after: [] }
  for (let i = 0; i < pairs; i++) {
    for (const which of i % 2 === 0 ? ['after', 'before'] : ['before', 'after']) {
      const env = which === 'before' ? { CLAUDEMESH_BENCH_NODE_DIST: before } : {}
      const dir = which === 'before' ? storeBefore : store
      const f = figures(run({ engine: 'shared', size, queries, warmup: Math.round(queries / 10), dir }, env))
      rows[which].push(f)
      progress(`recall-ab: ${which} ${JSON.stringify(f)}`)
    }
  }
  const median = xs => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const out = { pairs, queries, youngGeneration: process.env.BENCH_RECALL_YOUNG === 'grow' ? 'grows' : 'held' }
  for (const k of Object.keys(rows.after[0])) {
    const b = median(rows.before.map(r => r[k]))
    const a = median(rows.after.map(r => r[k]))
    out[k] = { before: round(b, 3), after: round(a, 3), ratio: b === 0 ? null : round(a / b, 3) }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
} finally {
  if (process.env.STORE == null) removeDir(dirname(store))
}
