/**
 * Control methods for live views (SPEC.md §19.3): `ui.wait` long-polls for what changed
 * (so `claudemesh ui` refreshes a section only when the node says it changed, instead of
 * re-reading everything on a timer) and `sent` lists the statuses of this session's messages.
 */
import { z } from 'zod'
import { RateLimitedError } from '../errors.js'
import type { MeshNode } from '../node.js'
import type { ReservationBoard } from '../reservations/board.js'
import type { ControlServer } from './server.js'

/** The sections a view can refresh; a new shared map adds its own topic here. */
export const UI_TOPICS = ['peers', 'inbox', 'sent', 'state', 'memory', 'tasks', 'reservations'] as const
export type UiTopic = (typeof UI_TOPICS)[number]

/** The longest a `ui.wait` call may hold its answer back (ms). */
export const MAX_UI_WAIT_MS = 60_000
/** `ui.wait` calls held at once; one more is refused (each open page holds one). */
export const MAX_UI_WAITERS = 32

/** Which node event dirties which topic. */
const EVENT_TOPICS: Array<[string, UiTopic]> = [
  ['peer:join', 'peers'],
  ['peer:update', 'peers'],
  ['peer:leave', 'peers'],
  ['message:receive', 'inbox'],
  ['message:status', 'sent'],
  ['state:change', 'state'],
  ['memory:change', 'memory'],
  ['task:change', 'tasks']
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

  constructor(private readonly maxWaiters = MAX_UI_WAITERS) {}

  /** Calls waiting now. */
  get waiting(): number {
    return this.waiters.size
  }

  bump(topic: UiTopic): void {
    this.last.set(topic, ++this.seq)
    for (const w of [...this.waiters]) w()
  }

  /** Topics changed after `since`; a `since` from another feed (ahead of this one) means all. */
  changedSince(since: number): UiTopic[] {
    if (since > this.seq) return [...UI_TOPICS]
    return UI_TOPICS.filter(t => (this.last.get(t) ?? 0) > since)
  }

  /** Resolve with the topics changed after `since`, waiting up to `timeoutMs` for one (an abort answers at once). */
  async wait(since: number, timeoutMs: number, signal?: AbortSignal): Promise<{ seq: number; topics: UiTopic[] }> {
    const now = this.changedSince(since)
    if (now.length > 0 || timeoutMs === 0 || signal?.aborted === true) return { seq: this.seq, topics: now }
    if (this.waiters.size >= this.maxWaiters)
      throw new RateLimitedError(`too many ui.wait calls waiting (${this.maxWaiters}); close a page or try again later`)
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

/**
 * Bumps `reservations` whenever the list of live reservations changes: on a write to the map,
 * when a holder goes offline or returns (presence), and when one ends, which no event announces
 * (a timer set for the earliest end). A presence change that moves no reservation bumps nothing.
 */
export class ReservationWatch {
  private last = ''
  private timer?: ReturnType<typeof setTimeout>

  constructor(
    private readonly board: Pick<ReservationBoard, 'live'>,
    private readonly bump: () => void
  ) {
    this.last = JSON.stringify(board.live())
    this.arm()
  }

  /** Look again: bump if the live list differs from the last one seen. */
  check(): void {
    const now = JSON.stringify(this.board.live())
    if (now !== this.last) {
      this.last = now
      this.bump()
    }
    this.arm()
  }

  stop(): void {
    clearTimeout(this.timer)
  }

  private arm(): void {
    clearTimeout(this.timer)
    const ends = this.board.live().map(r => r.expiresAt)
    if (ends.length === 0) return
    // a few ms late, so the reservation has ended by the reader's clock when it looks
    const ms = Math.min(Math.max(0, Math.min(...ends) - Date.now()) + 5, 2 ** 31 - 1)
    this.timer = setTimeout(() => {
      this.check()
    }, ms)
    this.timer.unref?.()
  }
}

export function registerUiMethods(server: ControlServer, node: MeshNode): void {
  const feed = new ChangeFeed()
  for (const [event, topic] of EVENT_TOPICS)
    node.addEventListener(event as 'peer:join', () => {
      feed.bump(topic)
    })
  watchReservations(node, feed)
  registerUiWait(server, feed)
  server.register('sent', z.object({ limit: z.number().int().min(1).max(500).optional() }).strict(), async p => ({
    messages: await node.mail.outbox.recent(p.limit ?? 50)
  }))
}

/** `ui.wait` on a feed: a caller that hangs up stops waiting (the socket's signal). */
export function registerUiWait(server: ControlServer, feed: ChangeFeed): void {
  server.register(
    'ui.wait',
    z
      .object({
        since: z.number().int().min(0),
        timeoutMs: z.number().int().min(0).max(MAX_UI_WAIT_MS)
      })
      .strict(),
    async (p, signal) => feed.wait(p.since, p.timeoutMs, signal)
  )
}

function watchReservations(node: MeshNode, feed: ChangeFeed): void {
  let board: ReservationBoard
  try {
    board = node.data.reservations
  } catch {
    return // a node without the content key holds no reservations
  }
  const watch = new ReservationWatch(board, () => {
    feed.bump('reservations')
  })
  board.addEventListener('reservation:change', () => {
    watch.check()
  })
  for (const type of ['peer:join', 'peer:update', 'peer:leave'] as const)
    node.addEventListener(type, () => {
      watch.check()
    })
  node.addEventListener('node:stopped', () => {
    watch.stop()
  })
}
