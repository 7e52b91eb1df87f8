import { describe, expect, it } from 'vitest'
import { call, home, meet, session, until } from './helpers.js'

interface Out {
  id: string
  state: string
  fired: number
  next_at?: string
  kind: string
  last?: { results: Array<{ message_id: string; name: string }> }
}
const text = (r: { content: unknown[] }): string => (r.content[0] as { text: string }).text

describe('scheduled messages over MCP', () => {
  it('schedule_message to a peer arrives once; list_scheduled and cancel_scheduled; a reminder to "me" comes back as an inbox message', async () => {
    const h = await home()
    const a = await session(h, 'alice')
    const b = await session(h, 'bob', { mode: 'off' })
    await meet(a, b)
    const r = await call(a, 'schedule_message', { to: 'bob', message: 'stand-up in 5', in: '1s', priority: 'now' })
    expect(r.isError).toBeFalsy()
    const s = (r.structuredContent as { schedule: Out }).schedule
    expect(s).toMatchObject({ state: 'active', kind: 'once', fired: 0 })
    expect(text(r)).toMatch(new RegExp(`^scheduled ${s.id} to "bob": at `))
    const later = (await call(a, 'schedule_message', { to: ['bob'], message: 'weekly sync', cron: '0 9 * * 1' })).structuredContent as {
      schedule: Out
    }
    expect(later.schedule).toMatchObject({ kind: 'cron', state: 'active' })
    const listed = (await call(a, 'list_scheduled')).structuredContent as { schedules: Out[] }
    expect(listed.schedules.map(x => x.id)).toEqual([s.id, later.schedule.id])
    const cancelled = await call(a, 'cancel_scheduled', { id: later.schedule.id })
    expect((cancelled.structuredContent as { schedule: Out }).schedule.state).toBe('cancelled')
    await until(
      b.node,
      ['message:receive'],
      async () => (await b.node.mail.inbox.list({ unreadOnly: false })).some(m => m.body === 'stand-up in 5'),
      20_000,
      'the scheduled message'
    )
    await until(a.node.schedules, ['schedule:fired'], () => a.node.schedules.size === 0, 20_000, 'the occurrence recorded')
    const all = (await call(a, 'list_scheduled', { all: true })).structuredContent as { schedules: Out[] }
    const fired = all.schedules.find(x => x.id === s.id)
    expect(fired).toMatchObject({ state: 'done', fired: 1 })
    const got = (await call(b, 'check_messages')).structuredContent as { messages: Array<{ id: string; body: string; from_name: string }> }
    expect(got.messages).toHaveLength(1)
    expect(got.messages[0]?.id).toBe(fired?.last?.results[0]?.message_id)
    expect(got.messages[0]?.body).toMatch(/stand-up in 5/)

    await call(a, 'schedule_message', { to: 'me', message: 'check the build', in: '1s' })
    await until(
      a.node,
      ['message:receive'],
      async () => (await a.node.mail.inbox.list({ unreadOnly: false })).some(m => m.body === 'check the build'),
      20_000,
      'the reminder'
    )
    const mine = (await call(a, 'check_messages')).structuredContent as { messages: Array<{ body: string; from_id: string }> }
    expect(mine.messages.map(m => m.body).join()).toMatch(/check the build/)
    expect(mine.messages[0]?.from_id).toBe(a.node.peerId)
  })

  it('bad input is an isError line and schedules nothing', async () => {
    const h = await home()
    const a = await session(h, 'alice')
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ to: 'me', message: 'x', at: '2001-01-01T00:00:00Z' }, /in the past/],
      [{ to: 'me', message: 'x', at: new Date(Date.now() + 400 * 86_400_000).toISOString() }, /more than a year ahead/],
      [{ to: 'me', message: 'x', cron: '99 * * * *' }, /invalid cron/],
      [{ to: 'me', message: 'x', in: '10m', at: '2030-01-01T00:00:00Z' }, /exactly one of at, in or cron/],
      [{ to: 'me', message: 'x' }, /exactly one of at, in or cron/],
      [{ to: 'nobody', message: 'x', in: '10m' }, /no peer "nobody"/],
      [{ to: 'me', message: 'x'.repeat(70_000), in: '10m' }, /the limit is 65536 bytes/]
    ]
    for (const [args, re] of bad) {
      const r = await call(a, 'schedule_message', args)
      expect(r.isError, JSON.stringify(args).slice(0, 80)).toBe(true)
      expect(text(r)).toMatch(re)
      expect(text(r).split('\n')).toHaveLength(1)
    }
    expect((await call(a, 'cancel_scheduled', { id: '0123456789abcdef' })).isError).toBe(true)
    expect((await call(a, 'cancel_scheduled', { id: 'nope' })).isError).toBe(true)
    expect(((await call(a, 'list_scheduled', { all: true })).structuredContent as { schedules: unknown[] }).schedules).toEqual([])
  })
})
