// Parent side of agent.mjs: spawn an agent process (tracked by harness.mjs, so it is killed
// on any exit of the bench process), call its commands over IPC with a timeout, listen to its
// events, stop it. Plus latency statistics with p99 at microsecond resolution.
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { procCpuMs, procMemMB, progress, removeDir, spawnTracked, stopChild, tempDir } from './harness.mjs'

const agentPath = join(fileURLToPath(new URL('.', import.meta.url)), 'agent.mjs')

/** BENCH_AGENT_ARGS="--flag ...": Node/V8 flags for every agent (NODE_OPTIONS refuses most V8 flags), for A/Bs of them. */
const nodeArgs = () => (process.env.BENCH_AGENT_ARGS ?? '').split(/\s+/).filter(a => a !== '')

/**
 * Start an agent. `cpuProfDir` (or env BENCH_CPU_PROF=<dir>) runs it under --cpu-prof.
 * Resolves once the agent has loaded the node package and said it is ready.
 */
export async function spawnAgent(
  label,
  { cpuProfDir = process.env.BENCH_CPU_PROF, readyTimeoutMs = Number(process.env.BENCH_AGENT_READY_MS ?? 60_000) } = {}
) {
  const prof = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir, '--cpu-prof-name', `${label}.${Date.now()}.cpuprofile`] : []
  const env = { ...process.env, BENCH_AGENT_LABEL: label }
  delete env.DEBUG
  const p = spawnTracked([...prof, ...nodeArgs(), agentPath], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced', env })
  p.child.stderr.on('data', d => {
    process.stderr.write(d)
  })
  let rid = 0
  const pending = new Map()
  const listeners = new Set()
  let readyResolve
  const ready = new Promise(resolve => {
    readyResolve = resolve
  })
  p.child.on('message', m => {
    if (m?.rid != null) {
      const w = pending.get(m.rid)
      if (w == null) return
      pending.delete(m.rid)
      if (m.ok) w.resolve(m.result)
      else w.reject(new Error(`${label}.${w.cmd}: ${m.error}`))
    } else if (m?.ev === 'ready') {
      readyResolve()
    } else {
      for (const l of listeners) l(m)
    }
  })
  void p.exited.then(({ code, signal }) => {
    for (const w of pending.values()) w.reject(new Error(`${label} exited (${code ?? signal}) during ${w.cmd}`))
    pending.clear()
  })
  const agent = {
    label,
    pid: p.child.pid,
    proc: p,
    call(cmd, args = {}, timeoutMs = 60_000) {
      if (p.child.exitCode != null || p.child.signalCode != null) return Promise.reject(new Error(`${label} is not running`))
      const id = ++rid
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${label}.${cmd}: no reply within ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, {
          cmd,
          resolve: v => {
            clearTimeout(timer)
            resolve(v)
          },
          reject: e => {
            clearTimeout(timer)
            reject(e)
          }
        })
        p.child.send({ rid: id, cmd, args })
      })
    },
    on(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
    mem() {
      return procMemMB(p.child.pid)
    },
    cpuMs() {
      return procCpuMs(p.child.pid)
    },
    /** Stop its nodes (bounded), then the process (SIGTERM, then SIGKILL). */
    async stop() {
      if (p.child.exitCode == null && p.child.signalCode == null) {
        await agent.call('stop', {}, 20_000).catch(err => {
          progress(`${label}: ${err.message}`)
        })
      }
      await Promise.race([p.exited, new Promise(resolve => setTimeout(resolve, 3_000))])
      await stopChild(p, 3_000)
    }
  }
  let timer
  try {
    await Promise.race([
      ready,
      p.exited.then(({ code, signal }) => {
        throw new Error(`${label} exited (${code ?? signal}) before it was ready: ${p.stderr.tail()}`)
      }),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${label} not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs)
      })
    ])
  } catch (err) {
    await stopChild(p, 1_000)
    throw err
  } finally {
    clearTimeout(timer)
  }
  return agent
}

/** Stop every agent in parallel, never throwing. */
export async function stopAgents(agents) {
  await Promise.allSettled(agents.filter(Boolean).map(a => a.stop()))
}

const r3 = x => (Number.isFinite(x) ? Number(x.toFixed(3)) : null)

/** n, p50, p90, p99, max, min, mean (nearest-rank percentiles), in the unit given, 3 decimals. */
/**
 * `count` agents (labelled `<label>0`, `<label>1`…) sharing a fresh home with the mesh "bench";
 * always stopped and the home removed afterwards.
 */
export async function withAgents(count, label, fn) {
  const home = tempDir(`claudemesh-bench-${label}-`)
  const agents = []
  try {
    const spawned = await Promise.allSettled(Array.from({ length: count }, (_, i) => spawnAgent(`${label}${i}`)))
    for (const s of spawned) if (s.status === 'fulfilled') agents.push(s.value)
    const failed = spawned.find(s => s.status === 'rejected')
    if (failed != null) throw failed.reason
    await agents[0].call('createMesh', { home, mesh: 'bench' })
    return await fn({ home, agents })
  } finally {
    await stopAgents(agents)
    removeDir(home)
  }
}

export function lat(xs) {
  if (xs.length === 0) return { n: 0 }
  const s = Float64Array.from(xs).sort()
  const rank = q => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
  let sum = 0
  for (const x of s) sum += x
  return {
    n: s.length,
    p50: r3(rank(0.5)),
    p90: r3(rank(0.9)),
    p99: r3(rank(0.99)),
    max: r3(s[s.length - 1]),
    min: r3(s[0]),
    mean: r3(sum / s.length)
  }
}

export { r3 }
