import { createConnection } from 'node:net'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
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

async function home(mesh = true): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-lim-'))
  dirs.push(dir)
  const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
  if (mesh) expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
  return env
}

/** One raw request line on a node's control socket, bypassing the CLI's own checks. */
async function rawControl(socket: string, line: string): Promise<{ ok: boolean; error?: { name: string; message: string } }> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket)
    let buf = ''
    s.on('data', d => {
      buf += d.toString()
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        s.destroy()
        resolve(JSON.parse(buf.slice(0, nl)))
      }
    })
    s.on('error', reject)
    s.write(`${line}\n`)
  })
}

const nested = (n: number): string => `${'['.repeat(n)}1${']'.repeat(n)}`

describe('invite lifetimes and relay invites (issue 10, items 14 and 15)', () => {
  it('mesh invite --expires beyond 365 days is a usage error, with or without --json; 365d works and joins', async () => {
    const env = await home()
    for (const args of [
      ['--expires', '99999999999w'],
      ['--expires', '99999999999w', '--json'],
      ['--expires', '366d']
    ]) {
      const r = await cli(['mesh', 'invite', 'team', ...args], env)
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^claudemesh: duration "\d+[wd]" is too long: the most is 365d\n$/)
    }
    const ok = await cli(['mesh', 'invite', 'team', '--expires', '365d', '--json'], env)
    expect(ok.code).toBe(0)
    const { token, expiresAt } = JSON.parse(ok.stdout) as { token: string; expiresAt: string }
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(364 * 86_400_000)
    expect((await cli(['mesh', 'join', token], await home(false))).code).toBe(0)
  })

  it('mesh join refuses a relay invite with a pointer to `relay --invite`, exits non-zero and writes nothing', async () => {
    const env = await home()
    const token = (await cli(['mesh', 'invite', 'team', '--relay'], env)).stdout.trim()
    const joiner = await home(false)
    const r = await cli(['mesh', 'join', token], joiner)
    expect(r.code).not.toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/this is a relay invite for mesh "team": run `claudemesh relay --invite <token>` on the relay host/)
    expect(await readdir(joiner.CLAUDEMESH_HOME ?? '')).toEqual([])
    expect((await cli(['mesh', 'list', '--json'], joiner)).stdout.trim()).toBe('[]')
  })
})

describe('state set bounds its input (issue 10, item 14)', () => {
  it('a value nested 60,000 deep is refused with a depth error by the CLI and by the node over its control socket', async () => {
    const env = await home()
    const d = new Daemon(['--name', 'alice'], env)
    daemons.push(d)
    await d.ready()
    const deep = await cli(['state', 'set', 'k', nested(60_000)], env)
    expect(deep.code).not.toBe(0)
    expect(deep.stderr).toMatch(/^claudemesh: the value is nested deeper than 15 levels \(the limit\)\n$/)
    // the node's own bound, without the CLI's check in front of it
    const run = join(env.CLAUDEMESH_HOME ?? '', 'run', 'team')
    const sock = (await readdir(run)).find(f => f.endsWith('.sock'))
    const r = await rawControl(join(run, sock ?? ''), `{"id":1,"method":"state.set","params":{"key":"k","value":${nested(100_000)}}}`)
    expect(r).toMatchObject({
      ok: false,
      error: { name: 'InvalidMessageError', message: 'the value is nested deeper than 15 levels (the limit)' }
    })
    // 15 levels is the most, and it is stored
    expect((await cli(['state', 'set', 'k', nested(15)], env)).code).toBe(0)
    expect((await cli(['state', 'set', 'k', nested(16)], env)).stderr).toMatch(/nested deeper than 15 levels/)
    expect(JSON.parse((await cli(['state', 'get', 'k', '--json'], env)).stdout).value).toEqual(JSON.parse(nested(15)))
  })
})
