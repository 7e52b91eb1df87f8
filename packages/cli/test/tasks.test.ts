/**
 * `claudemesh task` through real daemons on loopback (libp2p, LevelDB, the control socket):
 * create, claim with a lease that its holder renews, and the lease lapsing after the holder
 * is killed with -9, so another member can claim the task; `--json` and bad input.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, Daemon } from './helpers.js'

const daemons: Daemon[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

interface Task {
  id: string
  title: string
  status: string
  holder: string | null
  result?: string
  watchers: string[]
  lease: { claimant: string; state: string; expiresAt: number } | null
}

async function json<T>(args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const r = await cli([...args, '--json'], env)
  if (r.code !== 0) throw new Error(`claudemesh ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

/** Poll the CLI (no event reaches a test from another process) until `pred` holds, bounded. */
async function pollTask(
  env: NodeJS.ProcessEnv,
  name: string,
  id: string,
  pred: (t: Task) => boolean,
  what: string,
  timeoutMs = 30_000
): Promise<Task> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const t = (await json<Task[]>(['task', 'list', '--name', name], env)).find(x => x.id === id)
    if (t != null && pred(t)) return t
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(t)}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

/** A home with the mesh "team" and one daemon, "solo", running in it. */
async function solo(): Promise<{ CLAUDEMESH_HOME: string; CLAUDEMESH_SESSION: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-task-'))
  dirs.push(dir)
  const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
  await cli(['mesh', 'create', 'team'], env)
  const d = new Daemon(['--name', 'solo'], env)
  daemons.push(d)
  await d.ready()
  return env
}

/** A new home with a mesh and two daemons, alice and bob, that have seen each other. */
async function pair(): Promise<{ env: NodeJS.ProcessEnv; alice: Daemon; bob: Daemon }> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-task-'))
  dirs.push(dir)
  const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
  expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
  const alice = new Daemon(['--name', 'alice'], env)
  const bob = new Daemon(['--name', 'bob'], env)
  daemons.push(alice, bob)
  await Promise.all([alice.ready(), bob.ready()])
  await Promise.all([alice.line(/^\+ bob /), bob.line(/^\+ alice /)])
  return { env, alice, bob }
}

