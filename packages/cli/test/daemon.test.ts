import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import '@claudemesh/node/polyfill'
import { createMeshNode, type MeshNode } from '@claudemesh/node'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, Daemon } from './helpers.js'

const daemons: Daemon[] = []
const nodes: MeshNode[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

async function home(): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-cli-'))
  dirs.push(dir)
  return { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
}

function daemon(args: string[], env: NodeJS.ProcessEnv): Daemon {
  const d = new Daemon(args, env)
  daemons.push(d)
  return d
}

describe('claudemesh daemon processes', () => {
  it('three daemons sharing a home find each other with no flags; verbs pick a node', async () => {
    const env = await home()
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const ds = ['alice', 'bob', 'carol'].map(n => daemon(['--name', n, '--groups', 'core'], env))
    await Promise.all(ds.map(async d => d.ready()))
    // each daemon announces every other's arrival on stderr
    await Promise.all(
      ds.flatMap(d =>
        ['alice', 'bob', 'carol'].map(async n =>
          d.lines.some(l => l.startsWith(`claudemesh: ${n} `)) ? undefined : d.line(new RegExp(`^\\+ ${n} `))
        )
      )
    )
    const r = await cli(['peers', '--name', 'bob', '--json'], env)
    expect(r.code).toBe(0)
    const peers = JSON.parse(r.stdout) as { self: { name: string }; peers: Array<{ name: string; online: boolean }> }
    expect(peers.self.name).toBe('bob')
    expect(
      peers.peers
        .filter(p => p.online)
        .map(p => p.name)
        .sort()
    ).toEqual(['alice', 'carol'])
    const ambiguous = await cli(['info'], env)
    expect(ambiguous.code).toBe(2)
    expect(ambiguous.stderr).toMatch(/3 nodes of mesh "team" are running; pick one with --session or --name: .*alice/)
    const info = JSON.parse((await cli(['info', '--name', 'carol', '--json'], env)).stdout) as { name: string; peersOnline: number }
    expect(info).toMatchObject({ name: 'carol', peersOnline: 2 })
    // SIGTERM is a clean stop: exit 0, and the others see a prompt leave
    expect(await ds[2]?.stop()).toBe(0)
    await ds[0]?.line(/^- carol /)
  })

  it('two homes joined by invite and --bootstrap', async () => {
    const a = await home()
    const b = await home()
    await cli(['mesh', 'create', 'team'], a)
    const token = (await cli(['mesh', 'invite', 'team', '--expires', '1h'], a)).stdout.trim()
    const joined = await cli(['mesh', 'join', token], b)
    expect(joined.stdout).toMatch(/joined mesh "team"/)
    const one = daemon(['--name', 'one'], a)
    const addr = await one.ready()
    const two = daemon(['--name', 'two', '--bootstrap', addr], b)
    await two.line(/^\+ one /)
    await one.line(/^\+ two /)
  })

  it('refuses bad invites and reports missing nodes with one clear line and a non-zero exit', async () => {
    const env = await home()
    const bad = await cli(['mesh', 'join', 'cm1.AAAA'], env)
    expect(bad.code).not.toBe(0)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
    expect(bad.stderr).toMatch(/^claudemesh: invite is damaged/)
    await cli(['mesh', 'create', 'team'], env)
    const none = await cli(['peers'], env)
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/no node of mesh "team" is running here/)
  })

  it('kill -9 and a restart inside the grace is neither a leave nor a join', async () => {
    const env = await home()
    await cli(['mesh', 'create', 'team'], env)
    const observer = await createMeshNode({
      home: env.CLAUDEMESH_HOME ?? '',
      mesh: 'team',
      session: crypto.randomUUID(),
      name: 'observer',
      presence: { graceMs: 10_000 }
    })
    nodes.push(observer)
    await observer.start()
    const events: string[] = []
    for (const t of ['peer:join', 'peer:leave'] as const)
      observer.addEventListener(t, e => {
        events.push(`${t} ${e.detail.name}`)
      })
    const first = daemon(['--name', 'worker'], env)
    await first.line(/^\+ observer /)
    await new Promise<void>(resolve => {
      if (events.includes('peer:join worker')) resolve()
      else
        observer.addEventListener('peer:join', () => {
          resolve()
        })
    })
    const id = observer.peers().find(p => p.name === 'worker')?.id ?? ''
    const inc = observer.presence.get(id)?.incarnation ?? 0
    expect(await first.stop('SIGKILL')).toBe(null)
    const second = daemon(['--name', 'worker'], env)
    await second.line(/^\+ observer /)
    await new Promise<void>(resolve => {
      const check = (): void => {
        if ((observer.presence.get(id)?.incarnation ?? 0) > inc) resolve()
      }
      observer.addEventListener('peer:update', check)
      check()
    })
    expect(events).toEqual(['peer:join worker'])
    expect(observer.presence.get(id)?.online).toBe(true)
    // the same kill without a restart does produce a leave once the grace is over
    await second.stop('SIGKILL')
    await new Promise<void>(resolve => {
      observer.addEventListener('peer:leave', () => {
        resolve()
      })
    })
    expect(events).toEqual(['peer:join worker', 'peer:leave worker'])
  })

  it('a second daemon with the same session replaces the first, which says so and exits 3', async () => {
    const env = await home()
    await cli(['mesh', 'create', 'team'], env)
    const first = daemon(['--name', 'dup'], env)
    await first.ready()
    const second = daemon(['--name', 'dup'], env)
    await second.ready()
    expect(await first.exited).toBe(3)
    expect(first.lines.join('\n')).toMatch(/a newer instance of this session took over/)
    const info = JSON.parse((await cli(['info', '--json'], env)).stdout) as { pid: number }
    expect(info.pid).toBe(second.proc.pid)
  })
})
