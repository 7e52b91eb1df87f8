// Foundation benchmarks (issue targets): daemon cold start to "connected to one peer"
// (< 300 ms), idle daemon RSS (< 60 MB), and N nodes in one process all seeing each other
// online (20 nodes < 2 s; 50 nodes reported). Prints one JSON object on stdout.
// Each mesh size runs in its own child process (see lib/mesh.mjs); this process never loads
// the node package, so it stays light while it times and measures daemon processes.
import { coldStart, idleRss, withPeerHome } from './lib/daemons.mjs'
import { emit, guard, progress } from './lib/harness.mjs'
import { meshInChild } from './lib/mesh.mjs'

async function section (name, fn) {
  progress(`${name}…`)
  try {
    return await fn()
  } catch (err) {
    progress(`${name} failed: ${err.stack ?? err}`)
    return { ok: false, error: err.message }
  }
}

const result = {}
guard(400_000, () => result)
await section('daemons', () => withPeerHome(async (ctx) => {
  result.coldStart = await section('cold start', () => coldStart(ctx, 10))
  result.idleRss = await section('idle RSS', () => idleRss(ctx, 3, 3_000))
})).then(r => { if (r?.ok === false) result.daemons = r })
result.mesh20 = await section('mesh of 20', () => meshInChild({ size: 20, runs: 3, timeoutMs: 20_000, targetMs: 2_000 }))
result.mesh50 = await section('mesh of 50', () => meshInChild({ size: 50, runs: 1, timeoutMs: 40_000, targetMs: null }))
emit(result)
process.exit(0)
