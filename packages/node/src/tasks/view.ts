/** What callers see of a task: its current fields, its holder and lease, what blocks it. */
import type { TaskStatus } from '../state/task-schema.js'
import { type Folded, holderOf, type LeaseState, leaseState } from './rule.js'

export interface Task {
  id: string
  title: string
  body: string
  /** '' (open to anyone), a PeerId, or '@group' */
  assignee: string
  priority: 'high' | 'normal' | 'low'
  deps: string[]
  status: TaskStatus['s']
  result?: string
  createdBy: string
  createdAt: number
  updatedBy: string
  updatedAt: number
  /** who holds it now, or null */
  holder: string | null
  /** the decisive claim (§14.3) and what became of it */
  lease: { claimant: string; state: LeaseState; expiresAt: number; renewedAt: number } | null
  /** dependencies that are not done */
  blockedBy: string[]
  /** members told of its changes (SPEC.md §14.8) */
  watchers: string[]
}

export function taskView(
  id: string,
  f: Folded,
  now: number,
  offline: (peer: string) => boolean,
  statusOf: (dep: string) => string | undefined
): Task {
  const d = f.decisive
  const t: Task = {
    id,
    title: f.title.v,
    body: f.body.v,
    assignee: f.assignee.v,
    priority: f.priority.v,
    deps: f.deps.v,
    status: f.status.v.s,
    createdBy: f.createdBy,
    createdAt: f.createdAt,
    updatedBy: f.updatedBy,
    updatedAt: f.updatedAt,
    holder: holderOf(f, now, offline) ?? null,
    lease:
      d == null || f.status.v.s !== 'open'
        ? null
        : { claimant: d.by, state: leaseState(d, now, offline), expiresAt: d.exp, renewedAt: d.at },
    blockedBy: f.deps.v.filter(dep => statusOf(dep) !== 'done'),
    watchers: f.watchers
  }
  if (f.status.v.result != null) t.result = f.status.v.result
  return t
}
