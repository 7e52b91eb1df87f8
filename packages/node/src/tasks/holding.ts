/**
 * The tasks this session holds (SPEC.md §14.3–§14.4): which it held at its last look, renewing
 * their leases, and telling the session when a remote update shows it lost one (`task:lost`) or
 * kept one that another member also claimed (`task:conflict`).
 */
import type { StoredTaskClaim } from '../state/task-schema.js'
import type { TaskIndex } from './entries.js'
import { type Folded, holderOf, leaseState } from './rule.js'

export interface TaskLost {
  id: string
  title: string
  winner: string
}
export interface TaskConflict {
  id: string
  title: string
  other: string
}

export interface HoldingHost {
  readonly self: string
  readonly index: TaskIndex
  now: () => number
  offline: (peer: string) => boolean
  lost: (l: TaskLost) => void
  conflict: (c: TaskConflict) => void
}

export class Holding {
  /** tasks this session held at its last look: losing one of them is news */
  private readonly held = new Set<string>()
  /** tasks this session held and no longer does, whose winner it has not been told of yet */
  private readonly losing = new Set<string>()
  /** conflicts already told, `<task>!<other>!<l>` */
  private readonly told = new Set<string>()

  constructor(private readonly host: HoldingHost) {}

  /** This session was shown holding `id` (its own claim, a get or list, a start from its log). */
  shown(id: string): void {
    this.held.add(id)
    this.losing.delete(id)
  }

  /** This session let go of `id` itself: no news. */
  released(id: string): void {
    this.held.delete(id)
  }

  /** After a remote change of `id`: did this session lose the task, or keep it against another claimant? */
  look(id: string): void {
    const f = this.host.index.get(id)
    if (f == null) return
    const holder = holderOf(f, this.host.now(), this.host.offline)
    if (this.held.has(id) && holder !== this.host.self) {
      this.held.delete(id)
      // no winner yet (our lease lapsed, or a claim arrived that does not decide): the loss is
      // told once a rival's claim becomes the decisive one, whatever update brings it
      this.losing.add(id)
    }
    if (this.losing.has(id) && holder !== this.host.self) {
      const winner = f.decisive != null && f.decisive.by !== this.host.self ? f.decisive.by : undefined
      if (f.status.v.s !== 'open') this.losing.delete(id)
      else if (winner != null) {
        this.losing.delete(id)
        this.host.lost({ id, title: f.title.v, winner })
      }
    }
    if (holder !== this.host.self) return
    this.shown(id)
    this.conflicts(id, f)
  }

  /** Presence changed: a rival claim that arrived while its claimant was seen offline (a healing partition) becomes a conflict once the claimant is back. */
  presenceChanged(): void {
    for (const id of this.held) {
      const f = this.host.index.get(id)
      if (f != null && holderOf(f, this.host.now(), this.host.offline) === this.host.self) this.conflicts(id, f)
    }
  }

  /** The claims to rewrite now: every lease this session holds once a third of its TTL has passed. */
  due(): Array<{ id: string; claim: StoredTaskClaim }> {
    const now = this.host.now()
    const out: Array<{ id: string; claim: StoredTaskClaim }> = []
    for (const id of [...this.held]) {
      const f = this.host.index.get(id)
      const mine = f?.decisive
      if (f == null || mine == null || mine.by !== this.host.self || !mine.held || f.status.v.s !== 'open') {
        this.held.delete(id)
        continue
      }
      // lapsed (this process was stopped or cut off too long): never revived, but a takeover is still news
      if (holderOf(f, now, this.host.offline) !== this.host.self) continue
      if (mine.exp - now > (mine.ttl * 2) / 3) continue
      out.push({ id, claim: { ...mine, exp: now + mine.ttl, at: now } })
    }
    return out
  }

  /** Tell of live claims by others on a task this session holds, once each (§14.4). */
  private conflicts(id: string, f: Folded): void {
    for (const [peer, claim] of this.host.index.entries(id)?.claims ?? []) {
      const key = `${id}!${peer}!${claim.l}`
      if (
        peer === this.host.self ||
        claim.l <= f.status.l ||
        leaseState(claim, this.host.now(), this.host.offline) !== 'held' ||
        this.told.has(key)
      )
        continue
      this.told.add(key)
      this.host.conflict({ id, title: f.title.v, other: peer })
    }
  }
}
