/**
 * `--limit name=value` (SPEC.md §8.8): the flood limits a node applies to each peer, set on
 * `daemon`, `mcp` and `launch` (which hands them to its `mcp`), checked before anything starts.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { claudeArgs } from '../src/commands/launch.js'
import { cli, Daemon } from './helpers.js'

const daemons: Daemon[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

async function home(): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-fl-'))
  dirs.push(dir)
  const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '', CLAUDEMESH_CLAUDE_BIN: join(dir, 'no-claude') }
  expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
  return env
}

function daemon(args: string[], env: NodeJS.ProcessEnv): Daemon {
  const d = new Daemon(args, env)
  daemons.push(d)
  return d
}

async function pollFor<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs
  while (true) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

describe('--limit', () => {
  it('a bad setting is a usage error naming it, for daemon, mcp and launch, and nothing starts', async () => {
    const env = await home()
    const cases: Array<[string[], RegExp]> = [
      [['--limit', 'dm.rate=0'], /^claudemesh: limit dm\.rate: 0 is out of range \(a number above 0 up to \d+ messages\/s\)\n$/],
      [['--limit', 'dm.burst=lots'], /^claudemesh: limit dm\.burst: "lots" is not a number of messages\n$/],
      [['--limit', 'inbox=5'], /^claudemesh: unknown limit "inbox": use one of dm\.rate, .*blockMs\n$/],
      [['--limit', 'senderUnread'], /^claudemesh: limit senderUnread: give a value, as senderUnread=<number>\n$/]
    ]
    // every case on daemon; mcp and launch share the parser: one case each
    for (const [i, [args, err]] of cases.entries()) {
      for (const verb of [
        ['daemon', '--name', 'x'],
        ...(i === 0
          ? [
              ['mcp', '--name', 'x'],
              ['launch', '-y', '--name', 'x']
            ]
          : [])
      ]) {
        const r = await cli([...verb, ...args], env)
        expect(r.code, `${verb[0]} ${args.join(' ')}`).toBe(2)
        expect(r.stdout).toBe('')
        expect(r.stderr).toMatch(err)
      }
    }
  }, 90_000)

  it('launch hands its settings to the MCP server it configures', () => {
    const args = claudeArgs({
      session: 'abc',
      resume: false,
      mesh: 'team',
      home: '/h',
      name: 'a',
      bootstrap: [],
      limits: ['dm.rate=5', 'senderUnread=9'],
      channels: false,
      passthrough: []
    })
    const config = JSON.parse(args[args.indexOf('--mcp-config') + 1] as string) as { mcpServers: { claudemesh: { args: string[] } } }
    const mcp = config.mcpServers.claudemesh.args
    expect(mcp.slice(mcp.indexOf('--limit'))).toEqual(['--limit', 'dm.rate=5', '--limit', 'senderUnread=9'])
  })

  it('a daemon applies its settings: info shows them, and a sender past the unread cap is refused for now', async () => {
    const env = await home()
    const bob = daemon(['--name', 'bob', '--limit', 'senderUnread=2', '--limit', 'dm.burst=50'], env)
    const alice = daemon(['--name', 'alice'], env)
    await bob.line(/^\+ alice /)
    await alice.line(/^\+ bob /)
    const info = JSON.parse((await cli(['info', '--name', 'bob', '--json'], env)).stdout) as {
      limits: { senderUnread: number; totalUnread: number; dm: { rate: number; burst: number } }
    }
    expect(info.limits.senderUnread).toBe(2)
    expect(info.limits.dm).toMatchObject({ rate: 50, burst: 50 })
    expect(info.limits.totalUnread).toBe(10_000)
    expect((await cli(['info', '--name', 'bob'], env)).stdout).toMatch(
      /^limits {4}per peer: DMs 50\/s \(burst 50\), group messages 20\/s \(burst 200\); unread ≤ 2 per peer, 10000 in all$/m
    )
    const ids: string[] = []
    for (const n of [1, 2, 3]) {
      const r = await cli(['send', 'bob', `note ${n}`, '--name', 'alice', '--json'], env)
      expect(r.code).toBe(0)
      ids.push((JSON.parse(r.stdout) as Array<{ id: string }>)[0]?.id as string)
    }
    await bob.line(/^> alice: note 2/)
    // the third waits at alice, refused for now, and says why
    const third = await pollFor(
      async () => {
        const s = JSON.parse((await cli(['status', ids[2] as string, '--name', 'alice', '--json'], env)).stdout) as {
          status: string
          error?: string
        }
        return s.error != null ? s : undefined
      },
      20_000,
      'the third DM to be refused'
    )
    expect(third.status).toBe('pending')
    expect(third.error).toMatch(/refused it for now \(inbox-full\)/)
    expect(bob.lines.some(l => l.includes('note 3'))).toBe(false)
  }, 60_000)
})
