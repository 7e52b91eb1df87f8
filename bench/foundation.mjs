// Foundation benchmarks (issue targets): daemon cold start to "connected to one peer"
// (< 300 ms; also the CPU used by then, which other load cannot inflate), idle daemon RSS
// (< 60 MB; also its private part, without the node binary's shared pages), and N nodes in
// one process all seeing each other online (20 nodes < 2 s, 50 < 5 s, 100 < 15 s; each run
// also reports the CPU the mesh cost, and its idle CPU per second once all are online).
// BENCH_QUICK=1: fewer runs, no mesh of 100. BENCH_COLD_RUNS=<n>: cold starts (10; quick 5).
// BENCH_AB_BIN=<another build's dist/claudemesh.mjs, copied inside packages/cli>: as many starts
// of that build, interleaved (coldStart.ab, with joinedRatio); BENCH_ONLY=daemons skips the meshes.
// Prints one JSON object on stdout.
// Each mesh size runs in its own child process (see lib/mesh.mjs); this process never loads
// the node package, so it stays light while it times and measures daemon processes.
import { coldStart, idleRss, withPeerHome } from './lib/daemons.mjs'
import { emit, guard, progress } from './lib/harness.mjs'
import { meshInChild } from './lib/mesh.mjs'

async function section(name, fn) {
  progress(`${name}…`)
  try {
    return await fn()
  } catch (err) {
    progress(`${name} failed: ${err.stack ?? err}`)
    return { ok: false, error: err.message }
  }
}

const quick = process.env.BENCH_QUICK === '1'
const result = {}
guard(quick ? 240_000 : 440_000, () => result)
await section('daemons', () =>
  withPeerHome(async ctx => {
    const runs = Number(process.env.BENCH_COLD_RUNS ?? (quick ? 5 : 10))
    result.coldStart = await section('cold start', () => coldStart(ctx, runs, { noCache: !quick, abBin: process.env.BENCH_AB_BIN }))
    result.idleRss = await section('idle RSS', () => idleRss(ctx, quick ? 2 : 3, 3_000))
  })
).then(r => {
  if (r?.ok === false) result.daemons = r
})
if (process.env.BENCH_ONLY === 'daemons') {
  emit(result)
  process.exit(0)
}
result.mesh20 = await section('mesh of 20', () => meshInChild({ size: 20, runs: quick ? 1 : 3, timeoutMs: 20_000, targetMs: 2_000 }))
result.mesh50 = await section('mesh of 50', () => meshInChild({ size: 50, runs: 1, timeoutMs: quick ? 30_000 : 40_000, targetMs: 5_000 }))
if (!quick) result.mesh100 = await section('mesh of 100', () => meshInChild({ size: 100, runs: 1, timeoutMs: 60_000, targetMs: 15_000 }))
emit(result)
process.exit(0)
