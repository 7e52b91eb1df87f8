/**
 * Notices for the tasks a session follows (SPEC.md §14.8): those it watches, is assigned (itself
 * or one of its groups) or holds. After each change of such a task, and on a tick for leases
 * that end with time or presence, it compares what it last saw with what is now and tells the
 * session of a claim, a completion (with its result), a reopen, a cancel, a lease that ended or
 * one that came back to its holder after it lapsed, unless this session made the change.
 */
import type { StoredTaskDef, TaskStatus } from '../state/task-schema.js'
import type { TaskWhy } from './constants.js'
import { type Folded, holderOf, type LeaseState, leaseState } from './rule.js'

export type TaskNoticeKind = 'claimed' | 'completed' | 'reopened' | 'cancelled' | 'lease-lost' | 'lease-back'

/** Something happened to a task this session follows, done by another member. */
export interface TaskNotice {
  id: string
  title: string
  priority: StoredTaskDef['priority']
  kind: TaskNoticeKind
  /** the claimant, the writer of the new status, or whose lease ended or came back */
  by: string
  /** why this session is told: it watches the task, is its assignee, or held it */
  why: TaskWhy
  /** a completion's result (peer text) */
  result?: string
  /** how a lease ended */
  lease?: Exclude<LeaseState, 'held'>
}

export interface WatchHost {
  readonly self: string
  get: (id: string) => Folded | undefined
  now: () => number
  offline: (peer: string) => boolean
  assignedToMe: (id: string) => boolean
}

/** What the session last saw of a followed task. */
interface Seen {
  s: TaskStatus['s']
  sl: number
  holder?: string
  /** whose lease lapsed (expired or offline, told as `lease-lost`) with nobody holding the task since */
  lapsed?: string
  /** the lapse was its holder seen offline: presence alone may bring the lease back */
  offline?: boolean
}

type Change = Pick<TaskNotice, 'kind' | 'by' | 'result' | 'lease'>

export class TaskWatch {
  private readonly seen = new Map<string, Seen>()

  constructor(
    private readonly host: WatchHost,
    private readonly emit: (n: TaskNotice) => void
  ) {}

  /** Look at a task after a change; `mine`: this session made it (nothing to tell). */
  look(id: string, mine: boolean): void {
    const f = this.host.get(id)
    const prev = this.seen.get(id)
    const holder = f == null ? undefined : holderOf(f, this.host.now(), this.host.offline)
    const why = f == null ? undefined : this.why(id, f, holder, prev)
    if (f == null || why == null) {
      this.seen.delete(id)
      return
    }
    const next: Seen = { s: f.status.v.s, sl: f.status.l, holder }
    this.seen.set(id, next)
    if (prev == null) return
    const change = mine ? undefined : this.change(f, prev, next)
    // a lapse is remembered until someone holds the task or its status changes: if its holder
    // holds it again, that is told as `lease-back`, not as a new claim
    if (change?.kind === 'lease-lost' && change.lease !== 'released') {
      next.lapsed = change.by
      next.offline = change.lease === 'offline'
    } else if (holder == null && next.s === prev.s && next.sl === prev.sl && prev.lapsed != null) {
      next.lapsed = prev.lapsed
      next.offline = prev.offline
    }
    if (change != null) this.emit({ id, title: f.title.v, priority: f.priority.v, why, ...change })
  }

  /**
   * Leases end with time and with presence, not only with entries: look again at followed tasks
   * another member holds (this session's own leases are its own business, and `task:lost`'s),
   * and at those whose holder was seen offline (presence may bring its lease back; an expired one
   * comes back only with a new claim, which is an entry change).
   */
  tick(): void {
    for (const [id, s] of [...this.seen]) if ((s.holder != null && s.holder !== this.host.self) || s.offline === true) this.look(id, false)
  }

  private why(id: string, f: Folded, holder: string | undefined, prev: Seen | undefined): TaskNotice['why'] | undefined {
    const self = this.host.self
    if (f.watchers.includes(self)) return 'watcher'
    if (this.host.assignedToMe(id)) return 'assignee'
    // a task this session held is followed through its end (cancelled or completed by another)
    return holder === self || prev?.holder === self ? 'holder' : undefined
  }

  private change(f: Folded, prev: Seen, next: Seen): Change | undefined {
    const self = this.host.self
    if (next.sl !== prev.sl || next.s !== prev.s) {
      const by = f.status.w
      if (by === self) return undefined
      if (next.s === 'done') return { kind: 'completed', by, result: f.status.v.result ?? '' }
      if (next.s === 'cancelled') return { kind: 'cancelled', by }
      return prev.s === 'open' ? undefined : { kind: 'reopened', by }
    }
    // a holder that loses its task is told by `task:lost`; its own claims and releases are its own
    if (next.s !== 'open' || next.holder === prev.holder || prev.holder === self) return undefined
    if (next.holder != null)
      return next.holder === self ? undefined : { kind: next.holder === prev.lapsed ? 'lease-back' : 'claimed', by: next.holder }
    const d = f.decisive
    const state = d == null || d.by !== prev.holder ? 'released' : leaseState(d, this.host.now(), this.host.offline)
    return prev.holder == null ? undefined : { kind: 'lease-lost', by: prev.holder, lease: state === 'held' ? 'released' : state }
  }
}
