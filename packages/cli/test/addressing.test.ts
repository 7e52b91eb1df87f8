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

function daemon(name: string, env: NodeJS.ProcessEnv): Daemon {
  const d = new Daemon(['--name', name], env)
  daemons.push(d)
  return d
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface Peer {
  id: string
  name: string
  handle?: string
  online: boolean
}

describe('DMs cannot be hijacked by choosing a name (issue 10, item 9)', () => {
  it('ids win over names, a name shared online/offline is refused with handles, and a handle reaches its peer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-addr-'))
    dirs.push(dir)
    const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const alice = daemon('alice', env)
    const bob = daemon('bob', env)
    const bobId = (await bob.line(/^claudemesh: bob \((\S+)\)/))[1] ?? ''
    const short = bobId.slice(-10)
    // mallory takes bob's printed short id as her name
    const mallory = daemon(short, env)
    await alice.line(/^\+ bob /)
    await alice.line(new RegExp(`^\\+ ${short} `))
    const sent = await cli(['send', short, 'for', 'bob', '--name', 'alice', '--json'], env)
    expect(sent.stderr).toBe('')
    expect((JSON.parse(sent.stdout) as Array<{ to: string }>)[0]?.to).toBe(bobId)
    await bob.line(/^> alice: for bob/)
    expect(mallory.lines.some(l => l.includes('for bob'))).toBe(false)

    // the real bob leaves; an impostor named "Bob" arrives: `send bob` is refused, not delivered
    await bob.stop('SIGTERM')
    await alice.line(/^- bob /)
    const impostor = daemon('Bob', env)
    const impostorId = (await impostor.line(/^claudemesh: Bob \((\S+)\)/))[1] ?? ''
    await alice.line(/^\+ Bob /)
    const refused = await cli(['send', 'bob', 'secret', '--name', 'alice'], env)
    expect(refused.code).not.toBe(0)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toMatch(new RegExp(`^claudemesh: "bob" matches 2 peers: .*Bob#${esc(impostorId.slice(-6))} \\(${impostorId}\\)`))
    expect(refused.stderr).toContain(`bob#${bobId.slice(-6)} (${bobId}, offline)`)
    expect(impostor.lines.some(l => l.includes('secret'))).toBe(false)

    // `peers` shows the qualified handles, and the handle reaches the real (offline) bob
    const { peers } = JSON.parse((await cli(['peers', '--name', 'alice', '--json'], env)).stdout) as { peers: Peer[] }
    const handle = (id: string): string | undefined => peers.find(p => p.id === id)?.handle
    expect(handle(bobId)).toBe(`bob#${bobId.slice(-6)}`)
    expect(handle(impostorId)).toBe(`Bob#${impostorId.slice(-6)}`)
    expect(handle(peers.find(p => p.name === short)?.id ?? '')).toMatch(new RegExp(`^${esc(short)}#`))
    const table = (await cli(['peers', '--name', 'alice'], env)).stdout
    expect(table).toContain(`bob#${bobId.slice(-6)}`)
    const viaHandle = await cli(['send', `bob#${bobId.slice(-6)}`, 'later', '--name', 'alice', '--json'], env)
    expect((JSON.parse(viaHandle.stdout) as Array<{ to: string; status: string }>)[0]).toMatchObject({ to: bobId, status: 'pending' })
  }, 120_000) // four daemons and a dozen CLI runs on a shared 2-core machine
})
