/**
 * The newest message statuses of a session, by send time, for a live view's "sent" list
 * (SPEC.md §19.1). Status keys are random ids, so the store cannot seek to the newest: the first
 * `list` scans once (bounded by the caller) and keeps the newest MAX_RECENT; after that every
 * status the outbox writes is `note`d, so `list` costs a sort of at most 2 × MAX_RECENT and no
 * store read. Until a view asks, nothing is kept.
 */
/** What is needed of a status (outbox.ts's S): its id and its times. */
export interface SentStatus {
  id: string
  at: number
  times: Record<string, number>
}

/** The most statuses `list` returns, and how many are kept once asked. */
export const MAX_RECENT = 500

/** Calls `each` for every status the store and the queue hold. */
export type StatusScan<S> = (each: (s: S) => void) => Promise<void>

export class RecentStatuses<S extends SentStatus> {
  private kept?: Map<string, S>
  /** statuses written while the first scan runs: they are newer than what it reads */
  private during?: Map<string, S>
  private loading?: Promise<Map<string, S>>

  /** Whether the set is kept (a view asked): tests and counters. */
  get loaded(): boolean {
    return this.kept != null
  }

  async list(limit: number, scan: StatusScan<S>): Promise<S[]> {
    const kept =
      this.kept ??
      (await (this.loading ??= this.load(scan).finally(() => {
        this.loading = undefined
      })))
    return byNewest([...kept.values()]).slice(0, Math.min(limit, MAX_RECENT))
  }

  /** A status was written (or queued): keep the set current, once it is kept. */
  note(s: S): void {
    const m = this.kept ?? this.during
    if (m == null) return
    m.set(s.id, s)
    if (m === this.kept && m.size > 2 * MAX_RECENT) this.kept = newest(m.values())
  }

  private async load(scan: StatusScan<S>): Promise<Map<string, S>> {
    const during = (this.during = new Map<string, S>())
    const all = new Map<string, S>()
    try {
      await scan(s => {
        all.set(s.id, s)
      })
    } finally {
      this.during = undefined
    }
    for (const s of during.values()) all.set(s.id, s)
    this.kept = newest(all.values())
    return this.kept
  }
}

/** When a message was sent: its first status time. */
function sentAt(s: SentStatus): number {
  return Math.min(s.at, ...Object.values(s.times))
}

function byNewest<S extends SentStatus>(list: S[]): S[] {
  return list
    .map(s => ({ s, t: sentAt(s) }))
    .sort((a, b) => b.t - a.t)
    .map(x => x.s)
}

function newest<S extends SentStatus>(statuses: Iterable<S>): Map<string, S> {
  return new Map(
    byNewest([...statuses])
      .slice(0, MAX_RECENT)
      .map(s => [s.id, s])
  )
}
