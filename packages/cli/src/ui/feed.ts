/**
 * What the page shows, kept current from the node over its control socket: sections fetched
 * when `ui.wait` says their topic changed (SPEC.md §19.3), re-read every few seconds for what
 * no event announces (relay connections, a message read by the model, a DM queued by another
 * process), and handed to subscribers only when their JSON changed.
 */
import type { CheckResult, ControlClient, MeshInfo, MessageStatus, PeerInfo, Reservation, Task } from '@claudemesh/node/client'

export const SECTIONS = ['self', 'peers', 'inbox', 'sent', 'state', 'tasks', 'reservations'] as const
export type Section = (typeof SECTIONS)[number]

const TOPIC_SECTIONS: Record<string, Section[]> = {
  peers: ['peers', 'self'],
  inbox: ['inbox', 'self'],
  sent: ['sent', 'self'],
  state: ['state', 'self'],
  memory: ['self'],
  tasks: ['tasks', 'self'],
  reservations: ['reservations']
}
/** Re-read on a timer: nothing announces these changes. */
const POLLED: Section[] = ['self', 'inbox', 'sent']
const POLL_MS = 3_000
const WAIT_MS = 25_000
/** What one section carries at most: the page is a view, not an export. */
export const VIEW_LIMITS = { inbox: 100, sent: 100, state: 500, tasks: 200, reservations: 500, valueChars: 4_096, sentBodies: 1_000 }

interface StateEntry {
  key: string
  value: unknown
  updatedBy: string
  updatedAt: number
}

export type Listener = (section: Section | 'gone', json: string) => void

export class UiFeed {
  private readonly last = new Map<Section, string>()
  private readonly listeners = new Set<Listener>()
  /** bodies of the messages sent from the page (the outbox keeps statuses, not bodies) */
  private readonly bodies = new Map<string, string>()
  private seq = 0
  private stopped = false
  private timer?: NodeJS.Timeout
  private readonly abort = new AbortController()

  constructor(private readonly client: ControlClient) {}

  async start(): Promise<void> {
    // take the change counter first: a change made while the first read runs is seen again
    this.seq = (await this.client.call<{ seq: number }>('ui.wait', { since: 0, timeoutMs: 0 })).seq
    await this.refresh([...SECTIONS])
    void this.loop()
    this.timer = setInterval(() => {
      void this.refresh(POLLED).catch(() => {})
    }, POLL_MS)
  }

  stop(): void {
    this.stopped = true
    this.abort.abort()
    clearInterval(this.timer)
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l)
    return () => {
      this.listeners.delete(l)
    }
  }

  /** Every section as last read, for a page that just connected. */
  current(): Array<[Section, string]> {
    return SECTIONS.flatMap(s => {
      const j = this.last.get(s)
      return j == null ? [] : [[s, j] as [Section, string]]
    })
  }

  remember(id: string, body: string): void {
    this.bodies.set(id, body)
    for (const k of this.bodies.keys()) {
      if (this.bodies.size <= VIEW_LIMITS.sentBodies) break
      this.bodies.delete(k)
    }
  }

  async refresh(sections: Section[]): Promise<void> {
    await Promise.all(
      [...new Set(sections)].map(async s => {
        let json: string
        try {
          json = JSON.stringify(await this.read(s))
        } catch (err) {
          json = JSON.stringify({ error: (err as Error).message })
        }
        if (this.stopped || this.last.get(s) === json) return
        this.last.set(s, json)
        for (const l of this.listeners) l(s, json)
      })
    )
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await this.client.call<{ seq: number; topics: string[] }>(
          'ui.wait',
          { since: this.seq, timeoutMs: WAIT_MS },
          { signal: this.abort.signal }
        )
        this.seq = r.seq
        await this.refresh(r.topics.flatMap(t => TOPIC_SECTIONS[t] ?? []))
      } catch (err) {
        if (this.stopped) return
        if ((err as Error).name === 'RateLimitedError') {
          // the node holds as many waiting calls as it allows (other pages): the timer still refreshes
          await this.pause(POLL_MS)
          continue
        }
        // the control connection is gone: the node stopped
        this.stopped = true
        clearInterval(this.timer)
        for (const l of this.listeners) l('gone', '{}')
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    await new Promise(resolve => {
      setTimeout(resolve, ms).unref()
    })
  }

  private async read(s: Section): Promise<unknown> {
    const c = this.client
    switch (s) {
      case 'self':
        return c.call<MeshInfo>('info')
      case 'peers':
        return c.call<{ self: PeerInfo; peers: PeerInfo[] }>('peers')
      // the page only looks: it never marks a message read (the model has not seen it)
      case 'inbox':
        return c.call<CheckResult>('inbox', { limit: VIEW_LIMITS.inbox, unreadOnly: false, markRead: false })
      case 'sent': {
        const r = await c.call<{ messages: MessageStatus[] }>('sent', { limit: VIEW_LIMITS.sent })
        return { messages: r.messages.map(m => ({ ...m, body: this.bodies.get(m.id) })) }
      }
      case 'state': {
        const r = await c.call<{ entries: StateEntry[] }>('state.list', {})
        const entries = r.entries.sort((a, b) => b.updatedAt - a.updatedAt).slice(0, VIEW_LIMITS.state)
        return { total: r.entries.length, entries: entries.map(e => ({ ...e, value: preview(e.value) })) }
      }
      case 'tasks':
        return c.call<{ tasks: Task[] }>('task.list', { limit: VIEW_LIMITS.tasks })
      case 'reservations': {
        const r = await c.call<{ reservations: Reservation[] }>('reservation.list', {})
        return { total: r.reservations.length, reservations: r.reservations.slice(0, VIEW_LIMITS.reservations) }
      }
    }
  }
}

/** A value as the page shows it: its JSON text, cut at `valueChars`. */
function preview(value: unknown): { json: string; cut: boolean } {
  const json = JSON.stringify(value) ?? 'null'
  return json.length <= VIEW_LIMITS.valueChars ? { json, cut: false } : { json: json.slice(0, VIEW_LIMITS.valueChars), cut: true }
}
