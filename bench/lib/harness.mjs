// Shared plumbing for benchmark files: temp dirs and child processes that are always cleaned
// up (normal end, error, signal or watchdog), a line reader that timestamps each line, small
// statistics, and /proc readers. Progress goes to stderr; stdout is reserved for the result.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** the claudemesh CLI under test; CLAUDEMESH_BENCH_BIN swaps in another build (e.g. a bundle) */
export const cliBin = process.env.CLAUDEMESH_BENCH_BIN ?? join(root, 'packages/cli/dist/claudemesh.mjs')

const children = new Set()
const dirs = new Set()

export const progress = msg => {
  console.error(`[bench] ${msg}`)
}
export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.add(d)
  return d
}

export function removeDir(d) {
  rmSync(d, { recursive: true, force: true })
  dirs.delete(d)
}

function cleanupNow() {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {}
  }
  for (const d of dirs) {
    try {
      rmSync(d, { recursive: true, force: true })
    } catch {}
  }
}

process.on('exit', cleanupNow)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    progress(`${sig}: cleaning up`)
    process.exit(130)
  })
}

/**
 * Bound a benchmark process: after `ms`, or on an uncaught exception (libp2p throws some from
 * event listeners), print what `partial()` returns marked as failed, so the parent still gets
 * JSON, then exit; the exit handler kills children and removes temp dirs.
 */
export function guard(ms, partial = () => ({})) {
  const giveUp = (code, error) => {
    progress(error)
    emit({ ...partial(), ok: false, error })
    process.exit(code)
  }
  setTimeout(() => {
    giveUp(124, `watchdog: not finished within ${ms} ms`)
  }, ms).unref()
  process.on('uncaughtException', err => {
    giveUp(70, `crashed: ${err.stack?.split('\n').slice(0, 3).join(' | ') ?? err}`)
  })
}

/** Spawn a tracked child; `t0` is taken just before spawn(). stdout/stderr are line readers. */
export function spawnTracked(args, opts = {}) {
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  children.add(child)
  const exited = new Promise(resolve => {
    child.once('exit', (code, signal) => {
      children.delete(child)
      resolve({ code, signal, at: performance.now() })
    })
  })
  child.once('error', err => {
    progress(`spawn failed: ${err.message}`)
  })
  return { child, t0, exited, stdout: lineReader(child.stdout), stderr: lineReader(child.stderr) }
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with the exit. */
export async function stopChild(p, graceMs = 5_000) {
  if (p.child.exitCode == null && p.child.signalCode == null) p.child.kill('SIGTERM')
  const t = setTimeout(() => {
    p.child.kill('SIGKILL')
  }, graceMs)
  const res = await p.exited
  clearTimeout(t)
  return res
}

/** Every line with its arrival time; `wait(pred, ms)` resolves with the time of the first match. */
export function lineReader(stream) {
  const seen = []
  const waiters = new Set()
  let buf = ''
  stream.setEncoding('utf8')
  stream.on('data', chunk => {
    buf += chunk
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      const at = performance.now()
      seen.push({ line, at })
      for (const w of waiters) if (w.pred(line)) w.done(at)
    }
  })
  return {
    seen,
    tail: (n = 5) =>
      seen
        .slice(-n)
        .map(s => s.line)
        .join(' | '),
    wait(pred, ms, what = 'line') {
      const hit = seen.find(s => pred(s.line))
      if (hit != null) return Promise.resolve(hit.at)
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          done: at => {
            clearTimeout(timer)
            waiters.delete(w)
            resolve(at)
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`no ${what} within ${ms} ms`))
        }, ms)
        waiters.add(w)
      })
    }
  }
}

/** Time from spawn to exit of `node <args>`. */
export async function timeToExit(args, opts) {
  const p = spawnTracked(args, opts)
  const t = setTimeout(() => {
    p.child.kill('SIGKILL')
  }, 30_000)
  const { at, code } = await p.exited
  clearTimeout(t)
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited with ${code}: ${p.stderr.tail()}`)
  return at - p.t0
}

/** VmRSS / VmHWM of a pid in MB, or null off Linux. */
export function procMemMB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = key => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1])
    return { rss: round(kb('VmRSS') / 1024), hwm: round(kb('VmHWM') / 1024) }
  } catch {
    return null
  }
}

/**
 * Reset a process's peak RSS (VmHWM) to its current RSS (Linux: `5` to /proc/<pid>/clear_refs),
 * so a later procMemMB's `hwm` is the peak since now. False where that is not allowed.
 */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/**
 * Private (anonymous) memory of a pid in MB, or null off Linux: RSS less the file pages it
 * shares with every other node process (the node binary's code alone is ~30-45 MB of RSS),
 * so what one more session on the machine costs.
 */
export function procPrivateMB(pid) {
  try {
    const kb = Number(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss_Anon:\s+(\d+) kB/m)?.[1])
    return Number.isFinite(kb) ? round(kb / 1024) : null
  } catch {
    return null
  }
}

/** CPU time (user + system) a pid has used so far, in ms, or null off Linux. */
export function procCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10 // clock ticks; USER_HZ is 100 on Linux
  } catch {
    return null
  }
}

export const round = (x, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null)

/** median, p90 (nearest rank), min, max of a list of numbers. */
export function summary(xs) {
  if (xs.length === 0) return { n: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const rank = q => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]
  const mid = s.length / 2
  const median = s.length % 2 === 1 ? s[Math.floor(mid)] : (s[mid - 1] + s[mid]) / 2
  return { n: s.length, median: round(median), p90: round(rank(0.9)), min: round(s[0]), max: round(s[s.length - 1]) }
}

/** Print the file's single JSON result on stdout. */
export function emit(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

/** mulberry32: a small seeded generator, [0, 1): a benchmark's random choices replay from BENCH_SEED */
export function seeded(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Run one benchmark section; its result also records the 1-minute load average before and after; errors become `{ ok: false }`. */
export async function section(name, fn) {
  progress(`${name}…`)
  const t = performance.now()
  const load0 = loadavg()[0]
  try {
    const r = await fn()
    progress(`${name} done in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    // other work on this 2-core machine skews every number: say how busy it was
    if (r != null && typeof r === 'object') r.loadavg1m = { before: round(load0, 2), after: round(loadavg()[0], 2) }
    return r
  } catch (err) {
    progress(`${name} failed: ${err.stack ?? err}`)
    return { ok: false, error: err.message }
  }
}
