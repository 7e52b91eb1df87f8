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

interface H {
  peer: string
  name: string
  summary: string
  files: string[]
  decisions: string[]
}

describe('claudemesh context', () => {
  it('share publishes, get reads it from another daemon (text and --json), --to sends a message; bad input is one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-ctx-'))
    dirs.push(dir)
    const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
    await cli(['mesh', 'create', 'team'], env)
    const a = new Daemon(['--name', 'alice'], env)
    const b = new Daemon(['--name', 'bob'], env)
    daemons.push(a, b)
    await a.line(/^\+ bob /)
    await b.line(/^\+ alice /)
    const s = await cli(
      ['context', 'share', 'migrated', 'the', 'store', '--file', 'src/store.ts', '--decision', 'layout v3', '--name', 'alice', '--json'],
      env
    )
    expect(s.stderr).toBe('')
    const shared = JSON.parse(s.stdout) as { handOff: H }
    expect(shared.handOff).toMatchObject({
      name: 'alice',
      summary: 'migrated the store',
      files: ['src/store.ts'],
      decisions: ['layout v3']
    })
    // bob's replica gets it by gossip or the next pull: poll the CLI with a bound
    let got: H | null = null
    for (const end = Date.now() + 20_000; got == null && Date.now() < end; ) {
      got = JSON.parse((await cli(['context', 'get', 'alice', '--name', 'bob', '--json'], env)).stdout) as H | null
    }
    expect(got).toMatchObject({ peer: shared.handOff.peer, summary: 'migrated the store' })
    const text = await cli(['context', 'get', '--name', 'bob'], env)
    expect(text.stdout).toMatch(/^alice \(\w{10}\) {2}\d+s ago\n {2}migrated the store\n {2}files: src\/store.ts\n {2}- layout v3/)
    const dm = await cli(['context', 'share', 'over', 'to', 'you', '--to', 'bob', '--name', 'alice', '--json'], env)
    expect((JSON.parse(dm.stdout) as { sent: Array<{ name: string }> }).sent.map(x => x.name)).toEqual(['bob'])
    await b.line(/^> alice: Context hand-off from alice:/)
    for (const [args, re] of [
      [['context', 'share', '--name', 'alice'], /needs a summary/],
      [['context', 'get', 'carol', '--name', 'alice'], /no peer "carol"/],
      [['context', 'drop', '--name', 'alice'], /usage: claudemesh context/]
    ] as Array<[string[], RegExp]>) {
      const r = await cli(args, env)
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(re)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})
