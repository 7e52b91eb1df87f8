/**
 * What the real-claude e2e files share: a mesh home, a bounded poll of a CLI call, and ending
 * a session launched under tmux with its claude, its MCP server and its node.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, realpath, rm, watch } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { paths } from '@claudemesh/node/client'
import { expect } from 'vitest'
import { cli } from '../helpers.js'
import type { ClaudeHome, InteractiveClaude } from './run.js'

export type MeshEnv = Record<string, string> & { CLAUDEMESH_HOME: string }

/** A claudemesh home with the mesh "team"; `cleanups` gets its removal. */
export async function meshHome(cleanups: Array<() => Promise<void>>, prefix = 'cm-e2e-mesh-'): Promise<MeshEnv> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), prefix)))
  cleanups.push(async () => rm(dir, { recursive: true, force: true }))
  const env: MeshEnv = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
  const r = await cli(['mesh', 'create', 'team'], env)
  expect(r.code, r.stderr).toBe(0)
  return env
}

export const unique = (what: string): string => `${what}-${randomBytes(6).toString('hex')}`

/**
 * Resolve once `done()` holds, checking now and at every change of the mesh's registry (its
 * entries are files that come and go with the processes), or after `timeoutMs`: the caller
 * asserts what it waited for.
 */
export async function untilRegistry(env: MeshEnv, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const ac = new AbortController()
  const timer = setTimeout(() => {
    ac.abort()
  }, timeoutMs)
  const changes = watch(paths.run(env.CLAUDEMESH_HOME, 'team'), { signal: ac.signal })[Symbol.asyncIterator]()
  // the watcher runs from the first next(); changes queue until they are read
  let next = changes.next()
  try {
    while (!(await done())) {
      if ((await next).done === true) return
      next = changes.next()
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err
  } finally {
    next.catch(() => {})
    clearTimeout(timer)
    ac.abort()
  }
}

/** Bounded poll of a CLI call until `ok` holds; returns the last parsed JSON. */
export async function pollCli<T>(args: string[], env: MeshEnv, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    const r = await cli(args, env)
    try {
      last = JSON.parse(r.stdout)
    } catch {
      last = `${r.code}: ${r.stdout}${r.stderr}`
    }
    if (r.code === 0 && ok(last as T)) return last as T
    if (Date.now() > deadline)
      throw new Error(
        `claudemesh ${args.join(' ')}: condition not met within ${timeoutMs} ms; last: ${JSON.stringify(last)}${courierLogs(env)}`
      )
    // another process's CLI answer has no event to wait on: ask again shortly, bounded
    await sleep(200)
  }
}

/**
 * The tails of the couriers' logs in the mesh's run directory, for a failed poll: a courier is a
 * detached process whose log goes with the test's home.
 */
function courierLogs(env: MeshEnv): string {
  try {
    const dir = paths.run(env.CLAUDEMESH_HOME, 'team')
    const logs = readdirSync(dir).filter(f => f.endsWith('.courier.log'))
    if (logs.length === 0) return '; no courier log'
    return logs.map(f => `\n--- ${f} (tail) ---\n${readFileSync(join(dir, f), 'utf8').slice(-2000)}`).join('')
  } catch (err) {
    return `; courier logs unreadable: ${(err as Error).message}`
  }
}

function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)?.[0] !== 'Z'
  } catch {
    return false
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** Processes we did not spawn give no exit event: look at /proc until they are gone, bounded. */
async function waitGone(pids: number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (pids.some(alive) && Date.now() < deadline) await sleep(50)
}

async function tmuxOf(home: ClaudeHome, ...args: string[]): Promise<string> {
  return new Promise(resolve => {
    execFile('tmux', ['-S', join(home.dir, 'tmux.sock'), ...args], { timeout: 5_000 }, (err, stdout) => {
      resolve(err == null ? stdout : '')
    })
  })
}

/**
 * Ends a launched session: SIGHUP to claude (the pane's `launch` process's child) so it exits
 * and stops its MCP server, then the tmux server; any session node still registered in the
 * mesh home (started by this test) gets SIGTERM by its pid.
 */
export async function stopLaunched(s: InteractiveClaude, mesh: MeshEnv): Promise<void> {
  const launchPid = Number((await tmuxOf(s.home, 'display-message', '-p', '-t', 'claude', '#{pane_pid}')).trim())
  const claudePids = launchPid > 0 ? childrenOf(launchPid) : []
  for (const p of claudePids)
    try {
      process.kill(p, 'SIGHUP')
    } catch {}
  await waitGone(claudePids, 5_000)
  for (const p of claudePids)
    if (alive(p))
      try {
        process.kill(p, 'SIGKILL')
      } catch {}
  await s.kill()
  const { listRunning } = await import('@claudemesh/node/client')
  const left = (await listRunning(mesh.CLAUDEMESH_HOME, 'team').catch(() => [])).filter(e => e.kind === 'mcp').map(e => e.pid)
  for (const p of left)
    try {
      process.kill(p, 'SIGTERM')
    } catch {}
  await waitGone(left, 5_000)
}
