/**
 * Exactly once per message on every push path (SPEC.md §13.3), under bursts through real
 * nodes: the channel, the injecting hooks, the waiting hooks and check_messages may all take
 * at once, and each message id reaches the model through exactly one of them.
 */
import { ControlClient } from '@claudemesh/node'
import { describe, expect, it } from 'vitest'
import { call, home, meet, poll, type Session, session, stops, until } from './helpers.js'

interface Note {
  method: string
  params: { content: string; meta: Record<string, string> }
}

const channelIds = (s: Session): string[] =>
  (s.all as Note[])
    .filter(n => n.method === 'notifications/claude/channel' && n.params.meta.message_id != null)
    .map(n => n.params.meta.message_id as string)
/** message ids in the fence headers of a push's text */
const fencedIds = (text: string | null): string[] =>
  [...(text ?? '').matchAll(/<<peer-message-[0-9a-f]{12} [^\n]*? id="([0-9a-f]{32})"/g)].map(m => m[1] as string)

async function burst(from: Session, to: string, n: number): Promise<string[]> {
  const rs = await Promise.all(
    Array.from({ length: n }, async (_, i) => from.node.mail.send(to, `burst message ${i}`, { priority: 'now' }))
  )
  return rs.map(r => r[0]?.id as string)
}

function dupes(ids: string[]): string[] {
  const seen = new Set<string>()
  return ids.filter(id => {
    if (seen.has(id)) return true
    seen.add(id)
    return false
  })
}

describe('push exactly once', () => {
  for (const n of [30, 300]) {
    it(`channel: a burst of ${n} DMs gives one notification per message`, async () => {
      const h = await home()
      const a = await session(h, 'alice')
      const b = await session(h, 'bob', { channels: true })
      await meet(a, b)
      const sent = await burst(a, 'bob', n)
      await until(b.events, ['note'], () => new Set(channelIds(b)).size >= n, 90_000, `${n} channel notifications`)
      expect(dupes(channelIds(b))).toEqual([])
      await b.server.settled()
      const ids = channelIds(b)
      expect(dupes(ids)).toEqual([])
      expect(new Set(ids)).toEqual(new Set(sent))
      expect(b.node.mail.inbox.unread).toBe(0)
    }, 120_000)
  }

  it('channel + waiting hooks + injecting hooks + check_messages at once: every id to exactly one of them', async () => {
    const h = await home()
    const a = await session(h, 'alice')
    const b = await session(h, 'bob', { channels: true })
    await meet(a, b)
    const waiter = await ControlClient.connect(b.node.registryControlPath())
    const waiter2 = await ControlClient.connect(b.node.registryControlPath())
    const hooks = await ControlClient.connect(b.node.registryControlPath())
    stops.push(async () => {
      waiter.close()
      waiter2.close()
      hooks.close()
    })
    const got: string[] = []
    const byPath = new Map<string, number>()
    const take = (path: string, ids: string[]): void => {
      got.push(...ids)
      byPath.set(path, (byPath.get(path) ?? 0) + ids.length)
    }
    let done = false
    // as Claude Code does: each waiting hook re-arms when it returns; injecting hooks and pulls run meanwhile
    const waitLoop = async (c: ControlClient, event: string): Promise<void> => {
      while (!done) take(`wait ${event}`, fencedIds((await c.call<{ text: string | null }>('hook.wait', { event, timeoutMs: 500 })).text))
    }
    const hookLoop = async (): Promise<void> => {
      for (let i = 0; !done; i++)
        take(
          'hook',
          fencedIds(
            (await hooks.call<{ text: string | null }>('hook', { event: i % 2 === 0 ? 'post-tool-use' : 'user-prompt-submit' })).text
          )
        )
    }
    const pullLoop = async (): Promise<void> => {
      while (!done) {
        const r = await call(b, 'check_messages', { limit: 7 })
        take(
          'check_messages',
          (r.structuredContent as { messages: Array<{ id: string }> }).messages.map(m => m.id)
        )
        // over stdio each call takes a turn of the event loop; the in-memory transport can
        // answer an empty inbox in microtasks alone and would starve everything else
        await new Promise(resolve => setImmediate(resolve))
      }
    }
    const loops = [waitLoop(waiter, 'stop'), waitLoop(waiter2, 'session-start'), hookLoop(), pullLoop()]
    const sent = await burst(a, 'bob', 300)
    const all = (): string[] => [...got, ...channelIds(b)]
    await poll(() => new Set(all()).size >= 300, 90_000, '300 messages taken')
    done = true
    await Promise.all(loops)
    expect(dupes(all())).toEqual([])
    await b.server.settled()
    expect(dupes(all())).toEqual([])
    expect(new Set(all())).toEqual(new Set(sent))
    // several paths took messages: the race was real
    byPath.set('channel', channelIds(b).length)
    expect([...byPath.values()].filter(n => n > 0).length, JSON.stringify([...byPath])).toBeGreaterThanOrEqual(2)
  }, 150_000)
})
