import { describe, expect, it } from 'vitest'
import { cli, daemonWorld } from './helpers.js'

const { home, daemon } = daemonWorld('cm-sched-')

interface View {
  id: string
  state: string
  fired: number
  next?: number
  last?: { results: Array<{ id: string }> }
}

async function bodies(name: string, env: NodeJS.ProcessEnv, body: string): Promise<string[]> {
  const r = await cli(['inbox', '--name', name, '--all', '--keep-unread', '--json', '--limit', '500'], env)
  return (JSON.parse(r.stdout) as { messages: Array<{ id: string; body: string }> }).messages.filter(m => m.body === body).map(m => m.id)
}

describe('claudemesh schedule', () => {
  it('a scheduled message survives kill -9 of its sender and arrives once, through restarts', async () => {
    const env = await home()
    const a = daemon('alice', env)
    const b = daemon('bob', env)
    await a.line(/^\+ bob /)
    await b.line(/^\+ alice /)
    const r = await cli(['schedule', 'bob', 'written', 'before', 'the', 'crash', '--in', '3s', '--name', 'alice', '--json'], env)
    expect(r.stderr).toBe('')
    const s = JSON.parse(r.stdout) as View
    expect(s.state).toBe('active')
    // accepted means on disk: the only copy is alice's store, and alice dies now
    await a.stop('SIGKILL')
    const a2 = daemon('alice', env)
    await a2.ready()
    await b.line(/^> alice: written before the crash/, 30_000)
    const listed = JSON.parse((await cli(['schedule', 'list', '--all', '--name', 'alice', '--json'], env)).stdout) as View[]
    const done = listed.find(x => x.id === s.id)
    expect(done).toMatchObject({ state: 'done', fired: 1 })
    expect(await bodies('bob', env, 'written before the crash')).toEqual(done?.last?.results.map(x => x.id))
    // a later crash and restart of the sender fires nothing again
    await a2.stop('SIGKILL')
    const a3 = daemon('alice', env)
    await a3.ready()
    await b.line(/^\+ alice /)
    expect(JSON.parse((await cli(['schedule', 'list', '--name', 'alice', '--json'], env)).stdout) as View[]).toEqual([])
    expect(await bodies('bob', env, 'written before the crash')).toHaveLength(1)
  })

  it('list, cancel and bad input, each with --json and a one-line error', async () => {
    const env = await home()
    const a = daemon('alice', env)
    await a.ready()
    const add = await cli(['schedule', 'me', 'weekly', 'report', '--cron', '0 9 * * 1', '--name', 'alice', '--json'], env)
    const s = JSON.parse(add.stdout) as View & { kind: string; cron: string }
    expect(s).toMatchObject({ kind: 'cron', cron: '0 9 * * 1', state: 'active' })
    expect(new Date(s.next ?? 0).getDay()).toBe(1)
    const text = await cli(['schedule', 'list', '--name', 'alice'], env)
    expect(text.stdout).toMatch(new RegExp(`${s.id}\\s+me\\s+cron 0 9 \\* \\* 1`))
    const c = await cli(['schedule', 'cancel', s.id, '--name', 'alice', '--json'], env)
    expect((JSON.parse(c.stdout) as View).state).toBe('cancelled')
    expect(JSON.parse((await cli(['schedule', 'list', '--name', 'alice', '--json'], env)).stdout)).toEqual([])
    const bad: Array<[string[], RegExp]> = [
      [['me', 'x', '--at', '2001-01-01T00:00:00Z'], /in the past/],
      [['me', 'x', '--in', 'soon'], /not a duration/],
      [['me', 'x', '--cron', '* * *'], /invalid cron/],
      [['me', 'x'], /exactly one of --at, --in or --cron/],
      [['me', 'x', '--in', '1m', '--priority', 'urgent'], /invalid priority/],
      [['carol', 'x', '--in', '1m'], /no peer "carol"/],
      [['cancel', '0123456789abcdef'], /no active schedule/]
    ]
    for (const [args, re] of bad) {
      const r = await cli(['schedule', ...args, '--name', 'alice'], env)
      expect(r.code, args.join(' ')).not.toBe(0)
      expect(r.stderr).toMatch(re)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
    expect(JSON.parse((await cli(['schedule', 'list', '--all', '--name', 'alice', '--json'], env)).stdout)).toHaveLength(1)
  })
})