describe('claudemesh task', () => {
  it('a lease is renewed while its holder runs and lapses after kill -9; then another member claims and completes', async () => {
    const { env, alice } = await pair()
    const aliceId = (await json<{ id: string }>(['info', '--name', 'alice'], env)).id
    const created = await json<Task>(['task', 'create', 'fix', 'the', 'flaky', 'test', '--priority', 'high', '--name', 'alice'], env)
    expect(created).toMatchObject({ title: 'fix the flaky test', status: 'open', holder: null })
    const claim = await json<{ won: boolean; task: Task }>(['task', 'claim', created.id.slice(0, 6), '--ttl', '3', '--name', 'alice'], env)
    expect(claim.won).toBe(true)
    const firstExp = claim.task.lease?.expiresAt ?? 0
    // bob sees alice hold it, and sees the lease move on past its first expiry: alice renews it
    await pollTask(env, 'bob', created.id, t => t.holder === aliceId && (t.lease?.expiresAt ?? 0) > firstExp, 'a renewed lease at bob')
    expect((await cli(['task', 'claim', created.id, '--name', 'bob'], env)).stderr).toMatch(/^claudemesh: task [0-9a-f]{16} is held by /)
    expect(await alice.stop('SIGKILL')).toBe(null)
    const lapsed = await pollTask(env, 'bob', created.id, t => t.holder == null, 'the lease to lapse at bob')
    expect(lapsed.lease).toMatchObject({ claimant: aliceId })
    expect(['expired', 'offline']).toContain(lapsed.lease?.state)
    const human = await cli(['task', 'claim', created.id, '--ttl', '30', '--name', 'bob'], env)
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^claimed [0-9a-f]{16} until /)
    const done = await json<Task>(['task', 'complete', created.id, 'quarantined', 'it', '--name', 'bob'], env)
    expect(done).toMatchObject({ status: 'done', holder: null, result: 'quarantined it' })
    const listed = await cli(['task', 'list', '--status', 'done', '--name', 'bob'], env)
    expect(listed.stdout).toMatch(/fix the flaky test/)
    expect(listed.stdout).toMatch(/done/)
  }, 60_000)

  it('a daemon prints its task news, one escaped line each: an assignment, a claim, a completion, a loss of the lease', async () => {
    const { env, alice, bob } = await pair()
    // a title with a terminal control in it: it must reach the terminal as a visible escape
    const t = await json<Task>(['task', 'create', 'fix \x1b[31mred', '--assignee', 'bob', '--priority', 'high', '--name', 'alice'], env)
    const id8 = t.id.slice(0, 8)
    const head = `! task ${id8} [high] "fix \\x1b[31mred"`
    expect((await bob.line(new RegExp(`^! task ${id8} `))).input).toBe(`${head} (assigned to you): alice assigned it to you`)
    expect((await json<{ won: boolean }>(['task', 'claim', t.id, '--ttl', '60', '--name', 'bob'], env)).won).toBe(true)
    await alice.line(/: bob claimed it$/)
    await json<Task>(['task', 'complete', t.id, 'merged\x07 #12', 'and', 'more', '--name', 'bob'], env)
    await alice.line(/: bob completed it: /)
    // a second task: bob holds it and is killed; alice (its creator, watching) is told the lease ended
    const u = await json<Task>(['task', 'create', 'deploy', '--name', 'alice'], env)
    await pollTask(env, 'bob', u.id, () => true, 'the second task at bob')
    expect((await json<{ won: boolean }>(['task', 'claim', u.id, '--ttl', '60', '--name', 'bob'], env)).won).toBe(true)
    await alice.line(new RegExp(`^! task ${u.id.slice(0, 8)} \\[normal\\] "deploy" \\(you watch it\\): bob claimed it$`))
    await bob.stop('SIGKILL')
    await alice.line(/"deploy" \(you watch it\): bob's lease ended \((offline|expired)\); nobody holds it$/, 30_000)
    const news = alice.lines.filter(l => l.startsWith('! task'))
    expect(news).toEqual([
      `${head} (you watch it): bob claimed it`,
      `${head} (you watch it): bob completed it: merged\\x07 #12 and more`,
      `! task ${u.id.slice(0, 8)} [normal] "deploy" (you watch it): bob claimed it`,
      expect.stringMatching(
        /^! task [0-9a-f]{8} \[normal\] "deploy" \(you watch it\): bob's lease ended \((offline|expired)\); nobody holds it$/
      )
    ])
    expect(alice.lines.join('\n')).not.toContain('\x1b')
  }, 90_000)

  it('watch and unwatch: the creator watches unless --no-watch; --json shows the watchers, show names them', async () => {
    const env = await solo()
    const me = (await json<{ id: string }>(['info'], env)).id
    expect((await json<Task>(['task', 'create', 'watched'], env)).watchers).toEqual([me])
    const quiet = await json<Task>(['task', 'create', 'quiet', '--no-watch'], env)
    expect(quiet.watchers).toEqual([])
    expect((await json<Task>(['task', 'watch', quiet.id.slice(0, 6)], env)).watchers).toEqual([me])
    expect((await cli(['task', 'show', quiet.id], env)).stdout).toContain(`watchers  ${me.slice(-10)}`)
    const human = await cli(['task', 'unwatch', quiet.id], env)
    expect([human.code, human.stdout.trim()]).toEqual([0, `${quiet.id}: not watching`])
    expect((await json<Task>(['task', 'show', quiet.id], env)).watchers).toEqual([])
    const bad = await cli(['task', 'watch', 'zzzz'], env)
    expect([bad.code, bad.stderr.trim()]).toEqual([1, 'claudemesh: no task "zzzz"'])
  }, 60_000)

  it('bad input is one line on stderr, a non-zero exit, and nothing written', async () => {
    const env = await solo()
    const t = await json<Task>(['task', 'create', 'one'], env)
    const cases: Array<[string[], number, RegExp]> = [
      [['task', 'create', 'x', '--priority', 'urgent'], 2, /invalid priority "urgent"/],
      [['task', 'claim', 'zzzz'], 1, /no task "zzzz"/],
      [['task', 'claim', t.id, '--ttl', '0'], 2, /--ttl takes seconds/],
      [['task', 'update', t.id, '--reopen', '--cancel'], 2, /exclude each other/],
      [['task', 'update', t.id, '--deps', t.id], 1, /depend on itself/],
      [['task', 'complete', 'abc'], 1, /at least 4 characters/]
    ]
    for (const [args, code, re] of cases) {
      const r = await cli(args, env)
      expect([r.code, r.stderr.trim().split('\n').length], args.join(' ')).toEqual([code, 1])
      expect(r.stderr).toMatch(re)
    }
    expect((await json<Task[]>(['task', 'list'], env)).map(x => [x.id, x.status, x.holder])).toEqual([[t.id, 'open', null]])
  }, 60_000)
})
