#!/usr/bin/env node
// `npm run bench`: runs every benchmark file in bench/ (top level, .mjs or .ts) in its own
// child process, so one benchmark's memory and handles never pollute another's, and prints
// ONE JSON object on stdout: { machine, date, results: { <name>: <that file's JSON> } }.
// `node scripts/bench.mjs foundation` runs only files whose name contains an argument.
// BENCH_QUICK=1 asks each file for its short CI-smoke variant (load: 10 × 100 only; files: 8 MB × 3).
// Each file is bounded (BENCH_TIMEOUT_MS, default 450 s; load: BENCH_LOAD_TIMEOUT_MS, 1 h,
// unless BENCH_QUICK=1) and runs in its own process group,
// which is killed on timeout so no daemon it spawned outlives it. Progress goes to stderr.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { cpus, loadavg, platform } from 'node:os'
import { basename, dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const benchDir = join(root, 'bench')
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? 450_000)
// bench/load.mjs's full run (five sizes up to 100 × 1,000, two modes) needs more than one
// file's usual bound; BENCH_QUICK=1 runs only its 10 × 100 (well inside the bound)
const fileTimeoutMs = { load: Number(process.env.BENCH_LOAD_TIMEOUT_MS ?? 3_600_000) }
const filters = process.argv.slice(2)

const files = readdirSync(benchDir, { withFileTypes: true })
  .filter(e => e.isFile() && /\.(mjs|ts)$/.test(e.name) && !e.name.endsWith('.d.ts'))
  .map(e => e.name)
  .filter(name => filters.length === 0 || filters.some(f => name.includes(f)))
  .sort()

function runFile(file) {
  const bound = process.env.BENCH_QUICK === '1' ? timeoutMs : (fileTimeoutMs[basename(file, extname(file))] ?? timeoutMs)
  const args = extname(file) === '.ts' ? ['--import', 'tsx', join(benchDir, file)] : [join(benchDir, file)]
  return new Promise(resolve => {
    // the file's own watchdog (lib/harness.mjs guard) reads BENCH_TIMEOUT_MS: give it this file's bound
    const env = { ...process.env, BENCH_TIMEOUT_MS: String(bound) }
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], detached: true, env })
    let stdout = ''
    let timedOut = false
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', d => {
      stdout += d
    })
    const killGroup = sig => {
      try {
        process.kill(-child.pid, sig)
      } catch {}
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup('SIGTERM')
      setTimeout(() => {
        killGroup('SIGKILL')
      }, 5_000).unref()
    }, bound)
    const onSignal = () => {
      killGroup('SIGKILL')
      process.exit(130)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    child.once('error', err => {
      clearTimeout(timer)
      resolve({ ok: false, error: err.message })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      killGroup('SIGKILL') // anything the benchmark left behind in its group
      if (timedOut) return resolve({ ok: false, error: `timed out after ${bound} ms` })
      const last = stdout.trim().split('\n').pop() ?? ''
      try {
        resolve(JSON.parse(last))
      } catch {
        resolve({ ok: false, error: `exited with ${code ?? signal} and no JSON result`, stdout: stdout.slice(-500) })
      }
    })
  })
}

if (files.length === 0) {
  console.error(`no benchmark in ${benchDir} matches ${filters.join(', ')}`)
  process.exit(2)
}
// other work on the machine skews every number: record the load the run started under
const loadAtStart = loadavg().map(x => Number(x.toFixed(2)))
const results = {}
/** wall seconds per file: what to trim when the quick run outgrows its 3 minutes */
const wallS = {}
const t0 = performance.now()
for (const file of files) {
  const name = basename(file, extname(file))
  console.error(`[bench] running ${name}`)
  const t = performance.now()
  results[name] = await runFile(file)
  wallS[name] = Number(((performance.now() - t) / 1000).toFixed(1))
}
wallS.total = Number(((performance.now() - t0) / 1000).toFixed(1))
const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? null,
  platform: `${platform()}-${process.arch}`,
  loadavg1m5m15m: loadAtStart
}
process.stdout.write(`${JSON.stringify({ machine, date: new Date().toISOString(), wallS, results }, null, 2)}\n`)
// a benchmark that crashed or timed out fails the run; a missed target does not
if (Object.values(results).some(r => r?.ok === false)) process.exitCode = 1
