/**
 * The task board's rules as pure functions of a replica's entries (SPEC.md §14.3): the current
 * value of each field and who holds the task depend only on the entries held, the reader's
 * clock and which claimants it knows to be offline, so replicas that hold the same entries agree
 * without talking to each other.
 */
import type { StoredTaskClaim, StoredTaskDef, StoredTaskPatch, StoredTaskWatch, TaskStatus } from '../state/task-schema.js'

/** Everything a replica holds about one task. */
export interface TaskEntries {
  def?: StoredTaskDef
  patches: Map<string, StoredTaskPatch>
  claims: Map<string, StoredTaskClaim>
  watches: Map<string, StoredTaskWatch>
}

/** A clocked value: higher `l` wins; on a tie, the smaller writer id (UTF-16 order). */
export interface Clocked<T> {
  l: number
  w: string
  v: T
}

export const beats = (a: { l: number; w: string }, b: { l: number; w: string }): boolean => a.l > b.l || (a.l === b.l && a.w < b.w)

export interface Folded {
  title: Clocked<string>
  body: Clocked<string>
  assignee: Clocked<string>
  priority: Clocked<StoredTaskDef['priority']>
  deps: Clocked<string[]>
  status: Clocked<TaskStatus>
  /** the highest clock on the task: a new write takes one more */
  top: number
  /** the claim that decides who holds the task (the newest claim since the last status change) */
  decisive?: StoredTaskClaim
  createdBy: string
  createdAt: number
  /** members that watch the task: the creator unless its own entry says not, and every member whose entry says so */
  watchers: string[]
  /** the last writer and time of any field change */
  updatedBy: string
  updatedAt: number
}

type FieldName = 'title' | 'body' | 'assignee' | 'priority' | 'deps' | 'status'

/** Fold the entries into the task's current fields; undefined until the task itself is held. */
export function fold(e: TaskEntries): Folded | undefined {
  const d = e.def
  if (d == null) return undefined
  const at0 = <T>(v: T): Clocked<T> => ({ l: 0, w: d.by, v })
  const f: Folded = {
    title: at0(d.title),
    body: at0(d.body),
    assignee: at0(d.assignee),
    priority: at0(d.priority),
    deps: at0(d.deps),
    status: at0<TaskStatus>({ s: 'open' }),
    top: 0,
    createdBy: d.by,
    createdAt: d.at,
    updatedBy: d.by,
    updatedAt: d.at,
    watchers: watchersOf(d.by, e.watches)
  }
  const fields = f as unknown as Record<FieldName, Clocked<unknown>>
  for (const [w, p] of e.patches) {
    for (const [name, c] of Object.entries(p.f) as Array<[FieldName, { l: number; v: unknown }]>) {
      const next = { l: c.l, w, v: c.v }
      if (beats(next, fields[name])) fields[name] = next
      f.top = Math.max(f.top, c.l)
    }
    if (p.at > f.updatedAt) {
      f.updatedAt = p.at
      f.updatedBy = w
    }
  }
  for (const c of e.claims.values()) {
    f.top = Math.max(f.top, c.l)
    // a status change (complete, cancel, reopen) voids every claim made before it
    if (c.l <= f.status.l) continue
    if (f.decisive == null || claimBeats(c, f.decisive)) f.decisive = c
  }
  return f
}

export function watchersOf(creator: string, watches: Map<string, StoredTaskWatch>): string[] {
  const out = watches.get(creator)?.on === false ? [] : [creator]
  for (const [peer, w] of watches) if (w.on && peer !== creator) out.push(peer)
  return out.sort()
}

/**
 * Of two claims, the decisive one: the higher clock (made after seeing the other lapse); on
 * equal clocks (concurrent claims) the earlier `since`, first come first served; then the
 * smaller claimant id.
 */
export function claimBeats(a: StoredTaskClaim, b: StoredTaskClaim): boolean {
  if (a.l !== b.l) return a.l > b.l
  if (a.since !== b.since) return a.since < b.since
  return a.by < b.by
}

export type LeaseState = 'held' | 'released' | 'expired' | 'offline'

/** What became of the decisive claim, at `now`, for a reader that knows `offline` claimants to be gone. */
export function leaseState(c: StoredTaskClaim, now: number, offline: (peer: string) => boolean): LeaseState {
  if (!c.held) return 'released'
  if (c.exp <= now) return 'expired'
  return offline(c.by) ? 'offline' : 'held'
}

/**
 * Who holds the task: the claimant of the decisive claim while the task is open and that
 * claim is held, unexpired and its claimant not known offline; else nobody. An older claim
 * never comes back: once the newest claim lapses, the task is free for a new claim.
 */
export function holderOf(f: Folded, now: number, offline: (peer: string) => boolean): string | undefined {
  if (f.status.v.s !== 'open' || f.decisive == null) return undefined
  return leaseState(f.decisive, now, offline) === 'held' ? f.decisive.by : undefined
}
