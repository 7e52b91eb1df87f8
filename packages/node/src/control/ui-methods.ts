/**
 * Control methods for live views (SPEC.md §19.3): `ui.wait` long-polls for what changed
 * (so `claudemesh ui` refreshes a section only when the node says it changed, instead of
 * re-reading everything on a timer) and `sent` lists the statuses of this session's messages.
 */
import { z } from 'zod'
import type { MeshNode } from '../node.js'
import type { ControlServer } from './server.js'

/** The sections a view can refresh; a new shared map adds its own topic here (file reservations: `reservations`). */
export const UI_TOPICS = ['peers', 'inbox', 'sent', 'state', 'memory', 'tasks'] as const
export type UiTopic = typeof UI_TOPICS[number]

/** The longest a `ui.wait` call may hold its answer back (ms). */
export const MAX_UI_WAIT_MS = 60_000

/** Which node event dirties which topic. */
const EVENT_TOPICS: Array<[string, UiTopic]> = [
  ['peer:join', 'peers'], ['peer:update', 'peers'], ['peer:leave', 'peers'],
  ['message:receive', 'inbox'], ['message:status', 'sent'],
  ['state:change', 'state'], ['memory:change', 'memory'], ['task:change', 'tasks']
]

/**
 * A change counter per topic: `seq` grows by one on every change, and each topic remembers the
 * `seq` of its latest change, so a caller that saw `since` learns every topic changed after it,
 * however many changes it missed, in O(topics).
 */
export class ChangeFeed {
  seq = 0
  private readonly last = new Map<UiTopic, number>()
  private readonly waiters = new Set<() => void>()

  bump (topic: UiTopic): void {
    this.last.set(topic, ++this.seq)
    for (const w of [...this.waiters]) w()
  }

  /** Topics changed after `since`; a `since` from another feed (ahead of this one) means all. */
  changedSince (since: number): UiTopic[] {
    if (since > this.seq) return [...UI_TOPICS]
    return UI_TOPICS.filter(t => (this.last.get(t) ?? 0) > since)
  }

  /** Resolve with the topics changed after `since`, waiting up to `timeoutMs` for one. */
  async wait (since: number, timeoutMs: number, signal?: AbortSignal): Promise<{ seq: number, topics: UiTopic[] }> {
    const now = this.changedSince(since)
    if (now.length > 0 || timeoutMs === 0) return { seq: this.seq, topics: now }
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve({ seq: this.seq, topics: this.changedSince(since) })
      }
      const timer = setTimeout(done, timeoutMs)
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}

export function registerUiMethods (server: ControlServer, node: MeshNode): void {
  const feed = new ChangeFeed()
  for (const [event, topic] of EVENT_TOPICS) node.addEventListener(event as 'peer:join', () => { feed.bump(topic) })
  server.register('ui.wait', z.object({
    since: z.number().int().min(0),
    timeoutMs: z.number().int().min(0).max(MAX_UI_WAIT_MS)
  }).strict(), async (p, signal) => feed.wait(p.since, p.timeoutMs, signal))
  server.register('sent', z.object({ limit: z.number().int().min(1).max(500).optional() }).strict(),
    async p => ({ messages: await node.mail.outbox.recent(p.limit ?? 50) }))
}
