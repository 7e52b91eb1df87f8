/**
 * File reservations from the CLI through real daemons on loopback (SPEC.md §15): reserve,
 * reservations and release with --json, peers, the PreToolUse hook denying an edit with the
 * holder's reason, and the git guard refusing a commit in a real repository.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, daemonWorld, type Run } from './helpers.js'

const world = daemonWorld('cm-rsv-')
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

interface Reservation {
  holder: string
  name: string
  repo: string
  branch: string
  globs: string[]
  mode: string
  reason: string
}

async function clone(remote: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-rsv-repo-'))
  dirs.push(d)
  for (const args of [
    ['init', '-q', '-b', 'main'],
    ['remote', 'add', 'origin', remote],
    ['config', 'user.email', 't@example.com'],
    ['config', 'user.name', 't']
  ])
    execFileSync('git', ['-C', d, ...args])
  return d
}

async function json<T>(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<T> {
  const r = await cli([...args, '--json'], env, '', cwd)
  if (r.code !== 0) throw new Error(`claudemesh ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

/** Poll the CLI (no event reaches a test from another process) until `pred` holds, bounded. */
async function until<T>(args: string[], env: NodeJS.ProcessEnv, pred: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const v = await json<T>(args, env)
    if (pred(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

async function pair(): Promise<{ env: NodeJS.ProcessEnv; stop: () => Promise<void>; bobSession: string }> {
  const env = await world.home()
  const alice = world.daemon('alice', env)
  const bob = world.daemon('bob', env)
  await Promise.all([alice.ready(), bob.ready()])
  await Promise.all([alice.line(/^\+ bob /), bob.line(/^\+ alice /)])
  const bobSession = (await json<{ session: string }>(['info', '--name', 'bob'], env)).session
  return {
    env,
    bobSession,
    stop: async () => {
      await Promise.all([alice.stop(), bob.stop()])
    }
  }
}

const hook = async (env: NodeJS.ProcessEnv, session: string, cwd: string, file: string): Promise<Run> =>
  cli(
    ['hook', 'pre-tool-use'],
    env,
    JSON.stringify({
      session_id: session,
      cwd,
      hook_event_name: 'PreToolUse',
      tool_name: 'Edit',
      tool_input: { file_path: file, old_string: 'a', new_string: 'b' }
    })
  )

describe('claudemesh reserve, reservations, release and the PreToolUse hook', () => {
  it('a reservation made in one clone denies an edit in another clone of the same repository, naming the holder and reason, until it is released', async () => {
    const { env, bobSession } = await pair()
    const cloneA = await clone('git@example.com:team/app.git')
    const cloneB = await clone('https://bob:token@example.com/team/app')
    const r = await json<Reservation>(
      ['reserve', 'src/auth/**', '--reason', 'rewriting login', '--ttl', '600', '--name', 'alice'],
      env,
      cloneA
    )
    expect(r).toMatchObject({
      name: 'alice',
      repo: 'example.com/team/app',
      branch: 'main',
      globs: ['src/auth/**'],
      mode: 'exclusive',
      reason: 'rewriting login'
    })
    const seen = await until<Reservation[]>(
      ['reservations', '--path', 'src/auth', '--name', 'bob'],
      env,
      v => v.length === 1,
      "alice's reservation at bob"
    )
    expect(seen[0]).toMatchObject({ holder: r.holder, name: 'alice' })
    expect((await cli(['reservations', '--path', 'docs', '--name', 'bob'], env)).stdout).toBe('no live reservation touches docs\n')
    expect((await cli(['reservations', '--name', 'bob'], env)).stdout).toMatch(
      /^HOLDER +ID +REPOSITORY +GLOBS +MODE +LEFT +REASON\nalice +\S{10} +example\.com\/team\/app@main +src\/auth\/\*\* +exclusive +10m +rewriting login\n$/
    )
    expect((await cli(['peers', '--name', 'bob'], env)).stdout).toMatch(
      /\nalice reserves src\/auth\/\*\* in example\.com\/team\/app@main \(exclusive\): rewriting login\n/
    )

    const denied = await hook(env, bobSession, cloneB, 'src/auth/login.ts')
    expect(denied.code, denied.stderr).toBe(0)
    const out = JSON.parse(denied.stdout) as {
      hookSpecificOutput: { hookEventName: string; permissionDecision: string; permissionDecisionReason: string }
    }
    expect(out.hookSpecificOutput).toMatchObject({ hookEventName: 'PreToolUse', permissionDecision: 'deny' })
    expect(out.hookSpecificOutput.permissionDecisionReason).toMatch(
      /^claudemesh: src\/auth\/login\.ts is reserved exclusively by "alice" \(peer \S{10}, until [^)]+\): rewriting login\. Ask them with send_message to "alice" to release it/
    )
    expect(await hook(env, bobSession, cloneB, join(cloneB, 'README.md'))).toMatchObject({ code: 0, stdout: '' })
    const notebook = await cli(
      ['hook', 'pre-tool-use'],
      env,
      JSON.stringify({
        session_id: bobSession,
        cwd: cloneB,
        tool_name: 'NotebookEdit',
        tool_input: { notebook_path: join(cloneB, 'src/auth/flow.ipynb'), new_source: 'x' }
      })
    )
    expect(notebook.stdout).toMatch(/"permissionDecision":"deny".*src\/auth\/flow\.ipynb is reserved exclusively by \\"alice\\"/)
    const t0 = Date.now()
    expect(await hook(env, '00000000-0000-4000-8000-000000000000', cloneB, 'src/auth/login.ts')).toMatchObject({
      code: 0,
      stdout: '',
      stderr: ''
    })
    expect(Date.now() - t0).toBeLessThan(5_000)

    const clash = await cli(['reserve', 'src/auth/token.ts', '--shared', '--name', 'bob'], env, '', cloneB)
    expect([clash.code, clash.stderr.trim().split('\n').length]).toEqual([1, 1])
    expect(clash.stderr).toMatch(/^claudemesh: "src\/auth\/token\.ts" overlaps src\/auth\/\*\*, reserved exclusively by "alice"/)
    for (const [args, code, re] of [
      [['reserve', '../x'], 1, /not inside the repository/],
      [['reserve', 'x', '--ttl', '0'], 2, /--ttl takes seconds/],
      [['release', 'x', '--all'], 2, /not both/]
    ] as const) {
      const bad = await cli([...args, '--name', 'bob'], env, '', cloneB)
      expect([bad.code, bad.stderr.trim().split('\n').length], args.join(' ')).toEqual([code, 1])
      expect(bad.stderr).toMatch(re)
    }
    expect(await json<Reservation[]>(['reservations', '--holder', 'bob', '--name', 'bob'], env)).toEqual([])

    expect(await json<{ released: number; remaining: unknown[] }>(['release', '--name', 'alice'], env, cloneA)).toEqual({
      released: 1,
      remaining: []
    })
    await until<Reservation[]>(['reservations', '--name', 'bob'], env, v => v.length === 0, 'the release at bob')
    expect(await hook(env, bobSession, cloneB, 'src/auth/login.ts')).toMatchObject({ code: 0, stdout: '' })
  }, 90_000)
})

async function commit(repo: string, env: NodeJS.ProcessEnv, session: string, file: string): Promise<Run> {
  await mkdir(join(repo, file, '..'), { recursive: true })
  await writeFile(join(repo, file), `${Date.now()}\n`)
  execFileSync('git', ['-C', repo, 'add', file])
  return new Promise(resolve => {
    execFile(
      'git',
      ['-C', repo, 'commit', '-q', '-m', `change ${file}`],
      { env: { ...process.env, ...env, CLAUDEMESH_SESSION: session, CLAUDE_CODE_SESSION_ID: '' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
      }
    )
  })
}

describe('claudemesh guard', () => {
  it('refuses a commit touching a path another live session holds, keeps the existing hook running, and lets it through once released', async () => {
    const { env, bobSession, stop } = await pair()
    const cloneA = await clone('git@example.com:team/app.git')
    const repo = await clone('https://example.com/team/app.git')
    const mine = '#!/bin/sh\necho ran >> "$(git rev-parse --git-dir)/chained.log"\n'
    await writeFile(join(repo, '.git/hooks/pre-commit'), mine)
    await chmod(join(repo, '.git/hooks/pre-commit'), 0o755)
    const inst = await cli(['guard', 'install'], env, '', repo)
    expect(inst.stdout).toMatch(/^installed the claudemesh guard in .*pre-commit \(your earlier hook runs first/)
    expect((await commit(repo, env, bobSession, 'README.md')).code).toBe(0)

    await json(['reserve', 'src/auth', '--reason', 'rewriting login', '--name', 'alice'], env, cloneA)
    await json(['reserve', 'docs/**', '--name', 'bob'], env, repo)
    await until<Reservation[]>(
      ['reservations', '--path', 'src/auth/x.ts', '--name', 'bob'],
      env,
      v => v.length === 1,
      "alice's reservation at bob"
    )
    const refused = await commit(repo, env, bobSession, 'src/auth/login.ts')
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(
      /claudemesh guard: src\/auth\/login\.ts is reserved exclusively by "alice" \(\S{10}\) until \S+: rewriting login\n/
    )
    expect(refused.stderr).toMatch(/commit refused: 1 staged path\(s\) reserved by other sessions/)
    const checked = await cli(['guard', 'check', '--session', bobSession, '--json'], env, '', repo)
    expect(checked.code).toBe(1)
    expect(JSON.parse(checked.stdout)).toMatchObject({ checked: 1, blocked: [{ rel: 'src/auth/login.ts' }], asked: [{ viewer: 'self' }] })
    execFileSync('git', ['-C', repo, 'reset', '-q'])
    // bob's own reservation does not stop bob; a committer who is no session is stopped by it
    expect((await commit(repo, env, '', 'docs/a.md')).code).toBe(1)
    execFileSync('git', ['-C', repo, 'reset', '-q'])
    expect((await commit(repo, env, bobSession, 'docs/a.md')).code).toBe(0)

    await json(['release', '--all', '--name', 'alice'], env)
    await until<Reservation[]>(['reservations', '--path', 'src/auth', '--name', 'bob'], env, v => v.length === 0, 'the release at bob')
    expect((await commit(repo, env, bobSession, 'src/auth/login.ts')).code).toBe(0)
    await stop()
    const alone = await commit(repo, env, bobSession, 'src/auth/token.ts')
    expect(alone.code).toBe(0)
    expect(alone.stderr).toMatch(/claudemesh guard: no running claudemesh node; reservations not checked/)
    expect((await readFile(join(repo, '.git/chained.log'), 'utf8')).trim().split('\n')).toHaveLength(6)

    expect((await cli(['guard', 'uninstall'], env, '', repo)).stdout).toMatch(
      /removed the claudemesh guard .* and restored your earlier hook/
    )
    expect(await readFile(join(repo, '.git/hooks/pre-commit'), 'utf8')).toBe(mine)
    const notGit = await cli(['guard', 'install'], env, '', tmpdir())
    expect([notGit.code, notGit.stderr]).toEqual([2, expect.stringMatching(/is not in a git work tree/)])
  }, 120_000)
})
